package disk_test

import (
	"errors"
	"io/fs"
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
)

// TestFaultAfterAndCount checks a Fault's matching: only its operation and
// path prefix count, After matches pass, then Count matches fail, then all
// pass again; by recording which of a series of writes failed.
func TestFaultAfterAndCount(t *testing.T) {
	fault := &disk.Fault{Op: disk.OpWrite, PathPrefix: "topic-0/", After: 2, Count: 3, Err: core.ErrNoSpace}
	fsys := disk.WithFaults(newTempFS(t), fault)
	if err := fsys.MkdirAll("topic-0"); err != nil {
		t.Fatal(err)
	}
	segment, err := fsys.Create("topic-0/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer segment.Close()
	other, err := fsys.Create("other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var failed []bool
	for range 7 {
		if _, err := other.Write([]byte("x")); err != nil {
			t.Fatalf("write outside the prefix failed: %v", err)
		}
		n, err := segment.Write([]byte("x"))
		if err != nil && (n != 0 || !errors.Is(err, core.ErrNoSpace)) {
			t.Fatalf("failed write = %d, %v", n, err)
		}
		failed = append(failed, err != nil)
	}
	if want := []bool{false, false, true, true, true, false, false}; !slices.Equal(failed, want) {
		t.Fatalf("failures = %v, want %v", failed, want)
	}
	if size, _ := segment.Size(); size != 4 || fault.Injected() != 3 {
		t.Fatalf("size = %d, injected = %d; want 4 and 3 (failed writes write nothing)", size, fault.Injected())
	}
}

// TestFaultsCompose checks that Injectors consults its injectors in order,
// that an OpAny fault matches every operation kind, and that a failed
// operation leaves the inner file system unchanged.
func TestFaultsCompose(t *testing.T) {
	var seen []string
	recorder := disk.InjectorFunc(func(op disk.Op, name string) error {
		seen = append(seen, op.String()+" "+name)
		return nil
	})
	rename := &disk.Fault{Op: disk.OpRename, PathPrefix: "final", Err: core.ErrIO}
	inner := newTempFS(t)
	fsys := disk.WithFaults(inner, disk.Injectors{recorder, rename})
	f, err := fsys.Create("tmp")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename("tmp", "final"); !errors.Is(err, core.ErrIO) {
		t.Fatalf("Rename = %v, want core.ErrIO", err)
	}
	if _, err := inner.Open("final"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("failed rename reached the inner FS: %v", err)
	}
	want := []string{"create tmp", "sync tmp", "rename tmp", "rename final"}
	if !slices.Equal(seen, want) {
		t.Fatalf("injector saw %q, want %q", seen, want)
	}
	everything := &disk.Fault{Err: core.ErrIO}
	broken := disk.WithFaults(inner, everything)
	if _, err := broken.ReadDir("."); !errors.Is(err, core.ErrIO) {
		t.Fatalf("ReadDir under an OpAny fault = %v", err)
	}
	if err := broken.SyncDir("."); !errors.Is(err, core.ErrIO) {
		t.Fatalf("SyncDir under an OpAny fault = %v", err)
	}
}
