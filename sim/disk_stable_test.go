package sim

import (
	"testing"
)

// TestDiskStableContent: what a fault injector may aim at is the synced
// part of a file that the cache still agrees with, read without a file
// system call; damage then shows in it.
func TestDiskStableContent(t *testing.T) {
	d, f := diskFaultFixture(t, 3, DiskOptions{})
	if _, err := f.Write([]byte("-unsynced")); err != nil {
		t.Fatal(err)
	}
	calls := d.Stats()
	got, err := d.StableContent("d/f")
	if err != nil || string(got) != "durable" {
		t.Fatalf("StableContent = %q, %v; want the synced %q", got, err, "durable")
	}
	if files := d.StableFiles("d/"); len(files) != 1 || files[0] != (StableFile{Name: "d/f", StableBytes: 7}) {
		t.Fatalf("StableFiles = %+v", files)
	}
	if len(d.StableFiles("e/")) != 0 {
		t.Fatal("StableFiles ignored its prefix")
	}
	if d.Stats() != calls {
		t.Fatal("reading the stable content counted as disk activity")
	}
	if err := d.Corrupt("d/f", 2, 3); err != nil {
		t.Fatal(err)
	}
	after, err := d.StableContent("d/f")
	if err != nil {
		t.Fatal(err)
	}
	for i := range after {
		if changed := after[i] != "durable"[i]; changed != (i >= 2 && i < 5) {
			t.Fatalf("byte %d changed=%v after corrupting [2,5): %q", i, changed, after)
		}
	}
	if _, err := d.StableContent("d/missing"); err == nil {
		t.Fatal("StableContent of a missing file succeeded")
	}
}
