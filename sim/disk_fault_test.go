package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// diskFaultFixture is a disk holding a synced directory "d" with a synced
// file "d/f" ("durable") and an open handle to it.
func diskFaultFixture(t *testing.T, seed uint64, opts DiskOptions) (*Disk, core.File) {
	t.Helper()
	d := NewDisk(core.NewRand(seed), opts)
	diskMust(t, d.MkdirAll("d"))
	diskWriteFile(t, d, "d/f", "durable", true)
	diskMust(t, d.SyncDir("d"))
	diskMust(t, d.SyncDir("."))
	f, err := d.Open("d/f")
	if err != nil {
		t.Fatal(err)
	}
	return d, f
}

// TestDiskEveryCallFails injects a fault for each kind of call, calls it,
// and checks that the call fails with the injected error, that the failure
// is counted under its kind, and that without Ambiguous it had no effect.
func TestDiskEveryCallFails(t *testing.T) {
	cases := []struct {
		op   DiskOp
		call func(d *Disk, f core.File) error
		// unchanged checks that the failed call had no effect.
		unchanged func(t *testing.T, d *Disk)
	}{
		{DiskOpCreate, func(d *Disk, _ core.File) error { _, err := d.Create("d/f"); return err }, diskExpectFile("d/f", "durable")},
		{DiskOpOpen, func(d *Disk, _ core.File) error { _, err := d.Open("d/f"); return err }, diskExpectFile("d/f", "durable")},
		{DiskOpRemove, func(d *Disk, _ core.File) error { return d.Remove("d/f") }, diskExpectFile("d/f", "durable")},
		{DiskOpRemoveAll, func(d *Disk, _ core.File) error { return d.RemoveAll("d") }, diskExpectFile("d/f", "durable")},
		{DiskOpRename, func(d *Disk, _ core.File) error { return d.Rename("d/f", "d/g") }, diskExpectFile("d/f", "durable")},
		{DiskOpMkdir, func(d *Disk, _ core.File) error { return d.MkdirAll("e") }, diskExpectMissing("e")},
		{DiskOpReadDir, func(d *Disk, _ core.File) error { _, err := d.ReadDir("d"); return err }, diskExpectFile("d/f", "durable")},
		{DiskOpSyncDir, func(d *Disk, _ core.File) error { return d.SyncDir("d") }, diskExpectFile("d/f", "durable")},
		{DiskOpWrite, func(_ *Disk, f core.File) error { _, err := f.Write([]byte("x")); return err }, nil},
		{DiskOpRead, func(_ *Disk, f core.File) error { _, err := f.ReadAt(make([]byte, 3), 0); return err }, diskExpectFile("d/f", "durable")},
		{DiskOpSync, func(_ *Disk, f core.File) error { return f.Sync() }, diskExpectFile("d/f", "durable")},
		{DiskOpTruncate, func(_ *Disk, f core.File) error { return f.Truncate(2) }, diskExpectFile("d/f", "durable")},
		{DiskOpSize, func(_ *Disk, f core.File) error { _, err := f.Size(); return err }, diskExpectFile("d/f", "durable")},
		{DiskOpClose, func(_ *Disk, f core.File) error { return f.Close() }, diskExpectFile("d/f", "durable")},
	}
	for _, tc := range cases {
		t.Run(tc.op.String(), func(t *testing.T) {
			d, f := diskFaultFixture(t, 1, DiskOptions{})
			d.InjectFault(DiskFault{Op: tc.op, Count: 1, Err: core.ErrIO})
			err := tc.call(d, f)
			if !errors.Is(err, core.ErrIO) {
				t.Fatalf("%s error = %v, want core.ErrIO", tc.op, err)
			}
			stats := d.Stats()
			for op := range DiskOpCount {
				want := int64(0)
				if op == tc.op {
					want = 1
				}
				if got := stats.CallsFailed[op]; got != want {
					t.Errorf("CallsFailed[%s] = %d, want %d", op, got, want)
				}
			}
			if tc.unchanged != nil {
				tc.unchanged(t, d)
			}
			if tc.op == DiskOpClose {
				if _, err := f.Size(); !errors.Is(err, fs.ErrClosed) {
					t.Errorf("a failed Close left the handle open: Size error %v", err)
				}
			}
		})
	}
}

func diskExpectFile(name, want string) func(*testing.T, *Disk) {
	return func(t *testing.T, d *Disk) {
		t.Helper()
		if got := diskRead(t, d, name); got != want {
			t.Errorf("%s = %q after the failed call, want %q", name, got, want)
		}
	}
}

