package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/bits"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk/disktest"
	"pgregory.net/rapid"
)

// TestDiskConformance runs the shared core.FS suite against the simulated
// disk, so that it behaves like the real one wherever no crash is involved.
func TestDiskConformance(t *testing.T) {
	disktest.Run(t, func(t *testing.T) core.FS {
		return NewDisk(core.NewRand(1), DiskOptions{})
	})
}

// diskWriteFile creates name with content, optionally syncing it, and closes it.
func diskWriteFile(t *testing.T, d *Disk, name, content string, sync bool) {
	t.Helper()
	f, err := d.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatalf("Write(%q): %v", name, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatalf("Sync(%q): %v", name, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// diskAppendFile opens name and appends content, optionally syncing.
func diskAppendFile(t *testing.T, d *Disk, name, content string, sync bool) {
	t.Helper()
	f, err := d.Open(name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatalf("Write(%q): %v", name, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatalf("Sync(%q): %v", name, err)
		}
	}
}

// diskRead returns the content of name, or "<missing>".
func diskRead(t *testing.T, d *Disk, name string) string {
	t.Helper()
	f, err := d.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	buffer := make([]byte, size)
	if n, err := f.ReadAt(buffer, 0); n != len(buffer) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(%q) = %d, %v", name, n, err)
	}
	return string(buffer)
}

func diskMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// diskCrashCases are the crash semantics cases: operations on a fresh disk,
// and the content each named file must have after a crash.
var diskCrashCases = []struct {
	name  string
	setup func(t *testing.T, d *Disk)
	want  map[string]string
}{
	{"synced file and dir survive", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "data", true)
		diskMust(t, d.SyncDir("."))
	}, map[string]string{"a": "data"}},
	{"synced file in unsynced dir vanishes", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "data", true)
	}, map[string]string{"a": "<missing>"}},
	{"unsynced file in synced dir is empty", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "data", false)
		diskMust(t, d.SyncDir("."))
	}, map[string]string{"a": ""}},
	{"unsynced appended data is lost", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "abc", true)
		diskMust(t, d.SyncDir("."))
		diskAppendFile(t, d, "a", "def", false)
	}, map[string]string{"a": "abc"}},
	{"synced appended data survives", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "abc", true)
		diskMust(t, d.SyncDir("."))
		diskAppendFile(t, d, "a", "def", true)
	}, map[string]string{"a": "abcdef"}},
	{"unsynced truncate reverts", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "abcdef", true)
		diskMust(t, d.SyncDir("."))
		f, err := d.Open("a")
		diskMust(t, err)
		diskMust(t, f.Truncate(2))
		_, err = f.Write([]byte("XY"))
		diskMust(t, err)
	}, map[string]string{"a": "abcdef"}},
	{"synced truncate then append", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "abcdef", true)
		diskMust(t, d.SyncDir("."))
		f, err := d.Open("a")
		diskMust(t, err)
		diskMust(t, f.Truncate(2))
		_, err = f.Write([]byte("XY"))
		diskMust(t, err)
		diskMust(t, f.Sync())
	}, map[string]string{"a": "abXY"}},
	{"unsynced create over a file reverts", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "old", true)
		diskMust(t, d.SyncDir("."))
		diskWriteFile(t, d, "a", "new", false)
	}, map[string]string{"a": "old"}},
	{"unsynced rename reverts", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "from a", true)
		diskWriteFile(t, d, "b", "from b", true)
		diskMust(t, d.SyncDir("."))
		diskMust(t, d.Rename("a", "b"))
	}, map[string]string{"a": "from a", "b": "from b"}},
	{"synced rename replaces", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "from a", true)
		diskWriteFile(t, d, "b", "from b", true)
		diskMust(t, d.SyncDir("."))
		diskMust(t, d.Rename("a", "b"))
		diskMust(t, d.SyncDir("."))
	}, map[string]string{"a": "<missing>", "b": "from a"}},
	{"durable replace idiom", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "checkpoint", "v1", true)
		diskMust(t, d.SyncDir("."))
		diskWriteFile(t, d, "checkpoint.tmp", "v2", true)
		diskMust(t, d.Rename("checkpoint.tmp", "checkpoint"))
		diskMust(t, d.SyncDir("."))
	}, map[string]string{"checkpoint": "v2", "checkpoint.tmp": "<missing>"}},
	{"unsynced remove reappears", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "durable", true)
		diskMust(t, d.SyncDir("."))
		diskAppendFile(t, d, "a", "+volatile", false)
		diskMust(t, d.Remove("a"))
	}, map[string]string{"a": "durable"}},
	{"synced remove is gone", func(t *testing.T, d *Disk) {
		diskWriteFile(t, d, "a", "durable", true)
		diskMust(t, d.SyncDir("."))
		diskMust(t, d.Remove("a"))
		diskMust(t, d.SyncDir("."))
	}, map[string]string{"a": "<missing>"}},
	{"new directory needs its parent synced", func(t *testing.T, d *Disk) {
		diskMust(t, d.MkdirAll("topic-0"))
		diskWriteFile(t, d, "topic-0/seg", "data", true)
		diskMust(t, d.SyncDir("topic-0"))
	}, map[string]string{"topic-0/seg": "<missing>"}},
	{"new directory with parent synced", func(t *testing.T, d *Disk) {
		diskMust(t, d.MkdirAll("topic-0"))
		diskWriteFile(t, d, "topic-0/seg", "data", true)
		diskMust(t, d.SyncDir("topic-0"))
		diskMust(t, d.SyncDir("."))
	}, map[string]string{"topic-0/seg": "data"}},
	{"cross-directory rename synced through the target", func(t *testing.T, d *Disk) {
		diskMust(t, d.MkdirAll("x"))
		diskMust(t, d.MkdirAll("y"))
		diskMust(t, d.SyncDir("."))
		diskWriteFile(t, d, "x/f", "data", true)
		diskMust(t, d.SyncDir("x"))
		diskMust(t, d.Rename("x/f", "y/f"))
		diskMust(t, d.SyncDir("y"))
	}, map[string]string{"x/f": "<missing>", "y/f": "data"}},
	{"cross-directory rename synced through the source", func(t *testing.T, d *Disk) {
		diskMust(t, d.MkdirAll("x"))
		diskMust(t, d.MkdirAll("y"))
		diskMust(t, d.SyncDir("."))
		diskWriteFile(t, d, "x/f", "data", true)
		diskMust(t, d.SyncDir("x"))
		diskMust(t, d.Rename("x/f", "y/f"))
		diskMust(t, d.SyncDir("x"))
	}, map[string]string{"x/f": "<missing>", "y/f": "data"}},
}

