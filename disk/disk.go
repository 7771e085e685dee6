package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"

	"github.com/kafkasim/kafkasim/core"
)

// Permissions of the files and directories the broker creates. Data is private
// to the broker's user; group read lets operators inspect it.
const (
	filePerm fs.FileMode = 0o640
	dirPerm  fs.FileMode = 0o750
)

// FS is a core.FS over the operating system's file system, rooted at one
// directory. It is safe for use by one node at a time, as core.FS requires.
type FS struct {
	root *os.Root
}

var _ core.FS = (*FS)(nil)

// New returns an FS rooted at the directory root, creating it (and its
// parents) if it is missing.
func New(root string) (*FS, error) {
	if root == "" {
		return nil, errors.New("disk: New: empty root directory")
	}
	if err := os.MkdirAll(root, dirPerm); err != nil {
		return nil, mapError("mkdir root", root, err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, mapError("open root", root, err)
	}
	return &FS{root: r}, nil
}

// Close releases the root directory handle. Files opened earlier stay usable.
func (d *FS) Close() error {
	return mapError("close root", ".", d.root.Close())
}

// Create implements core.FS.
func (d *FS) Create(name string) (core.File, error) {
	if err := checkFileName(name); err != nil {
		return nil, err
	}
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC | os.O_APPEND
	return d.openFile("create", name, flags)
}

// Open implements core.FS.
func (d *FS) Open(name string) (core.File, error) {
	if err := checkFileName(name); err != nil {
		return nil, err
	}
	return d.openFile("open", name, os.O_RDWR|os.O_APPEND)
}

// openFile opens name with flags. O_APPEND makes every write land at the
// current end of the file, also after a Truncate, as core.File requires.
func (d *FS) openFile(op, name string, flags int) (core.File, error) {
	f, err := d.root.OpenFile(name, flags, filePerm)
	if err != nil {
		return nil, mapError(op, name, err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, mapError(op, name, err)
	}
	if info.IsDir() {
		// Opening a directory read-write fails on Linux already; this
		// covers systems where it does not.
		_ = f.Close()
		return nil, fmt.Errorf("disk: %s %q: is a directory", op, name)
	}
	return &File{name: name, file: f}, nil
}

// Remove implements core.FS.
func (d *FS) Remove(name string) error {
	if err := checkFileName(name); err != nil {
		return err
	}
	return mapError("remove", name, d.root.Remove(name))
}

// RemoveAll implements core.FS. Removing the root itself is refused, because
// it would pull the data directory out from under the node.
func (d *FS) RemoveAll(name string) error {
	if err := checkFileName(name); err != nil {
		return err
	}
	return mapError("remove all", name, d.root.RemoveAll(name))
}

// Rename implements core.FS.
func (d *FS) Rename(oldName, newName string) error {
	if err := checkFileName(oldName); err != nil {
		return err
	}
	if err := checkFileName(newName); err != nil {
		return err
	}
	return mapError("rename", oldName+" -> "+newName, d.root.Rename(oldName, newName))
}

// MkdirAll implements core.FS.
func (d *FS) MkdirAll(dir string) error {
	if err := CheckName(dir); err != nil {
		return err
	}
	if dir == "." {
		return nil
	}
	return mapError("mkdir", dir, d.root.MkdirAll(dir, dirPerm))
}

// ReadDir implements core.FS.
func (d *FS) ReadDir(dir string) ([]core.DirEntry, error) {
	if err := CheckName(dir); err != nil {
		return nil, err
	}
	f, err := d.root.Open(dir)
	if err != nil {
		return nil, mapError("readdir", dir, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, mapError("readdir", dir, err)
	}
	result := make([]core.DirEntry, 0, len(entries))
	for _, entry := range entries {
		result = append(result, core.DirEntry{Name: entry.Name(), IsDir: entry.IsDir()})
	}
	// os.File.ReadDir returns directory order; the contract promises sorted.
	slices.SortFunc(result, func(a, b core.DirEntry) int {
		return compareStrings(a.Name, b.Name)
	})
	return result, nil
}

// SyncDir implements core.FS by opening the directory and fsyncing it, which
// makes its entries (created, renamed and removed names) durable.
func (d *FS) SyncDir(dir string) error {
	if err := CheckName(dir); err != nil {
		return err
	}
	f, err := d.root.Open(dir)
	if err != nil {
		return mapError("syncdir", dir, err)
	}
	syncErr := f.Sync()
	closeErr := f.Close()
	if syncErr != nil {
		return mapError("syncdir", dir, syncErr)
	}
	return mapError("syncdir", dir, closeErr)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// File is a core.File over an *os.File opened for reading and appending.
type File struct {
	name   string
	file   *os.File
	closed bool
}

var _ core.File = (*File)(nil)

// Write implements core.File.
func (f *File) Write(p []byte) (int, error) {
	if f.closed {
		return 0, f.closedError("write")
	}
	n, err := f.file.Write(p)
	return n, mapError("write", f.name, err)
}

// ReadAt implements core.File. At the end of the file it returns io.EOF itself,
// unwrapped, as io.ReaderAt callers expect.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, f.closedError("read")
	}
	if off < 0 {
		return 0, fmt.Errorf("disk: read %q: negative offset %d", f.name, off)
	}
	n, err := f.file.ReadAt(p, off)
	if err == io.EOF {
		return n, io.EOF
	}
	return n, mapError("read", f.name, err)
}

// Sync implements core.File with fdatasync, which flushes the data and the
// size (the metadata needed to read the data back) but not timestamps.
func (f *File) Sync() error {
	if f.closed {
		return f.closedError("sync")
	}
	return mapError("sync", f.name, fdatasync(f.file))
}

// Truncate implements core.File. The file is open with O_APPEND, so later
// writes land at the new end.
func (f *File) Truncate(size int64) error {
	if f.closed {
		return f.closedError("truncate")
	}
	if size < 0 {
		return fmt.Errorf("disk: truncate %q: negative size %d", f.name, size)
	}
	return mapError("truncate", f.name, f.file.Truncate(size))
}

// Size implements core.File.
func (f *File) Size() (int64, error) {
	if f.closed {
		return 0, f.closedError("size")
	}
	info, err := f.file.Stat()
	if err != nil {
		return 0, mapError("size", f.name, err)
	}
	return info.Size(), nil
}

// Close implements core.File. Closing twice is an error wrapping fs.ErrClosed.
func (f *File) Close() error {
	if f.closed {
		return f.closedError("close")
	}
	f.closed = true
	return mapError("close", f.name, f.file.Close())
}

func (f *File) closedError(op string) error {
	return fmt.Errorf("disk: %s %q: %w", op, f.name, fs.ErrClosed)
}

// mapError wraps err with the operation and name, and adds the core sentinel
// that matches its errno, so callers can match core.ErrNoSpace and core.ErrIO
// with errors.Is. fs.ErrNotExist, fs.ErrExist and fs.ErrClosed already match
// the wrapped os error. A nil err gives nil.
func mapError(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("disk: %s %q: %w: %w", op, name, core.ErrNoSpace, err)
	case errors.Is(err, syscall.EIO):
		return fmt.Errorf("disk: %s %q: %w: %w", op, name, core.ErrIO, err)
	}
	return fmt.Errorf("disk: %s %q: %w", op, name, err)
}