func diskExpectMissing(name string) func(*testing.T, *Disk) {
	return func(t *testing.T, d *Disk) {
		t.Helper()
		if _, err := d.ReadDir(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after the failed call (err %v)", name, err)
		}
	}
}

// TestDiskAmbiguousFailures checks that an ambiguous failure leaves one of
// the two states core.FS allows, that both occur across seeds, and that the
// ones that took effect are counted.
func TestDiskAmbiguousFailures(t *testing.T) {
	cases := []struct {
		op     DiskOp
		call   func(d *Disk, f core.File) error
		state  func(t *testing.T, d *Disk) string
		before string
		after  string
	}{
		{DiskOpCreate, func(d *Disk, _ core.File) error { _, err := d.Create("d/f"); return err },
			func(t *testing.T, d *Disk) string { return diskRead(t, d, "d/f") }, "durable", ""},
		{DiskOpRemove, func(d *Disk, _ core.File) error { return d.Remove("d/f") },
			func(t *testing.T, d *Disk) string { return diskRead(t, d, "d/f") }, "durable", "<missing>"},
		{DiskOpRemoveAll, func(d *Disk, _ core.File) error { return d.RemoveAll("d") },
			func(t *testing.T, d *Disk) string { return diskRead(t, d, "d/f") }, "durable", "<missing>"},
		{DiskOpRename, func(d *Disk, _ core.File) error { return d.Rename("d/f", "d/g") },
			func(t *testing.T, d *Disk) string { return diskRead(t, d, "d/f") + "|" + diskRead(t, d, "d/g") },
			"durable|<missing>", "<missing>|durable"},
		{DiskOpMkdir, func(d *Disk, _ core.File) error { return d.MkdirAll("e/x") },
			func(t *testing.T, d *Disk) string {
				if _, err := d.ReadDir("e/x"); err != nil {
					return "<missing>"
				}
				return "exists"
			}, "<missing>", "exists"},
		{DiskOpTruncate, func(_ *Disk, f core.File) error { return f.Truncate(3) },
			func(t *testing.T, d *Disk) string { return diskRead(t, d, "d/f") }, "durable", "dur"},
	}
	for _, tc := range cases {
		t.Run(tc.op.String(), func(t *testing.T) {
			seen := map[string]int{}
			for seed := range uint64(40) {
				d, f := diskFaultFixture(t, seed, DiskOptions{})
				d.InjectFault(DiskFault{Op: tc.op, Count: 1, Err: core.ErrIO, Ambiguous: true})
				if err := tc.call(d, f); !errors.Is(err, core.ErrIO) {
					t.Fatalf("seed %d: error %v, want core.ErrIO", seed, err)
				}
				state := tc.state(t, d)
				tookEffect := d.Stats().CallsFailedTookEffect == 1
				want := map[bool]string{false: tc.before, true: tc.after}[tookEffect]
				if state != want {
					t.Fatalf("seed %d: state %q with tookEffect=%v, want %q", seed, state, tookEffect, want)
				}
				seen[state]++
			}
			if seen[tc.before] == 0 || seen[tc.after] == 0 {
				t.Errorf("outcomes over 40 seeds: %v; want both %q and %q", seen, tc.before, tc.after)
			}
		})
	}
}

// TestDiskLongFullDisk fills a disk to a few bytes below its capacity and
// checks that it stays full, across time and a crash, until files are
// removed or the capacity is lifted.
func TestDiskLongFullDisk(t *testing.T) {
	d, f := diskFaultFixture(t, 2, DiskOptions{})
	d.LeaveFree(4)
	if got := d.FreeBytes(); got != 4 {
		t.Fatalf("FreeBytes = %d, want 4", got)
	}
	n, err := f.Write([]byte("abcdefgh"))
	if n != 4 || !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("Write = %d, %v; want 4, ErrNoSpace", n, err)
	}
	for range 3 {
		if _, err := f.Write([]byte("x")); !errors.Is(err, core.ErrNoSpace) {
			t.Fatalf("Write on a full disk: %v", err)
		}
	}
	diskMust(t, f.Sync())
	d.Crash()
	if got := d.FreeBytes(); got != 0 {
		t.Fatalf("FreeBytes after a crash = %d, want 0 (the synced bytes stay)", got)
	}
	diskMust(t, d.Remove("d/f"))
	if got := d.FreeBytes(); got != 11 {
		t.Fatalf("FreeBytes after Remove = %d, want 11", got)
	}
	stats := d.Stats()
	if stats.WritesNoSpace != 4 || stats.CallsFailed[DiskOpWrite] != 4 || stats.WriteBytesRefused != 7 {
		t.Errorf("stats = %+v; want 4 writes refused, 7 bytes", stats)
	}
}