// TestDiskCrashSemantics checks the crash model case by case: each case runs
// operations on a fresh disk, crashes it with torn writes off, and compares
// the contents of the named files (or "<missing>") with what the durability
// contract of core.FS says survives.
func TestDiskCrashSemantics(t *testing.T) {
	for _, test := range diskCrashCases {
		t.Run(test.name, func(t *testing.T) {
			d := NewDisk(core.NewRand(7), DiskOptions{})
			test.setup(t, d)
			before := d.Describe()
			d.Crash()
			for _, name := range diskSortedKeys(test.want) {
				if got := diskRead(t, d, name); got != test.want[name] {
					t.Errorf("after crash %s = %q, want %q\nbefore:\n%safter:\n%s",
						name, got, test.want[name], before, d.Describe())
				}
			}
		})
	}
}

func diskSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for key := range m { // order-independent: sorted below
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// TestDiskCrashInvalidatesHandles checks that a File opened before a crash
// fails every method with fs.ErrClosed afterwards, and that the file can be
// reopened with its durable content.
func TestDiskCrashInvalidatesHandles(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{})
	f, err := d.Create("a")
	diskMust(t, err)
	_, err = f.Write([]byte("abc"))
	diskMust(t, err)
	diskMust(t, f.Sync())
	diskMust(t, d.SyncDir("."))
	d.Crash()
	_, writeErr := f.Write([]byte("x"))
	_, readErr := f.ReadAt(make([]byte, 1), 0)
	_, sizeErr := f.Size()
	for i, err := range []error{writeErr, readErr, sizeErr, f.Sync(), f.Truncate(0), f.Close()} {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("method %d after crash = %v, want fs.ErrClosed", i, err)
		}
	}
	if got := diskRead(t, d, "a"); got != "abc" {
		t.Fatalf("a = %q after crash", got)
	}
}

