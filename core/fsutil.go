package core

import (
	"errors"
	"fmt"
	"io"
	"path"
)

// TempSuffix ends the name of every temporary file written by
// WriteFileAtomic. Recovery code deletes leftovers with this suffix: they are
// writes that a crash interrupted before their rename.
const TempSuffix = ".tmp"

// ErrFileTooLarge is returned by ReadFile for a file above its size limit.
var ErrFileTooLarge = errors.New("file larger than its limit")

// WriteFileAtomic replaces dir/name with data durably and atomically: it
// writes dir/name+TempSuffix, syncs it, renames it over dir/name and syncs
// dir. When it returns nil the new contents are durable; after a crash at
// any point the file holds either its old or its new contents, never a mix.
func WriteFileAtomic(fsys FS, dir, name string, data []byte) error {
	final := path.Join(dir, name)
	temp := final + TempSuffix
	file, err := fsys.Create(temp)
	if err != nil {
		return err
	}
	if _, err := file.Write(data); err != nil {
		file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(temp, final); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// ReadFile reads a whole file of at most limitBytes bytes, so that a garbled
// or hostile file cannot make the caller allocate without bound. A missing
// file gives an error matching fs.ErrNotExist, a larger one ErrFileTooLarge.
func ReadFile(fsys FS, name string, limitBytes int64) ([]byte, error) {
	file, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	size, err := file.Size()
	if err != nil {
		return nil, err
	}
	if size > limitBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrFileTooLarge, name, size, limitBytes)
	}
	data := make([]byte, size)
	if _, err := file.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}
