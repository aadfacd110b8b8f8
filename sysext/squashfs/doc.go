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
// The writer, Write, takes a tree (package sysext/tree, which Builder reads
// from a staged directory) and keeps squashfs's layout and limits alone.
// It compresses blocks in parallel with a bounded pipeline and
// writes them in a fixed order, so its output is byte-identical across runs
// and GOMAXPROCS values. Its memory use does not grow with file sizes and
// grows with the file count by a few dozen bytes per file: the inode and
// directory tables are written, compressed, as the data of their files
// is (so their compression overlaps the data's), and kept in memory until
// the data ends, as mksquashfs does. Files with equal content share their
// data; only files of a size another file has are hashed, and equal
// hashes are confirmed byte for byte.
//
// Compression: built with cgo (the default where a C compiler is
// present), zstd blocks are compressed by libzstd (bundled by
// github.com/DataDog/zstd), xz blocks by liblzma and gzip blocks by zlib
// (both linked statically), the libraries mksquashfs uses, so an image is
// as small as mksquashfs's at the same settings. Built without cgo,
// klauspost/compress and ulikunitz/xz take their place: images still
// mount everywhere but are up to ~7% (zstd 15), ~13% (xz) and ~1% (gzip 9)
// larger. lz4 is pure Go in both builds. From zstd level 10 and with xz, a
// block that zstd's fastest level can shrink neither as a whole nor in any
// 4 KiB piece is stored without trying the slow compressor. The reader
// (Open) implements io/fs over an image written by this package or by
// mksquashfs and is safe on hostile images: no operation works or
// allocates out of proportion to the image's tables, and Walk stops at
// directory loops.
package squashfs