// TestDiskUsedBytes checks the used-bytes accounting through writes,
// truncation, replacement by rename, removal and a crash that drops unsynced
// data, against sizes computed by hand.
func TestDiskUsedBytes(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{})
	diskWriteFile(t, d, "a", "12345", true)
	diskWriteFile(t, d, "b", "123", false)
	diskMust(t, d.SyncDir("."))
	if got := d.UsedBytes(); got != 8 {
		t.Fatalf("used = %d, want 8", got)
	}
	diskMust(t, d.Rename("b", "a")) // a's 5 bytes are freed
	if got := d.UsedBytes(); got != 3 {
		t.Fatalf("used after rename = %d, want 3", got)
	}
	d.Crash() // a=12345 durable, b durable but empty
	if got := d.UsedBytes(); got != 5 {
		t.Fatalf("used after crash = %d, want 5\n%s", got, d.Describe())
	}
	diskMust(t, d.MkdirAll("dir"))
	diskWriteFile(t, d, "dir/c", "1234567", false)
	diskMust(t, d.RemoveAll("dir"))
	if got := d.UsedBytes(); got != 5 {
		t.Fatalf("used after RemoveAll = %d, want 5", got)
	}
}

// TestDiskTornWrites checks that with TornWriteProbability 1 a crash keeps
// the durable content plus a non-empty prefix of the unsynced tail, that the
// prefix length varies across seeds, and that an unsynced truncation disables
// tearing (the durable content stands).
func TestDiskTornWrites(t *testing.T) {
	const seedsCount = 50
	tail := strings.Repeat("0123456789", 20)
	lengths := map[int]bool{}
	for seed := range uint64(seedsCount) {
		d := NewDisk(core.NewRand(seed), DiskOptions{TornWriteProbability: 1})
		diskWriteFile(t, d, "log", "base|", true)
		diskMust(t, d.SyncDir("."))
		diskAppendFile(t, d, "log", tail, false)
		d.Crash()
		got := diskRead(t, d, "log")
		survived, ok := strings.CutPrefix(got, "base|")
		if !ok || survived == "" || !strings.HasPrefix(tail, survived) {
			t.Fatalf("seed %d: after crash %q, want base| and a non-empty prefix of the tail", seed, got)
		}
		lengths[len(survived)] = true
	}
	if len(lengths) < seedsCount/5 {
		t.Fatalf("only %d distinct torn lengths over %d seeds", len(lengths), seedsCount)
	}

	d := NewDisk(core.NewRand(1), DiskOptions{TornWriteProbability: 1})
	diskWriteFile(t, d, "log", "abcdef", true)
	diskMust(t, d.SyncDir("."))
	f, err := d.Open("log")
	diskMust(t, err)
	diskMust(t, f.Truncate(3))
	_, err = f.Write([]byte("XYZXYZXYZ"))
	diskMust(t, err)
	d.Crash()
	if got := diskRead(t, d, "log"); got != "abcdef" {
		t.Fatalf("after unsynced truncate and crash = %q, want \"abcdef\"", got)
	}
}

// TestDiskFull checks that a write beyond the capacity writes the prefix that
// fits and fails with core.ErrNoSpace, that the file stays usable, that a
// growing Truncate also fails, and that raising the capacity lets writes
// through again.
func TestDiskFull(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{CapacityBytes: 10})
	f, err := d.Create("a")
	diskMust(t, err)
	_, err = f.Write([]byte("123456"))
	diskMust(t, err)
	n, err := f.Write([]byte("abcdef"))
	if n != 4 || !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("Write beyond capacity = %d, %v; want 4, ErrNoSpace", n, err)
	}
	if got := diskRead(t, d, "a"); got != "123456abcd" {
		t.Fatalf("content = %q", got)
	}
	if err := f.Truncate(11); !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("growing Truncate on a full disk = %v, want ErrNoSpace", err)
	}
	diskMust(t, f.Truncate(8))
	if n, err = f.Write([]byte("xyz")); n != 2 || !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("Write after truncate = %d, %v; want 2, ErrNoSpace", n, err)
	}
	d.SetCapacity(0)
	if n, err = f.Write([]byte("more")); n != 4 || err != nil {
		t.Fatalf("Write with unlimited capacity = %d, %v", n, err)
	}
	if got, used := diskRead(t, d, "a"), d.UsedBytes(); got != "123456abxymore" || used != 14 {
		t.Fatalf("content = %q, used = %d", got, used)
	}
}