// TestDiskSyncNoSpace checks that a Sync of unsynced data on a full disk
// fails with core.ErrNoSpace and counts as a failed Sync.
func TestDiskSyncNoSpace(t *testing.T) {
	d, f := diskFaultFixture(t, 3, DiskOptions{SyncNoSpaceProbability: 1})
	diskMust(t, f.Sync()) // Nothing unsynced: no delayed allocation.
	d.LeaveFree(3)
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("Sync on a full disk = %v, want ErrNoSpace", err)
	}
	if s := d.Stats(); s.SyncsNoSpace != 1 || s.CallsFailed[DiskOpSync] != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// TestDiskCorruptionAtRest corrupts synced bytes and checks that the damage
// persists across reads and crashes, is recorded, and is counted when read.
func TestDiskCorruptionAtRest(t *testing.T) {
	d, _ := diskFaultFixture(t, 4, DiskOptions{})
	if err := d.Corrupt("d/f", 7, 1); err == nil {
		t.Fatal("Corrupt past the durable content succeeded")
	}
	diskMust(t, d.Corrupt("d/f", 2, 3))
	first := diskRead(t, d, "d/f")
	if first[:2] != "du" || first[5:] != "le" || first[2:5] == "rab" {
		t.Fatalf("content after Corrupt = %q", first)
	}
	for i := 2; i < 5; i++ {
		if first[i] == "durable"[i] {
			t.Errorf("byte %d unchanged", i)
		}
	}
	if again := diskRead(t, d, "d/f"); again != first {
		t.Errorf("second read %q differs from first %q: the damage must persist", again, first)
	}
	d.Crash()
	if after := diskRead(t, d, "d/f"); after != first {
		t.Errorf("after a crash %q, want %q", after, first)
	}
	// A read that misses the damaged range is not counted.
	g, err := d.Open("d/f")
	diskMust(t, err)
	if _, err := g.ReadAt(make([]byte, 2), 0); err != nil {
		t.Fatal(err)
	}
	stats := d.Stats()
	if stats.ReadsCorrupted != 3 || stats.BytesReadCorrupted != 9 {
		t.Errorf("ReadsCorrupted = %d, BytesReadCorrupted = %d; want 3, 9", stats.ReadsCorrupted, stats.BytesReadCorrupted)
	}
	want := []DiskDamage{{Kind: DamageCorruption, Name: "d/f", Offset: 2, LengthBytes: 3, DurableBytes: 7}}
	if got := d.Damage(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("Damage() = %+v, want %+v", got, want)
	}
}

// TestDiskCorruptRandom checks that random damage lands in a file with the
// prefix, within its durable content, and is deterministic.
func TestDiskCorruptRandom(t *testing.T) {
	run := func() []DiskDamage {
		d := NewDisk(core.NewRand(9), DiskOptions{})
		diskMust(t, d.MkdirAll("a"))
		diskWriteFile(t, d, "a/x", strings.Repeat("x", 100), true)
		diskWriteFile(t, d, "a/y", strings.Repeat("y", 50), false)
		diskWriteFile(t, d, "b", strings.Repeat("b", 100), true)
		for range 10 {
			if _, ok := d.CorruptRandom("a/", 8); !ok {
				t.Fatal("CorruptRandom found nothing")
			}
			if _, ok := d.LatentErrorRandom("a/", 8); !ok {
				t.Fatal("LatentErrorRandom found nothing")
			}
		}
		if _, ok := d.CorruptRandom("c", 8); ok {
			t.Error("CorruptRandom damaged a file outside the prefix")
		}
		return d.Damage()
	}
	first := run()
	for _, damage := range first {
		if damage.Name != "a/x" || damage.Offset < 0 || damage.LengthBytes < 1 || damage.LengthBytes > 8 ||
			damage.Offset+damage.LengthBytes > 100 {
			t.Errorf("damage %+v outside a/x's 100 durable bytes", damage)
		}
	}
	second := run()
	if len(first) != 20 || len(second) != 20 {
		t.Fatalf("damage records %d and %d, want 20", len(first), len(second))
	}
	for i := range first {
		if first[i] != second[i] {
			t.Errorf("record %d differs between runs: %+v vs %+v", i, first[i], second[i])
		}
	}
}

