package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LockFileName is the name of the lock file in a data directory, as in
// Kafka's log directories.
const LockFileName = ".lock"

// lockHolderBytesMax bounds how much of a lock file is read to describe its
// holder, so a stray large file cannot make an error message unbounded.
const lockHolderBytesMax = 4096

// ErrLocked is reported (wrapped in a *LockedError) when another process
// holds the lock of a data directory.
var ErrLocked = errors.New("data directory is locked by another process")

// LockedError says which directory is locked and what its holder wrote
// about itself.
type LockedError struct {
	// Dir is the data directory that could not be locked.
	Dir string
	// Holder is the holder's description from the lock file ("pid 12 ..."),
	// empty when the holder has not written one yet.
	Holder string
}

func (e *LockedError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "holder unknown: it has not written its pid yet"
	}
	return fmt.Sprintf("log.dirs %s is in use by another broker (%s)", e.Dir, holder)
}

// Unwrap lets errors.Is match ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// DirLock is an exclusive advisory lock on a data directory: one process at
// a time owns the directory. The lock is an flock(2) on the directory's
// .lock file, so the kernel releases it when the process dies, however it
// dies (kill -9 included), and a stale lock file never blocks a restart.
type DirLock struct {
	dir  string
	file *os.File
}

// LockDir creates dir if it is missing and takes its lock without waiting.
// It opens (or creates) only the lock file and never changes an existing
// one unless the lock is won, so a second process that loses touches
// nothing in the directory. When another process holds the lock, the error
// is a *LockedError naming the holder.
func LockDir(dir string) (*DirLock, error) {
	if dir == "" {
		return nil, errors.New("disk: LockDir: empty directory")
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, mapError("mkdir", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, mapError("open lock", path, err)
	}
	held, err := tryLock(file)
	if err != nil {
		_ = file.Close()
		return nil, mapError("lock", path, err)
	}
	if !held {
		holder := readHolder(file)
		_ = file.Close()
		return nil, &LockedError{Dir: dir, Holder: holder}
	}
	// A previous holder's description is stale now; clear it so that a
	// process that loses the race before SetHolder does not name a dead
	// process.
	if err := file.Truncate(0); err != nil {
		_ = file.Close()
		return nil, mapError("truncate lock", path, err)
	}
	return &DirLock{dir: dir, file: file}, nil
}

// readHolder returns the holder's description from a lock file, on one
// line, or "" when it cannot be read.
func readHolder(file *os.File) string {
	buffer := make([]byte, lockHolderBytesMax)
	n, _ := file.ReadAt(buffer, 0)
	return strings.Join(strings.Fields(string(buffer[:n])), " ")
}

// SetHolder replaces the lock file's content with a description of the
// holder ("pid 12, listeners 127.0.0.1:9092"), which a process that fails
// to take the lock shows in its error. It is informative only: the lock is
// the flock, not the content.
func (l *DirLock) SetHolder(description string) error {
	path := filepath.Join(l.dir, LockFileName)
	if err := l.file.Truncate(0); err != nil {
		return mapError("truncate lock", path, err)
	}
	if _, err := l.file.WriteAt([]byte(description+"\n"), 0); err != nil {
		return mapError("write lock", path, err)
	}
	return nil
}

// Dir returns the locked directory.
func (l *DirLock) Dir() string { return l.dir }

// Release gives the lock up. Exiting the process releases it as well.
func (l *DirLock) Release() error {
	return mapError("unlock", filepath.Join(l.dir, LockFileName), l.file.Close())
}
