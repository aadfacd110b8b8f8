// Package registry publishes, signs, pulls and lists systemd system
// extensions in OCI registries, and serves an embedded registry.
//
// An extension version is one OCI image index (artifactType
// ArtifactType) over one manifest per architecture, each with the image
// file as its single uncompressed layer; signatures are Sigstore bundles
// pushed as OCI referrers of the index (see package sign).
package registry
