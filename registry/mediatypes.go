package registry

import "github.com/google/go-containerregistry/pkg/v1/types"

// Media and artifact types of published extensions.
const (
	// ArtifactType marks indexes and manifests of sysext images.
	ArtifactType = "application/vnd.bakery.sysext.v1"
	// ConfigMediaType is the per-arch config blob: extension-release
	// fields and provenance (see Config).
	ConfigMediaType types.MediaType = "application/vnd.bakery.sysext.config.v1+json"
	// LayerMediaTypePrefix + fstype ("squashfs", "erofs") is the media type
	// of an image layer holding that file system.
	LayerMediaTypePrefix = "application/vnd.bakery.sysext.layer.v1."
	// LayerMediaTypeDDI is the media type of a DDI (GPT disk image) layer.
	LayerMediaTypeDDI types.MediaType = "application/vnd.efi.img"
	// CatalogArtifactType marks the namespace's catalog manifest.
	CatalogArtifactType = "application/vnd.bakery.catalog.v1"
	// CatalogMediaType is the catalog's single layer (see CatalogDoc).
	CatalogMediaType types.MediaType = "application/vnd.bakery.catalog.v1+json"
	// emptyMediaType is the OCI empty descriptor's media type.
	emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"
)

// Annotation keys bakery sets on indexes, index entries and layers.
const (
	AnnotationTitle        = "org.opencontainers.image.title"
	AnnotationVersion      = "org.opencontainers.image.version"
	AnnotationCreated      = "org.opencontainers.image.created"
	AnnotationDescription  = "org.opencontainers.image.description"
	AnnotationName         = "org.bakery.sysext.name"
	AnnotationID           = "org.bakery.sysext.id"
	AnnotationSysextLevel  = "org.bakery.sysext.sysext-level"
	AnnotationVersionID    = "org.bakery.sysext.version-id"
	AnnotationArchitecture = "org.bakery.sysext.architecture"
	AnnotationScope        = "org.bakery.sysext.scope"
	AnnotationFSType       = "org.bakery.sysext.fstype"
	// AnnotationClass is the image class, "sysext" (the default when it
	// is missing) or "confext".
	AnnotationClass = "org.bakery.sysext.class"
	// AnnotationInputsDigest is the digest of the recipe and all source
	// digests, given by the publisher with WithAnnotations: a build whose
	// inputs-digest is already published can be skipped.
	AnnotationInputsDigest = "org.bakery.sysext.inputs-digest"
)

// isImageLayer tells the layer media types of sysext images.
func isImageLayer(mt types.MediaType) bool {
	switch mt {
	case LayerMediaTypePrefix + "squashfs", LayerMediaTypePrefix + "erofs", LayerMediaTypeDDI:
		return true
	}
	return false
}
