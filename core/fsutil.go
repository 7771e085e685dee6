package core

import (
	"errors"
	"fmt"
	"hash/crc32"
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

// MkdirAllDurable creates dir and any missing parents and makes each new
// entry durable in its parent: a new directory vanishes in a crash until its
// parent is synced, taking every file written below it along.
func MkdirAllDurable(fsys FS, dir string) error {
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if err := fsys.SyncDir(path.Dir(d)); err != nil {
			return err
		}
	}
	return nil
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

// ErrChecksum is returned by ReadFileChecked for a file whose checksum does
// not match its contents on any of several reads.
var ErrChecksum = errors.New("file checksum mismatch")

// checkedReadsMax bounds the reads of a checksummed file whose checksum
// does not match: a transient flip on read goes away on a re-read, a
// corrupt file does not.
const checkedReadsMax = 16

// checksumTrailerBytes is the size of the trailer WriteFileChecked appends:
// "crc32c:" and eight hex digits and a newline.
const checksumTrailerBytes = len("crc32c:") + 8 + 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteFileChecked is WriteFileAtomic for metadata files that decide what
// happens to data (which topics exist, which ids are used): it appends a
// trailer line "crc32c:XXXXXXXX" so that a reader can tell a flipped bit
// from the truth instead of acting on it.
func WriteFileChecked(fsys FS, dir, name string, data []byte) error {
	out := make([]byte, 0, len(data)+checksumTrailerBytes)
	out = append(out, data...)
	out = fmt.Appendf(out, "crc32c:%08x\n", crc32.Checksum(data, castagnoli))
	return WriteFileAtomic(fsys, dir, name, out)
}

// ReadFileChecked reads a file written by WriteFileChecked and returns its
// contents without the trailer. A checksum mismatch is re-read a few times;
// if it persists the error wraps ErrChecksum, and the caller must refuse to
// act on the file rather than guess.
func ReadFileChecked(fsys FS, name string, limitBytes int64) ([]byte, error) {
	var last error
	for range checkedReadsMax {
		raw, err := ReadFile(fsys, name, limitBytes)
		if err != nil {
			return nil, err
		}
		data, err := splitChecksum(raw)
		if err == nil {
			return data, nil
		}
		last = err
	}
	return nil, fmt.Errorf("%s: %w", name, last)
}

func splitChecksum(raw []byte) ([]byte, error) {
	if len(raw) < checksumTrailerBytes {
		return nil, fmt.Errorf("%w: %d bytes is too short for a checksum trailer", ErrChecksum, len(raw))
	}
	data, trailer := raw[:len(raw)-checksumTrailerBytes], raw[len(raw)-checksumTrailerBytes:]
	var stored uint32
	if _, err := fmt.Sscanf(string(trailer), "crc32c:%08x\n", &stored); err != nil {
		return nil, fmt.Errorf("%w: no checksum trailer", ErrChecksum)
	}
	if computed := crc32.Checksum(data, castagnoli); computed != stored {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, stored, computed)
	}
	return data, nil
}
