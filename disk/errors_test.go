package disk

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// TestMapError checks that each errno the contract names is mapped to its
// core or io/fs sentinel while the errno itself stays matchable, by mapping
// path errors built from those errnos.
func TestMapError(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ENOSPC, core.ErrNoSpace},
		{syscall.EDQUOT, core.ErrNoSpace},
		{syscall.EIO, core.ErrIO},
		{syscall.ENOENT, fs.ErrNotExist},
		{syscall.EEXIST, fs.ErrExist},
		{syscall.ENOTEMPTY, fs.ErrExist},
	}
	for _, test := range tests {
		err := mapError("write", "a", &os.PathError{Op: "write", Path: "a", Err: test.errno})
		if !errors.Is(err, test.want) || !errors.Is(err, test.errno) {
			t.Errorf("mapError(%v) = %v; want it to match %v and the errno", test.errno, err, test.want)
		}
	}
	if mapError("write", "a", nil) != nil {
		t.Error("mapError(nil) is not nil")
	}
}

// TestWriteToFullDevice checks the ENOSPC path end to end with a real device
// that is always full: writes to /dev/full fail with ENOSPC, which File.Write
// must report as core.ErrNoSpace.
func TestWriteToFullDevice(t *testing.T) {
	device, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full on this system: %v", err)
	}
	f := &File{name: "/dev/full", file: device}
	defer f.Close()
	n, err := f.Write([]byte("data"))
	if n != 0 || !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("Write to /dev/full = %d, %v; want 0 and core.ErrNoSpace", n, err)
	}
}

// TestBadNamesWrapErrBadName checks that the real disk reports invalid names
// with ErrBadName, so callers can tell bad input from I/O failures.
func TestBadNamesWrapErrBadName(t *testing.T) {
	fsys, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	for _, name := range []string{"", "/etc/passwd", "../x", "a/../b", "a/", "."} {
		if _, err := fsys.Create(name); !errors.Is(err, ErrBadName) {
			t.Errorf("Create(%q) = %v, want ErrBadName", name, err)
		}
	}
	if err := CheckName("topic-0/00000000000000000000.log"); err != nil {
		t.Errorf("CheckName of a segment name: %v", err)
	}
}

// TestNewRejectsFile checks that New fails with a clear error when the root
// is an existing file rather than a directory.
func TestNewRejectsFile(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(file); err == nil {
		t.Fatal("New on a regular file succeeded")
	}
	if _, err := New(""); err == nil {
		t.Fatal("New with an empty root succeeded")
	}
}