// TestDiskLatentSectorError checks that reads over a bad range fail every
// time, also after a crash, that reads beside it work, and that truncating
// the range away or removing the file ends it.
func TestDiskLatentSectorError(t *testing.T) {
	d, _ := diskFaultFixture(t, 5, DiskOptions{})
	diskMust(t, d.AddLatentError("d/f", 3, 2))
	read := func(off int64, length int) error {
		f, err := d.Open("d/f")
		diskMust(t, err)
		defer f.Close()
		_, err = f.ReadAt(make([]byte, length), off)
		return err
	}
	for range 3 {
		if err := read(0, 7); !errors.Is(err, core.ErrIO) {
			t.Fatalf("read over the bad range = %v, want ErrIO", err)
		}
	}
	if err := read(0, 3); err != nil {
		t.Fatalf("read before the bad range = %v", err)
	}
	d.Crash()
	if err := read(4, 1); !errors.Is(err, core.ErrIO) {
		t.Fatalf("read over the bad range after a crash = %v, want ErrIO", err)
	}
	f, err := d.Open("d/f")
	diskMust(t, err)
	diskMust(t, f.Truncate(4))
	if _, err := f.Write([]byte("XYZ")); err != nil {
		t.Fatal(err)
	}
	if err := read(4, 3); err != nil {
		t.Fatalf("read of the rewritten range = %v", err)
	}
	if err := read(3, 1); !errors.Is(err, core.ErrIO) {
		t.Fatalf("read of the bad byte left below the truncation = %v, want ErrIO", err)
	}
	diskMust(t, d.Remove("d/f"))
	diskWriteFile(t, d, "d/f", "fresh", true)
	if err := read(0, 5); err != nil {
		t.Fatalf("read of a new file under the old name = %v", err)
	}
	if s := d.Stats(); s.LatentReadsFailed != 5 || s.CallsFailed[DiskOpRead] != 5 {
		t.Errorf("LatentReadsFailed = %d, CallsFailed[read] = %d; want 5, 5", s.LatentReadsFailed, s.CallsFailed[DiskOpRead])
	}
}

// TestDiskDropsPagesAfterFailedSync checks that after a Sync fails and loses
// the unsynced data, reads return the durable content and zeros past it
// (the size stays), and that the effect is counted; when the data reached the
// device instead, reads are unchanged.
func TestDiskDropsPagesAfterFailedSync(t *testing.T) {
	outcomes := map[string]int{}
	for seed := range uint64(20) {
		d, f := diskFaultFixture(t, seed, DiskOptions{SyncFailureDropPagesProbability: 1})
		if _, err := f.Write([]byte("+tail")); err != nil {
			t.Fatal(err)
		}
		d.InjectFault(DiskFault{Op: DiskOpSync, Count: 1, Err: core.ErrIO})
		if err := f.Sync(); !errors.Is(err, core.ErrIO) {
			t.Fatalf("Sync = %v", err)
		}
		got := diskRead(t, d, "d/f")
		stats := d.Stats()
		switch {
		case stats.SyncsLostData == 1:
			if got != "durable\x00\x00\x00\x00\x00" || stats.PagesDropped != 1 || stats.BytesDropped != 5 {
				t.Fatalf("seed %d: lost sync, read %q, stats %+v", seed, got, stats)
			}
			// A later successful Sync makes the zeros durable, not the data.
			diskMust(t, f.Sync())
			d.Crash()
			if after := diskRead(t, d, "d/f"); after != got {
				t.Fatalf("seed %d: after sync and crash %q, want %q", seed, after, got)
			}
			outcomes["dropped"]++
		default:
			if got != "durable+tail" || stats.PagesDropped != 0 {
				t.Fatalf("seed %d: durable sync, read %q, stats %+v", seed, got, stats)
			}
			outcomes["durable"]++
		}
	}
	if outcomes["dropped"] == 0 || outcomes["durable"] == 0 {
		t.Errorf("outcomes %v, want both", outcomes)
	}
}

