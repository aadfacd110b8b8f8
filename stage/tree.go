package stage

import (
	"context"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Tree copies the local directory tree srcDir into root as [Archive]
// unpacks an archive under opts (its entries in lexical order; Origin
// defaults to srcDir), keeping permission, setuid, setgid and sticky bits
// and storing symbolic links as they are. Device nodes, fifos and sockets
// are refused with [ErrDevice], and so is anything that would be written
// through a symbolic link already in root. The mode of srcDir itself is
// not copied onto opts.To. It stops when ctx is done.
func Tree(ctx context.Context, root *os.Root, srcDir string, opts Options) error {
	if opts.Origin == "" {
		opts.Origin = srcDir
	}
	st, err := newStager(ctx, root, opts.Origin, opts)
	if err != nil {
		return err
	}
	src, err := newTreeSource(srcDir)
	if err != nil {
		return err
	}
	return st.run(src)
}

// File installs the content of src as the regular file to, an absolute
// path inside root, with mode (0 means 0644; setuid, setgid and sticky bits
// are kept). Missing parents are created with mode 0755. A file already at
// to is replaced; a directory or symbolic link there is refused. At most
// [DefaultMaxBytes] are written, until ctx is done. Errors start with
// origin, which names src (such as the URL it was downloaded from).
func File(ctx context.Context, root *os.Root, src io.Reader, origin, to string, mode fs.FileMode) error {
	if mode == 0 {
		mode = 0o644
	}
	st, err := newStager(ctx, root, origin, Options{})
	if err != nil {
		return err
	}
	m := &member{
		name: strings.TrimLeft(to, "/"),
		kind: kindFile,
		mode: normalMode(mode),
		size: -1,
		open: func() (io.ReadCloser, error) { return io.NopCloser(src), nil },
	}
	return st.run(&listSource{m})
}
