package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/sysext-bakery/bakery/sign"
)

// ErrSubstituted means the registry served another artifact than the one
// asked for: another extension, another version than the tag names, or a
// signature made for another name or version. Signatures stay valid when an
// index and its signature are copied to another repository or tag, so
// every reader checks what the signed content says it is.
var ErrSubstituted = errors.New("the registry served another artifact than the one asked for")

// defaultClass is the image class of an index without AnnotationClass.
const defaultClass = "sysext"

// published is what an index or manifest says it holds, in annotations
// its digest (and so its signature) covers.
type published struct {
	name, version, class string
}

// publishedAs reads the identity annotations of an index or manifest.
func publishedAs(ann map[string]string) published {
	p := published{name: ann[AnnotationName], version: ann[AnnotationVersion], class: ann[AnnotationClass]}
	if p.class == "" {
		p.class = defaultClass
	}
	return p
}

// claims are the signature claims that must accompany p.
func (p published) claims() sign.Claims {
	return sign.Claims{Kind: p.class, Name: p.name, Version: p.version}
}

// expectation is what a pulled or verified reference must turn out to be.
type expectation struct {
	// name is the extension asked for: WithName's, else the repository's
	// last path element (push refuses any other).
	name string
	// versionTag is the tag asked for when it spells a version ("1.3.0",
	// "v1.32.2"): the published version must have it as its tag.
	versionTag string
	// class is the image class asked for (WithClass), "" for any.
	class string
}

// expect derives the expectation of ref.
func expect(ref name.Reference, o *options) expectation {
	e := expectation{name: o.name, class: o.class}
	if e.name == "" {
		e.name = repoBase(ref.Context())
	}
	if t, ok := ref.(name.Tag); ok && isVersionTag(t.TagStr()) {
		e.versionTag = t.TagStr()
	}
	return e
}

// check compares what an index or manifest says it is with e.
func (e expectation) check(what string, p published) error {
	switch {
	case p.name == "":
		return fmt.Errorf("%s has no %s annotation: not a bakery extension", what, AnnotationName)
	case p.name != e.name:
		return fmt.Errorf("%w: %s is extension %q, not %q (pass --name %s if %q is really wanted under this repository)", ErrSubstituted, what, p.name, e.name, p.name, p.name)
	case p.version == "":
		return fmt.Errorf("%s has no %s annotation: not a bakery extension", what, AnnotationVersion)
	case e.versionTag != "" && tagSafe(p.version) != e.versionTag:
		return fmt.Errorf("%w: tag %s names version %s, but %s holds version %s", ErrSubstituted, e.versionTag, e.versionTag, what, p.version)
	case e.class != "" && p.class != e.class:
		return fmt.Errorf("%w: %s is a %s, not a %s", ErrSubstituted, what, p.class, e.class)
	}
	return nil
}

// checkArtifactType refuses an index or manifest whose artifact type is
// not the one of the class its annotations name.
func checkArtifactType(what, artifactType string, p published) error {
	c, ok := classOfArtifact(artifactType)
	switch {
	case !ok:
		return fmt.Errorf("%s has artifactType %q: not a bakery extension", what, artifactType)
	case c.Name != p.class:
		return fmt.Errorf("%w: %s is a %s by its artifactType, a %s by its annotations", ErrSubstituted, what, c.Name, p.class)
	}
	return nil
}

// isVersionTag tells a tag that spells a version (it starts with a digit,
// or with v and a digit) from a moving tag such as latest or stable.
func isVersionTag(tag string) bool {
	t := strings.TrimPrefix(strings.TrimPrefix(tag, "v"), "V")
	return t != "" && t[0] >= '0' && t[0] <= '9'
}

// repoBase is the last path element of a repository: the extension name.
func repoBase(repo name.Repository) string {
	r := repo.RepositoryStr()
	return r[strings.LastIndex(r, "/")+1:]
}