// TestDiskInjectedFaults checks fault rules: matching by operation and path
// prefix, After and Count, Probability (the share of failures over many
// operations, deterministic for the seed), ClearFaults, and that a failed
// Write writes a prefix of its data and reports its length.
func TestDiskInjectedFaults(t *testing.T) {
	d := NewDisk(core.NewRand(3), DiskOptions{})
	diskMust(t, d.MkdirAll("topic-0"))
	d.InjectFault(DiskFault{Op: DiskOpSync, PathPrefix: "topic-0/", After: 1, Count: 2, Err: core.ErrIO})
	f, err := d.Create("topic-0/seg")
	diskMust(t, err)
	other, err := d.Create("other")
	diskMust(t, err)
	var results []bool
	for range 5 {
		diskMust(t, other.Sync())
		results = append(results, errors.Is(f.Sync(), core.ErrIO))
	}
	if want := []bool{false, true, true, false, false}; !slices.Equal(results, want) {
		t.Fatalf("sync failures = %v, want %v", results, want)
	}

	d.ClearFaults()
	d.InjectFault(DiskFault{Op: DiskOpWrite, Probability: 0.25, Err: core.ErrNoSpace})
	const writesCount = 2000
	failures := 0
	for range writesCount {
		before, _ := f.Size()
		n, err := f.Write([]byte("0123456789"))
		after, _ := f.Size()
		if after-before != int64(n) {
			t.Fatalf("Write reported %d bytes but the file grew by %d", n, after-before)
		}
		if err != nil {
			failures++
			if !errors.Is(err, core.ErrNoSpace) || n > 10 {
				t.Fatalf("failed Write = %d, %v", n, err)
			}
		}
	}
	if failures < writesCount/5 || failures > writesCount*3/10 {
		t.Fatalf("%d of %d writes failed, want about a quarter", failures, writesCount)
	}
	d.ClearFaults()
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatalf("Write after ClearFaults: %v", err)
	}
}

// TestDiskFailedSyncLeavesDurabilityUnknown checks the fsyncgate model: after
// a Sync that failed with ErrIO, a crash shows either all the data (it
// reached the device) or none of it; and when it did not, a later successful
// Sync does not bring it back (the device holds zeros there). Over many seeds
// both outcomes must occur.
func TestDiskFailedSyncLeavesDurabilityUnknown(t *testing.T) {
	outcomes := map[string]int{}
	for seed := range uint64(40) {
		d := NewDisk(core.NewRand(seed), DiskOptions{})
		diskWriteFile(t, d, "a", "base", true)
		diskMust(t, d.SyncDir("."))
		d.InjectFault(DiskFault{Op: DiskOpSync, Count: 1, Err: core.ErrIO})
		f, err := d.Open("a")
		diskMust(t, err)
		_, err = f.Write([]byte("LOST"))
		diskMust(t, err)
		if err := f.Sync(); !errors.Is(err, core.ErrIO) {
			t.Fatalf("Sync = %v, want ErrIO", err)
		}
		_, err = f.Write([]byte("next"))
		diskMust(t, err)
		diskMust(t, f.Sync())
		if got := diskRead(t, d, "a"); got != "baseLOSTnext" {
			t.Fatalf("before crash, reads = %q", got)
		}
		d.Crash()
		got := diskRead(t, d, "a")
		if got != "baseLOSTnext" && got != "base\x00\x00\x00\x00next" {
			t.Fatalf("seed %d: after crash %q", seed, got)
		}
		outcomes[got]++
	}
	if len(outcomes) != 2 {
		t.Fatalf("outcomes = %v, want both", outcomes)
	}
}

// TestDiskBitFlips checks that with ReadBitFlipProbability 1 every read
// differs from the stored data in exactly one bit, and that the flips do not
// accumulate (two reads each differ by one bit from the written data, so the
// stored data is unchanged).
func TestDiskBitFlips(t *testing.T) {
	d := NewDisk(core.NewRand(5), DiskOptions{ReadBitFlipProbability: 1})
	written := []byte(strings.Repeat("payload!", 64))
	f, err := d.Create("a")
	diskMust(t, err)
	_, err = f.Write(written)
	diskMust(t, err)
	for range 20 {
		buffer := make([]byte, len(written))
		n, err := f.ReadAt(buffer, 0)
		if n != len(written) || err != nil {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		flipped := 0
		for i := range buffer {
			flipped += bits.OnesCount8(buffer[i] ^ written[i])
		}
		if flipped != 1 {
			t.Fatalf("read differs in %d bits, want 1", flipped)
		}
	}
}

// TestDiskStall checks that Stall is called with SyncLatency once per Sync
// and per SyncDir, and not for other operations.
func TestDiskStall(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{SyncLatency: 3 * time.Millisecond})
	var stalls []time.Duration
	d.Stall = func(latency time.Duration) { stalls = append(stalls, latency) }
	diskWriteFile(t, d, "a", "x", true)
	diskMust(t, d.SyncDir("."))
	diskWriteFile(t, d, "b", "x", false)
	if want := []time.Duration{3 * time.Millisecond, 3 * time.Millisecond}; !slices.Equal(stalls, want) {
		t.Fatalf("stalls = %v, want %v", stalls, want)
	}
}

