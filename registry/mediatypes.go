package registry

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sysext-bakery/bakery/sysext"
)

// Media and artifact types of published extensions. Each image class has
// its own artifact type (sysext.Class.ArtifactType, e.g.
// application/vnd.bakery.sysext.v1); its config and layer media types are
// named after it (configMediaType, layerMediaType).
const (
	// LayerMediaTypeDDI is the media type of a DDI (GPT disk image) layer,
	// of any class.
	LayerMediaTypeDDI types.MediaType = "application/vnd.efi.img"
	// CatalogArtifactType marks the namespace's catalog manifest.
	CatalogArtifactType = "application/vnd.bakery.catalog.v1"
	// CatalogMediaType is the catalog's single layer (see CatalogDoc).
	CatalogMediaType types.MediaType = "application/vnd.bakery.catalog.v1+json"
	// emptyMediaType is the OCI empty descriptor's media type.
	emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"
)

// typeBase is the artifact type of class c without its version suffix:
// application/vnd.bakery.sysext.
func typeBase(c sysext.Class) string { return strings.TrimSuffix(c.ArtifactType, "v1") }

// configMediaType is the per-arch config blob of class c (see Config):
// application/vnd.bakery.sysext.config.v1+json.
func configMediaType(c sysext.Class) types.MediaType {
	return types.MediaType(typeBase(c) + "config.v1+json")
}

// layerMediaType is the media type of an image layer of class c holding
// file system fstype ("squashfs", "erofs"; "ddi" for a disk image):
// application/vnd.bakery.sysext.layer.v1.squashfs.
func layerMediaType(c sysext.Class, fstype string) types.MediaType {
	if fstype == "ddi" {
		return LayerMediaTypeDDI
	}
	return types.MediaType(typeBase(c) + "layer.v1." + fstype)
}

// classOfArtifact finds the image class whose artifact type is t.
func classOfArtifact(t string) (sysext.Class, bool) {
	for _, c := range sysext.Classes() {
		if c.ArtifactType == t {
			return c, true
		}
	}
	return sysext.Class{}, false
}

// isImageLayer tells the layer media types of extension images of any
// class.
func isImageLayer(mt types.MediaType) bool {
	if mt == LayerMediaTypeDDI {
		return true
	}
	for _, c := range sysext.Classes() {
		if fstype, ok := strings.CutPrefix(string(mt), typeBase(c)+"layer.v1."); ok && fstype != "" {
			return true
		}
	}
	return false
}

// Annotation keys bakery sets on indexes, index entries and layers.
const (
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationVersion     = "org.opencontainers.image.version"
	AnnotationCreated     = "org.opencontainers.image.created"
	AnnotationDescription = "org.opencontainers.image.description"
	AnnotationLicenses    = "org.opencontainers.image.licenses"
	// AnnotationSources lists the URLs (or image references) of the
	// recipe's sources, space-separated: provenance for readers.
	AnnotationSources      = "org.bakery.sysext.sources"
	AnnotationName         = "org.bakery.sysext.name"
	AnnotationID           = "org.bakery.sysext.id"
	AnnotationVersionID    = "org.bakery.sysext.version-id"
	AnnotationArchitecture = "org.bakery.sysext.architecture"
	AnnotationScope        = "org.bakery.sysext.scope"
	AnnotationFSType       = "org.bakery.sysext.fstype"
	// AnnotationClass is the image class, "sysext" (the default when it
	// is missing) or "confext".
	AnnotationClass = "org.bakery.sysext.class"
	// AnnotationInputsDigest is, on an index entry and its manifest, the
	// inputs digest the arch's image was baked from (bakery.InputsDigest:
	// the recipe, version, arch, OS release, image options and all source
	// digests), from bake's INPUTS or WithInputsDigests; on the index, the
	// version's: the sha256 of the lines "ARCH DIGEST\n" of its entries,
	// sorted. A build whose inputs digest is already published can be
	// skipped (CatalogDoc.Published).
	AnnotationInputsDigest = "org.bakery.sysext.inputs-digest"
)

// levelAnnotation is the annotation holding class c's level field:
// org.bakery.sysext.sysext-level or org.bakery.sysext.confext-level.
func levelAnnotation(c sysext.Class) string {
	return "org.bakery.sysext." + strings.ToLower(strings.ReplaceAll(c.LevelField, "_", "-"))
}
