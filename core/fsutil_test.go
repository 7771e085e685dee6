package core_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// TestWriteFileAtomicSurvivesCrash checks the promise of WriteFileAtomic on
// the simulated disk, which forgets everything unsynced: once it returns, a
// crash keeps the new contents; when it fails at any step, a crash leaves the
// old contents, never a mix and never nothing.
func TestWriteFileAtomicSurvivesCrash(t *testing.T) {
	steps := []sim.DiskOp{sim.DiskOpCreate, sim.DiskOpWrite, sim.DiskOpSync, sim.DiskOpRename, sim.DiskOpSyncDir}
	for _, failing := range steps {
		t.Run(failing.String(), func(t *testing.T) {
			disk := sim.NewDisk(core.NewRand(1), sim.DiskOptions{})
			if err := disk.MkdirAll("dir"); err != nil {
				t.Fatal(err)
			}
			if err := disk.SyncDir("."); err != nil {
				t.Fatal(err)
			}
			if err := core.WriteFileAtomic(disk, "dir", "state", []byte("old")); err != nil {
				t.Fatal(err)
			}
			disk.Crash()
			assertContents(t, disk, "old")

			disk.InjectFault(sim.DiskFault{Op: failing, Err: core.ErrIO, Count: 1})
			if err := core.WriteFileAtomic(disk, "dir", "state", []byte("new")); !errors.Is(err, core.ErrIO) {
				t.Fatalf("failing %s: got %v, want ErrIO", failing, err)
			}
			disk.ClearFaults()
			disk.Crash()
			got := contents(t, disk)
			// A failed directory sync may or may not have made the rename
			// durable; every other failure must leave the old contents.
			if got != "old" && !(failing == sim.DiskOpSyncDir && got == "new") {
				t.Fatalf("failing %s: after crash the file holds %q", failing, got)
			}

			if err := core.WriteFileAtomic(disk, "dir", "state", []byte("newer")); err != nil {
				t.Fatal(err)
			}
			disk.Crash()
			assertContents(t, disk, "newer")
		})
	}
}

// TestReadFileBounds checks that ReadFile refuses files above its limit and
// reports missing files with fs.ErrNotExist.
func TestReadFileBounds(t *testing.T) {
	disk := sim.NewDisk(core.NewRand(1), sim.DiskOptions{})
	if err := core.WriteFileAtomic(disk, ".", "f", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if _, err := core.ReadFile(disk, "f", 4); !errors.Is(err, core.ErrFileTooLarge) {
		t.Fatalf("got %v, want ErrFileTooLarge", err)
	}
	if data, err := core.ReadFile(disk, "f", 5); err != nil || string(data) != "12345" {
		t.Fatalf("got %q, %v", data, err)
	}
	if _, err := core.ReadFile(disk, "missing", 5); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

func contents(t *testing.T, disk core.FS) string {
	t.Helper()
	data, err := core.ReadFile(disk, "dir/state", 1024)
	if err != nil {
		t.Fatalf("read after crash: %v", err)
	}
	return string(data)
}

func assertContents(t *testing.T, disk core.FS, want string) {
	t.Helper()
	if got := contents(t, disk); got != want {
		t.Fatalf("file holds %q, want %q", got, want)
	}
}

// TestReadFileCheckedSurvivesFlipsAndRefusesCorruption writes a checksummed
// file on a disk that flips bits on reads: reads must return the exact
// contents every time (a flipped read is retried), and a file corrupted on
// disk must give ErrChecksum, never wrong contents.
func TestReadFileCheckedSurvivesFlipsAndRefusesCorruption(t *testing.T) {
	disk := sim.NewDisk(core.NewRand(1), sim.DiskOptions{ReadBitFlipProbability: 0.3})
	want := []byte(`{"topics":["orders","payments"]}` + "\n")
	if err := core.WriteFileChecked(disk, ".", "catalog", want); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		got, err := core.ReadFileChecked(disk, "catalog", 1024)
		if err != nil {
			t.Fatalf("read with 30%% flips: %v", err)
		}
		if string(got) != string(want) {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	if err := core.WriteFileAtomic(disk, ".", "catalog", append([]byte(`{"topics":["orderz","payments"]}`+"\n"), []byte("crc32c:00000000\n")...)); err != nil {
		t.Fatal(err)
	}
	if _, err := core.ReadFileChecked(disk, "catalog", 1024); !errors.Is(err, core.ErrChecksum) {
		t.Fatalf("corrupt file: got %v, want ErrChecksum", err)
	}
}
