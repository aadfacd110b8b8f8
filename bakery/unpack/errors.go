package unpack

import (
	"errors"
	"fmt"
)

// Sentinel errors; every refusal wraps exactly one of them.
var (
	// ErrEscape: a member path is absolute or its ".." leaves the
	// extraction directory.
	ErrEscape = errors.New("path escapes the extraction directory")
	// ErrDevice: a device node, fifo or socket.
	ErrDevice = errors.New("special file not allowed")
	// ErrTooLarge: an entry or the archive's total exceeds the size limit.
	ErrTooLarge = errors.New("size limit exceeded")
	// ErrTooManyEntries: the archive or tree holds more members than
	// allowed.
	ErrTooManyEntries = errors.New("entry limit exceeded")
	// ErrLinkOutside: a hard link whose target is outside the extraction
	// directory or is not a regular file extracted earlier.
	ErrLinkOutside = errors.New("hard link target not allowed")
	// ErrThroughSymlink: a member would be written through, or over, a
	// symbolic link.
	ErrThroughSymlink = errors.New("write through a symbolic link")
	// ErrNoMatch: an include pattern matched no member.
	ErrNoMatch = errors.New("include pattern matched nothing")
	// ErrFormat: the input is not a supported archive, or is corrupt or
	// truncated.
	ErrFormat = errors.New("unsupported or corrupt archive")
	// ErrBadName: a member or link name that is not valid UTF-8, holds NUL,
	// or names nothing.
	ErrBadName = errors.New("invalid name")
	// ErrConflict: a member would replace a directory with a non-directory,
	// or needs a directory where a non-directory exists.
	ErrConflict = errors.New("file type conflict")
)

// failure is an error with its own message that wraps another error,
// usually one of the sentinels.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }

func (f *failure) Unwrap() error { return f.err }

// refused returns an error wrapping kind whose message is the formatted
// detail alone, without kind's own text.
func refused(kind error, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), err: kind}
}

// fixes says what to do about each kind of refusal.
var fixes = []struct {
	kind error
	fix  string
}{
	{ErrEscape, "the archive is unsafe; use another source"},
	{ErrThroughSymlink, "the archive or an earlier source puts a symbolic link where this member is written; use another source, or leave the member out with include:"},
	{ErrDevice, "leave it out with include:"},
	{ErrTooLarge, "raise MaxBytes only if the source is trusted, or use another source"},
	{ErrTooManyEntries, "raise MaxEntries (bake --max-entries) only if the source is trusted, or use another source"},
	{ErrLinkOutside, "include the link's target too, or use another source"},
	{ErrConflict, "an earlier member or source has another type of file at that path; change to: or the order of the sources"},
	{ErrBadName, "the member cannot be stored in a sysext; use another source"},
	{ErrFormat, "the archive is corrupt, truncated or uses an unsupported feature; fetch it again or use another source"},
}

// fixFor says what to do about err.
func fixFor(err error) string {
	for _, f := range fixes {
		if errors.Is(err, f.kind) {
			return f.fix
		}
	}
	return "check that the staging directory is writable"
}

// withFix wraps err as "ORIGIN: what — fix".
func withFix(origin string, err error) error {
	return &failure{msg: fmt.Sprintf("%s: %v — %s", origin, err, fixFor(err)), err: err}
}

// refuse wraps err as "ORIGIN: member NAME: what — fix".
func (s *stager) refuse(m *member, err error) error {
	return &failure{msg: fmt.Sprintf("%s: member %q: %v — %s", s.origin, m.name, err, fixFor(err)), err: err}
}