// diskScript runs a pseudo-random sequence of operations, drawn from seed,
// on a disk with every fault enabled, and returns a trace of every result
// followed by the final Describe.
func diskScript(seed uint64) string {
	const stepsCount = 400
	script := core.NewRand(seed)
	d := NewDisk(core.NewRand(seed+1), DiskOptions{
		CapacityBytes: 4000, TornWriteProbability: 0.5, ReadBitFlipProbability: 0.1,
	})
	d.InjectFault(DiskFault{Op: DiskOpSync, Probability: 0.1, Err: core.ErrIO})
	d.InjectFault(DiskFault{Op: DiskOpWrite, PathPrefix: "d/", Probability: 0.1, Err: core.ErrIO})
	names := []string{"a", "b", "d/a", "d/b"}
	var trace strings.Builder
	_ = d.MkdirAll("d")
	for step := range stepsCount {
		name, other := names[script.IntN(len(names))], names[script.IntN(len(names))]
		fmt.Fprintf(&trace, "%d: %s\n", step, diskScriptStep(d, script, name, other))
	}
	trace.WriteString(d.Describe())
	return trace.String()
}

// diskScriptStep runs one drawn operation and describes its outcome.
func diskScriptStep(d *Disk, script *core.Rand, name, other string) string {
	switch script.IntN(8) {
	case 0:
		_, err := d.Create(name)
		return fmt.Sprintf("create %s: %v", name, err)
	case 1, 2:
		f, err := d.Open(name)
		if err != nil {
			return fmt.Sprintf("open %s: %v", name, err)
		}
		n, err := f.Write(bytes.Repeat([]byte{byte(script.IntN(256))}, 1+script.IntN(300)))
		syncErr := f.Sync()
		return fmt.Sprintf("append %s: %d %v %v", name, n, err, syncErr)
	case 3:
		return fmt.Sprintf("syncdir %s: %v", path.Dir(name), d.SyncDir(path.Dir(name)))
	case 4:
		return fmt.Sprintf("rename %s %s: %v", name, other, d.Rename(name, other))
	case 5:
		return fmt.Sprintf("remove %s: %v", name, d.Remove(name))
	case 6:
		f, err := d.Open(name)
		if err != nil {
			return fmt.Sprintf("read %s: %v", name, err)
		}
		buffer := make([]byte, 64)
		n, err := f.ReadAt(buffer, int64(script.IntN(200)))
		return fmt.Sprintf("read %s: %d %v %x", name, n, err, buffer[:n])
	}
	d.Crash()
	return "crash"
}

// TestDiskDeterminism checks that the same seed and the same operations give
// byte-identical traces and Describe output, with torn writes, bit flips, a
// full disk and injected faults all enabled; and that different seeds give
// different traces, so the comparison is not vacuous.
func TestDiskDeterminism(t *testing.T) {
	for seed := range uint64(5) {
		first, second := diskScript(seed), diskScript(seed)
		if first != second {
			t.Fatalf("seed %d: two runs differ:\n%s\n----\n%s", seed, first, second)
		}
		if seed > 0 && first == diskScript(seed-1) {
			t.Fatalf("seeds %d and %d give the same trace", seed, seed-1)
		}
	}
}

// BenchmarkDiskAppendSync measures appending 1 KiB and syncing, the segment
// log's hot path in the simulator; it must not copy the file per write.
func BenchmarkDiskAppendSync(b *testing.B) {
	d := NewDisk(core.NewRand(1), DiskOptions{})
	f, err := d.Create("log")
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]byte, 1024)
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskCrash measures a crash of a disk holding 100 files of 64 KiB
// each with unsynced tails and torn writes on.
func BenchmarkDiskCrash(b *testing.B) {
	d := NewDisk(core.NewRand(1), DiskOptions{TornWriteProbability: 0.5})
	chunk := make([]byte, 64<<10)
	for b.Loop() {
		for i := range 100 {
			name := fmt.Sprintf("f%03d", i)
			f, err := d.Create(name)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = f.Write(chunk)
			_ = f.Sync()
			_, _ = f.Write(chunk[:1000])
		}
		_ = d.SyncDir(".")
		d.Crash()
	}
}

