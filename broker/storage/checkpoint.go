package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"

	"github.com/kafkasim/kafkasim/core"
)

// checkpointBytesMax bounds a checkpoint file, so that a garbled file cannot
// make Open allocate without limit. The largest checkpoint is the leader
// epoch file at epochEntriesMax lines of two numbers.
const checkpointBytesMax = 64 + epochEntriesMax*42

// checkpointVersion is the first line of every checkpoint file, as in Kafka.
const checkpointVersion = "0"

// errBadCheckpoint marks a checkpoint file that exists but does not parse.
var errBadCheckpoint = errors.New("storage: bad checkpoint file")

// writeCheckpoint replaces dir/name with data durably and atomically: write a
// temporary file, sync it, rename it over the old one, sync the directory.
// After a crash the file holds either its old or its new contents.
func writeCheckpoint(fsys core.FS, dir, name string, data []byte) error {
	assert(len(data) <= checkpointBytesMax, "checkpoint too large")
	return core.WriteFileAtomic(fsys, dir, name, data)
}

// readWholeFile reads a file of at most limitBytes bytes. A missing file
// returns an error matching fs.ErrNotExist; a larger one errBadCheckpoint.
// The file is read until two consecutive reads agree (stableRead), so that a
// transient read error (a flipped bit) cannot make recovery trust a wrong
// checkpoint or index; a file that never reads the same twice fails with
// errUnstableRead, which fails Open rather than discard the file.
func readWholeFile(fsys core.FS, name string, limitBytes int64) ([]byte, error) {
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
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", errBadCheckpoint, name, size, limitBytes)
	}
	data := make([]byte, size)
	if err := stableRead(file, data, make([]byte, size), 0); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

// encodeOffsetCheckpoint formats a single-offset checkpoint.
func encodeOffsetCheckpoint(offset int64) []byte {
	assert(offset >= 0, "negative checkpoint offset")
	return fmt.Appendf(nil, "%s\n%d\n", checkpointVersion, offset)
}

// readOffsetCheckpoint reads a single-offset checkpoint. found is false when
// the file does not exist; a garbled file gives errBadCheckpoint.
func readOffsetCheckpoint(fsys core.FS, dir, name string) (offset int64, found bool, err error) {
	data, err := readWholeFile(fsys, path.Join(dir, name), checkpointBytesMax)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) != 3 || string(lines[0]) != checkpointVersion || len(lines[2]) != 0 {
		return 0, false, fmt.Errorf("%w: %s", errBadCheckpoint, name)
	}
	offset, err = strconv.ParseInt(string(lines[1]), 10, 64)
	if err != nil || offset < 0 {
		return 0, false, fmt.Errorf("%w: %s: offset %q", errBadCheckpoint, name, lines[1])
	}
	return offset, true, nil
}
