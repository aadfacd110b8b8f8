// Package squashfs writes and reads squashfs 4.0 file-system images.
//
// It is hand-written because no Go library does this well: go-diskfs
// v1.9.4's squashfs writer writes corrupt directory tables on large trees
// (the kernel shows directories empty, without an error), drops uid/gid and
// setuid bits, panics on xattrs, and its zstd, xz and lz4 blocks do not
// mount. The layout follows mksquashfs (squashfs-tools) and the kernel's
// fs/squashfs: data blocks and fragments first, then the inode, directory,
// fragment, export, id and xattr tables, padded to 4 KiB.
//
// The writer compresses blocks in parallel with a bounded pipeline and
// writes them in a fixed order, so its output is byte-identical across runs
// and GOMAXPROCS values, and its memory use does not grow with file sizes
// (metadata tables are kept in memory, as mksquashfs does). The reader
// (Open) implements io/fs over an image written by this package or by
// mksquashfs and is safe on hostile images.
package squashfs