// diskModelFile is the model's view of one file: its current content, its
// durable content, and whether the current content extends the durable one
// (so that a crash may keep a torn prefix of the difference).
type diskModelFile struct {
	current, durable []byte
	extends          bool
}

// diskModel is a flat directory of files: the names that exist now and the
// names that are durable, each pointing at a model file.
type diskModel struct {
	current, durable map[string]*diskModelFile
}

// diskModelNames are the names the state machine uses; few, so that
// operations collide often.
var diskModelNames = []string{"a", "b", "c"}

// TestDiskAgainstModel is a rapid state-machine test: random sequences of
// create, append, sync, truncate, remove, rename, SyncDir and Crash run
// against the simulated disk (with torn writes on) and a model of what may
// be durable. After every step the names and contents must match the model;
// after a crash each durable name must hold its durable content or, if the
// file only had appended data since, the durable content plus a prefix of
// that data. The model then adopts what the disk kept.
func TestDiskAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		d := NewDisk(core.NewRand(seed), DiskOptions{TornWriteProbability: 0.5})
		m := &diskModel{current: map[string]*diskModelFile{}, durable: map[string]*diskModelFile{}}
		name := rapid.SampledFrom(diskModelNames)
		actions := map[string]func(*rapid.T) bool{
			"create":   func(t *rapid.T) bool { return m.create(t, d, name.Draw(t, "name")) },
			"append":   func(t *rapid.T) bool { return m.append(t, d, name.Draw(t, "name")) },
			"sync":     func(t *rapid.T) bool { return m.sync(t, d, name.Draw(t, "name")) },
			"truncate": func(t *rapid.T) bool { return m.truncate(t, d, name.Draw(t, "name")) },
			"remove":   func(t *rapid.T) bool { return m.remove(t, d, name.Draw(t, "name")) },
			"rename":   func(t *rapid.T) bool { return m.rename(t, d, name.Draw(t, "old"), name.Draw(t, "new")) },
			"syncdir":  func(t *rapid.T) bool { return m.syncDir(t, d) },
			"crash":    func(t *rapid.T) bool { return m.crash(t, d) },
		}
		// The steps are drawn here rather than with t.Repeat, whose default
		// of 30 steps rarely reaches the interesting sequences (sync,
		// truncate, append, crash) before a crash.
		action := rapid.SampledFrom(slices.Sorted(maps.Keys(actions)))
		stepsCount := rapid.IntRange(diskModelStepsMin, diskModelStepsMax).Draw(t, "steps")
		for range stepsCount {
			if actions[action.Draw(t, "action")](t) {
				m.check(t, d)
			}
		}
	})
}

// The operations of one state-machine run. The minimum is high because
// rapid favours small draws, and short runs rarely crash after the
// sequences that matter.
const (
	diskModelStepsMin = 60
	diskModelStepsMax = 200
)