// TestDiskTornTailKinds crashes a file with unsynced data under each tail
// kind and checks the shape of what survives.
func TestDiskTornTailKinds(t *testing.T) {
	unsynced := []byte("0123456789abcdefghij")
	cases := []struct {
		kind TornTail
		opts DiskOptions
	}{
		{TornTailClean, DiskOptions{TornWriteProbability: 1}},
		{TornTailZero, DiskOptions{TornWriteProbability: 1, TornZeroTailProbability: 1}},
		{TornTailGarbage, DiskOptions{TornWriteProbability: 1, TornGarbageTailProbability: 1}},
	}
	for _, tc := range cases {
		for seed := range uint64(10) {
			d, f := diskFaultFixture(t, seed, tc.opts)
			if _, err := f.Write(unsynced); err != nil {
				t.Fatal(err)
			}
			d.Crash()
			got := []byte(diskRead(t, d, "d/f"))
			if !bytes.HasPrefix(got, []byte("durable")) || len(got) <= 7 || len(got) > 7+len(unsynced) {
				t.Fatalf("%d seed %d: survived %q", tc.kind, seed, got)
			}
			tail := got[7:]
			prefix := diskCommonPrefix(tail, unsynced)
			rest := tail[prefix:]
			stats := d.Stats()
			switch tc.kind {
			case TornTailClean:
				if len(rest) != 0 || stats.TornTailBytes != 0 {
					t.Fatalf("clean tear seed %d: %q after the prefix", seed, rest)
				}
			case TornTailZero:
				// The unsynced data has no zero byte, so the prefix ends
				// exactly where the zeros start.
				if len(rest) == 0 || !bytes.Equal(rest, make([]byte, len(rest))) || stats.TornTailBytes != int64(len(rest)) {
					t.Fatalf("zero tear seed %d: tail %q, TornTailBytes %d", seed, tail, stats.TornTailBytes)
				}
			case TornTailGarbage:
				if stats.TornTailBytes < 1 || stats.TornTailBytes > int64(len(tail)) {
					t.Fatalf("garbage tear seed %d: tail %q, TornTailBytes %d", seed, tail, stats.TornTailBytes)
				}
			}
			if stats.TornTails[tc.kind] != 1 || stats.TornTails[TornTailClean]+stats.TornTails[TornTailZero]+stats.TornTails[TornTailGarbage] != 1 {
				t.Fatalf("seed %d: TornTails = %v", seed, stats.TornTails)
			}
		}
	}
}

func diskCommonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestDiskNewFaultsDeterministic runs a script with every new fault twice
// and compares the listing, the stats and the damage records.
func TestDiskNewFaultsDeterministic(t *testing.T) {
	run := func() string {
		opts := DiskOptions{TornWriteProbability: 0.7, TornZeroTailProbability: 0.3, TornGarbageTailProbability: 0.3,
			SyncFailureDropPagesProbability: 0.5, SyncNoSpaceProbability: 0.5, ReadBitFlipProbability: 0.1}
		d := NewDisk(core.NewRand(77), opts)
		d.InjectFault(DiskFault{Probability: 0.1, Err: core.ErrIO, Ambiguous: true})
		var log strings.Builder
		for i := range 200 {
			name := []string{"a", "b", "c"}[i%3]
			f, err := d.Open(name)
			if err != nil {
				f, err = d.Create(name)
			}
			if err == nil {
				_, _ = f.Write(bytes.Repeat([]byte{byte(i)}, i%17+1))
				if i%50 < 45 {
					_ = f.Sync()
				}
				_, _ = f.ReadAt(make([]byte, 64), 0)
				_ = f.Close()
			}
			_ = d.SyncDir(".")
			switch i % 50 {
			case 10:
				d.CorruptRandom("", 4)
			case 20:
				d.LatentErrorRandom("", 4)
			case 30:
				d.LeaveFree(10)
			case 40:
				d.SetCapacity(0)
			case 49:
				d.Crash()
			}
			log.WriteString(errString(err))
		}
		s := d.Stats()
		struck := []int64{s.CallsFailedTookEffect, s.WritesNoSpace, s.SyncsNoSpace, s.PagesDropped,
			s.ReadsCorrupted, s.LatentReadsFailed, s.TornTails[TornTailZero] + s.TornTails[TornTailGarbage]}
		if slices.Contains(struck, 0) {
			t.Errorf("a fault never struck, so the comparison proves little: %+v", s)
		}
		return d.Describe() + log.String() + diskStatsString(d)
	}
	first, second := run(), run()
	if first != second {
		t.Errorf("two runs of one seed differ:\n%s\n---\n%s", first, second)
	}
}

func errString(err error) string {
	if err == nil {
		return "."
	}
	return "E"
}

func diskStatsString(d *Disk) string {
	var b strings.Builder
	for _, damage := range d.Damage() {
		fmt.Fprintf(&b, "%+v\n", damage)
	}
	fmt.Fprintf(&b, "%+v\n", d.Stats())
	return b.String()
}
