package core

import "errors"

// Errors that FS and File implementations return (wrapped, so match them with
// errors.Is). A missing or already existing file is reported with io/fs's
// fs.ErrNotExist and fs.ErrExist.
var (
	// ErrNoSpace means the disk is full. The operation may have written a
	// prefix of its data (File.Write reports how much); the file is otherwise
	// unchanged and stays usable. Sync may also return ErrNoSpace (delayed
	// allocation); it then means what a failed Sync with ErrIO means.
	ErrNoSpace = errors.New("no space left on device")

	// ErrIO means the device failed the operation. After a failed Sync the
	// durable contents of the unsynced range are unknown: Linux forgets the
	// error once reported, so a retried Sync that succeeds proves nothing.
	// Callers must treat the file as damaged, stop writing to it, and recover
	// from what a restart finds on disk. After a failed Sync, reads of the
	// unsynced range may return the last durable content, or zeros past it
	// (Linux drops dirty pages after a writeback error). ReadAt may fail with
	// ErrIO every time over a damaged range (a latent sector error), and
	// bytes read back may differ from those written (corruption at rest):
	// verify checksums.
	ErrIO = errors.New("input/output error")
)

// FS is the file system a node persists to. Names are slash-separated paths
// relative to the node's data directory; "." is that directory. Names must be
// clean (path.Clean) and must not escape the root (no leading "/" or "..");
// implementations reject such names with an error.
//
// Durability contract, the same in production and in the simulator:
//   - A file's data and size are durable only after File.Sync returns nil.
//   - A directory entry (a created, renamed or removed name) is durable only
//     after SyncDir of the directory holding it returns nil. A file that was
//     created and synced, but whose directory was never synced, may vanish in
//     a crash.
//   - Rename atomically replaces newName; after a crash either the old or the
//     new entry exists, never neither, and never a mix of contents.
//
// The usual durable replace is therefore: Create temp, Write, Sync, Close,
// Rename(temp, final), SyncDir(dir).
//
// Failed calls. A call that fails for a reason other than a missing or
// existing name or a bad name may still have taken effect: after a failed
// Create the file may exist, empty or truncated, though no File is
// returned; after a failed Remove or RemoveAll the name, or any part of the
// tree, may be gone; after a failed Rename either the old or the new name
// exists, never neither; after a failed MkdirAll any of the directories may
// exist; after a failed Truncate the size is the old or the new one (Size
// tells which); a failed Close releases the File anyway. A failed Open,
// ReadDir, ReadAt or Size changes nothing. A failed Write appended the
// prefix it reports. The simulated disk (sim.Disk) does each of these.
type FS interface {
	// Create creates the named file, or truncates it if it exists, and opens
	// it for reading and appending. The parent directory must exist.
	Create(name string) (File, error)

	// Open opens an existing file for reading and appending. Writes go to the
	// end of the file. Missing files give an error matching fs.ErrNotExist.
	Open(name string) (File, error)

	// Remove removes a file or an empty directory.
	Remove(name string) error

	// RemoveAll removes name and everything below it. A missing name is not an
	// error.
	RemoveAll(name string) error

	// Rename renames oldName to newName, replacing newName if it is a file.
	Rename(oldName, newName string) error

	// MkdirAll creates dir and any missing parents. Existing directories are
	// not an error.
	MkdirAll(dir string) error

	// ReadDir returns the names of the entries of dir, sorted.
	ReadDir(dir string) ([]DirEntry, error)

	// SyncDir makes the entries of dir durable.
	SyncDir(dir string) error
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name  string // base name
	IsDir bool
}

// File is an open file. A File is used by one node at a time; it is not safe
// for concurrent use.
type File interface {
	// Write appends p to the end of the file. It returns len(p) and nil, or the
	// number of leading bytes of p that were written and an error (ErrNoSpace
	// when the disk is full). Write does not retain p.
	Write(p []byte) (n int, err error)

	// ReadAt reads len(p) bytes at offset off, like io.ReaderAt: when it
	// returns n < len(p) it also returns an error, io.EOF at the end of the
	// file. ReadAt sees every completed Write, synced or not. It does not
	// retain p.
	ReadAt(p []byte, off int64) (n int, err error)

	// Sync makes the file's current contents and size durable. See ErrIO for
	// what a failed Sync means.
	Sync() error

	// Truncate changes the file's size to size bytes; later writes append at
	// the new end. Growing a file fills the gap with zeros. The new size is
	// durable only after Sync.
	Truncate(size int64) error

	// Size returns the file's current size in bytes, including unsynced
	// writes.
	Size() (int64, error)

	// Close releases the file. It does not sync.
	Close() error
}

// PrefixSyncer is implemented by files that can promise less than Sync: a
// real fsync that started when the file was sizeBytes long makes at least
// that prefix durable, and maybe what was appended while it ran. The
// simulated disk implements it with exactly the prefix, the harshest
// reading, so that code claiming more than its fsync covered is caught.
type PrefixSyncer interface {
	SyncPrefix(sizeBytes int64) error
}

// SyncPrefix makes at least the first sizeBytes bytes of f durable:
// f.SyncPrefix when f implements PrefixSyncer, else f.Sync. A failure
// means what a failed Sync means.
func SyncPrefix(f File, sizeBytes int64) error {
	if ps, ok := f.(PrefixSyncer); ok {
		return ps.SyncPrefix(sizeBytes)
	}
	return f.Sync()
}
