package sim

import (
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// TestSyncPrefixKeepsOnlyThePrefix appends, starts a prefix sync at the
// first size, appends more, and crashes: only the prefix survives, the
// least a real fsync promises for writes that raced it.
func TestSyncPrefixKeepsOnlyThePrefix(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{})
	f, err := d.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("durable")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("-raced")); err != nil {
		t.Fatal(err)
	}
	if err := core.SyncPrefix(f, int64(len("durable"))); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	g, err := d.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	if size, _ := g.Size(); size != int64(len("durable")) {
		t.Fatalf("size %d after the crash, want %d: only the prefix was synced", size, len("durable"))
	}
	// A prefix shorter than what is already durable changes nothing, and a
	// prefix past the end syncs the whole file.
	if _, err := g.Write([]byte("+more")); err != nil {
		t.Fatal(err)
	}
	if err := core.SyncPrefix(g, 1000); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	h, _ := d.Open("f")
	if size, _ := h.Size(); size != int64(len("durable+more")) {
		t.Fatalf("size %d, want %d after a prefix past the end", size, len("durable+more"))
	}
}