func (m *diskModel) create(t *rapid.T, d *Disk, name string) bool {
	f, err := d.Create(name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	diskMustClose(t, f)
	if file, ok := m.current[name]; ok {
		file.current = nil
		file.extends = len(file.durable) == 0
		return true
	}
	m.current[name] = &diskModelFile{extends: true}
	return true
}

// diskOpenModel opens name on the disk if the model says it exists; ok is
// false (and nothing is opened) otherwise.
func diskOpenModel(t *rapid.T, d *Disk, m *diskModel, name string) (core.File, *diskModelFile, bool) {
	file, ok := m.current[name]
	if !ok {
		return nil, nil, false
	}
	f, err := d.Open(name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	return f, file, true
}

func diskMustClose(t *rapid.T, f core.File) {
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func (m *diskModel) append(t *rapid.T, d *Disk, name string) bool {
	f, file, ok := diskOpenModel(t, d, m, name)
	if !ok {
		return false
	}
	data := rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(t, "data")
	if n, err := f.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	diskMustClose(t, f)
	file.current = append(file.current, data...)
	return true
}

func (m *diskModel) sync(t *rapid.T, d *Disk, name string) bool {
	f, file, ok := diskOpenModel(t, d, m, name)
	if !ok {
		return false
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	diskMustClose(t, f)
	file.durable = slices.Clone(file.current)
	file.extends = true
	return true
}

func (m *diskModel) truncate(t *rapid.T, d *Disk, name string) bool {
	f, file, ok := diskOpenModel(t, d, m, name)
	if !ok {
		return false
	}
	size := rapid.IntRange(0, len(file.current)+5).Draw(t, "size")
	if err := f.Truncate(int64(size)); err != nil {
		t.Fatalf("Truncate: %v", err)
	}
	diskMustClose(t, f)
	if size < len(file.durable) {
		file.extends = false
	}
	if size <= len(file.current) {
		file.current = file.current[:size:size]
	} else {
		file.current = append(file.current, make([]byte, size-len(file.current))...)
	}
	return true
}

func (m *diskModel) remove(t *rapid.T, d *Disk, name string) bool {
	if _, ok := m.current[name]; !ok {
		return false
	}
	if err := d.Remove(name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	delete(m.current, name)
	return true
}

func (m *diskModel) rename(t *rapid.T, d *Disk, oldName, newName string) bool {
	file, ok := m.current[oldName]
	if !ok {
		return false
	}
	if err := d.Rename(oldName, newName); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	delete(m.current, oldName)
	m.current[newName] = file
	return true
}

func (m *diskModel) syncDir(t *rapid.T, d *Disk) bool {
	if err := d.SyncDir("."); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	m.durable = maps.Clone(m.current)
	return true
}

// crash checks each surviving file against the durable states the model
// allows, then adopts them.
func (m *diskModel) crash(t *rapid.T, d *Disk) bool {
	d.Crash()
	m.current = maps.Clone(m.durable)
	for _, name := range diskModelNames {
		file, ok := m.current[name]
		if !ok {
			continue
		}
		got := []byte(diskReadModel(t, d, name))
		torn := file.extends && len(got) > len(file.durable) &&
			bytes.HasPrefix(got, file.durable) && bytes.HasPrefix(file.current, got)
		if !bytes.Equal(got, file.durable) && !torn {
			t.Fatalf("after crash %s = %q, want %q or it plus a prefix of %q",
				name, got, file.durable, file.current[min(len(file.durable), len(file.current)):])
		}
		file.current, file.durable, file.extends = got, slices.Clone(got), true
	}
	return true
}

// check compares the disk's directory listing and contents with the model.
func (m *diskModel) check(t *rapid.T, d *Disk) {
	entries, err := d.ReadDir(".")
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	var got []string
	for _, entry := range entries {
		got = append(got, entry.Name)
	}
	want := slices.Sorted(maps.Keys(m.current))
	if !slices.Equal(got, want) {
		t.Fatalf("names = %v, want %v\n%s", got, want, d.Describe())
	}
	for _, name := range want {
		if content := diskReadModel(t, d, name); content != string(m.current[name].current) {
			t.Fatalf("%s = %q, want %q", name, content, m.current[name].current)
		}
	}
}

func diskReadModel(t *rapid.T, d *Disk, name string) string {
	f, err := d.Open(name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer diskMustClose(t, f)
	size, err := f.Size()
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	buffer := make([]byte, size)
	if n, err := f.ReadAt(buffer, 0); n != int(size) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	return string(buffer)
}

// TestDiskDescribe checks Describe's exact output for a small tree with a
// durable file, a volatile directory holding an unsynced file, and a removed
// name that would reappear on a crash.
func TestDiskDescribe(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{CapacityBytes: 100})
	diskWriteFile(t, d, "a", "12345", true)
	diskWriteFile(t, d, "gone", "x", true)
	diskMust(t, d.SyncDir("."))
	diskAppendFile(t, d, "a", "678", false)
	diskMust(t, d.Remove("gone"))
	diskMust(t, d.MkdirAll("dir"))
	diskWriteFile(t, d, "dir/f", "xy", false)
	want := "disk generation=0 used=10 capacity=100\n" +
		"file a size=8 durable=5 entry=durable\n" +
		"dir  dir/ entry=volatile\n" +
		"file dir/f size=2 durable=0 entry=volatile\n" +
		"gone gone entry=durable (reappears on crash)\n"
	if got := d.Describe(); got != want {
		t.Fatalf("Describe:\n%s\nwant:\n%s", got, want)
	}
}
