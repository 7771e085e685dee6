package disk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/disk"
)

// TestLockDirExcludesASecondOwner takes a directory's lock, then checks that
// a second attempt (another open file description, which flock treats like
// another process) fails with ErrLocked naming the directory and the
// holder's description, leaves the lock file as the holder wrote it, and
// succeeds once the first lock is released.
func TestLockDirExcludesASecondOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "created-by-lock")
	first, err := disk.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SetHolder("pid 42, listeners 127.0.0.1:9092"); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(dir, disk.LockFileName)
	before, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}

	second, err := disk.LockDir(dir)
	if second != nil || !errors.Is(err, disk.ErrLocked) {
		t.Fatalf("second LockDir = %v, %v; want ErrLocked", second, err)
	}
	want := "log.dirs " + dir + " is in use by another broker (pid 42, listeners 127.0.0.1:9092)"
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	after, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatalf("the losing LockDir changed the lock file from %q to %q", before, after)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	third, err := disk.LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Release: %v", err)
	}
	defer third.Release()
	if content, err := os.ReadFile(lockPath); err != nil || len(content) != 0 {
		t.Fatalf("a new holder's lock file still names the old one: %q (%v)", content, err)
	}
}

// TestLockDirUnknownHolder checks the message when the holder has not
// written its description yet (the window between flock and SetHolder).
func TestLockDirUnknownHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := disk.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	_, err = disk.LockDir(dir)
	if err == nil || !strings.Contains(err.Error(), "holder unknown") {
		t.Fatalf("error %v, want one saying the holder is unknown", err)
	}
}
