package quorum

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

const storeDir = "meta/__cluster_metadata-0"

// storeEntries returns entries [from, to) of the tests' log: epoch 1 below
// offset 5, epoch 2 from there.
func storeEntries(from, to int64) []raft.Entry {
	var entries []raft.Entry
	for offset := from; offset < to; offset++ {
		epoch := int32(1)
		if offset >= 5 {
			epoch = 2
		}
		entries = append(entries, raft.Entry{Offset: offset, Epoch: epoch, Data: []byte(fmt.Sprintf("entry-%d", offset))})
	}
	return entries
}

// newStoreDisk returns a disk holding a synced store with entries [0, 10)
// in epochs 1 and 2 and the quorum state of epoch 2.
func newStoreDisk(t *testing.T, seed uint64) *sim.Disk {
	t.Helper()
	disk := sim.NewDisk(core.NewRand(seed), sim.DiskOptions{})
	s, _, err := openStore(disk, storeDir, "c")
	noError(t, err)
	noError(t, s.writeQuorumState(raft.HardState{Epoch: 2, VotedFor: 1, LeaderID: 1}))
	noError(t, s.append(storeEntries(0, 10)))
	noError(t, s.sync())
	noError(t, s.close())
	return disk
}

// reopen crashes the disk (unsynced data is lost) and opens the store
// again.
func reopen(t *testing.T, disk *sim.Disk) (*store, raft.Restored) {
	t.Helper()
	disk.Crash()
	s, restored, err := openStore(disk, storeDir, "c")
	noError(t, err)
	return s, restored
}

// listNames returns the directory's segment and checkpoint names.
func listNames(t *testing.T, disk *sim.Disk) []string {
	t.Helper()
	entries, err := disk.ReadDir(storeDir)
	noError(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name, segmentSuffix) || strings.HasSuffix(e.Name, checkpointSuffix) {
			names = append(names, e.Name)
		}
	}
	return names
}

// TestStoreCompactsInstallsAndTruncates walks a store through a compaction,
// appends, a truncation and an install, reopening after a crash at each
// stage: the directory holds one segment named by the snapshot's offset and
// one checkpoint, and a restart returns the snapshot and exactly the
// entries from its offset on.
func TestStoreCompactsInstallsAndTruncates(t *testing.T) {
	disk := newStoreDisk(t, 1)
	s, restored := reopen(t, disk)
	if !reflect.DeepEqual(restored.Entries, storeEntries(0, 10)) || restored.Snapshot.Offset != 0 {
		t.Fatalf("restored %+v", restored)
	}
	noError(t, s.writeSnapshot(7, 2, []byte("image-7")))
	noError(t, s.compact(7, 2))
	want := []string{"00000000000000000007-0000000002.checkpoint", "00000000000000000007.log"}
	if got := listNames(t, disk); !reflect.DeepEqual(got, want) {
		t.Fatalf("after compaction the directory holds %v, want %v", got, want)
	}
	noError(t, s.append(storeEntries(10, 12)))
	noError(t, s.sync())
	s, restored = reopen(t, disk)
	if restored.Snapshot.Offset != 7 || restored.Snapshot.Epoch != 2 || string(restored.Snapshot.Data) != "image-7" ||
		!reflect.DeepEqual(restored.Entries, storeEntries(7, 12)) {
		t.Fatalf("after compaction restored %+v", restored)
	}
	if err := s.truncate(6); err == nil {
		t.Fatal("truncated below the log start")
	}
	noError(t, s.truncate(9))
	noError(t, s.sync())
	s, restored = reopen(t, disk)
	if !reflect.DeepEqual(restored.Entries, storeEntries(7, 9)) {
		t.Fatalf("after truncation restored %+v", restored.Entries)
	}
	noError(t, s.install(raft.Snapshot{Offset: 30, Epoch: 2, Data: []byte("image-30")}))
	noError(t, s.append(storeEntries(30, 31)))
	noError(t, s.sync())
	_, restored = reopen(t, disk)
	if restored.Snapshot.Offset != 30 || string(restored.Snapshot.Data) != "image-30" || !reflect.DeepEqual(restored.Entries, storeEntries(30, 31)) {
		t.Fatalf("after install restored %+v", restored)
	}
	want = []string{"00000000000000000030-0000000002.checkpoint", "00000000000000000030.log"}
	if got := listNames(t, disk); !reflect.DeepEqual(got, want) {
		t.Fatalf("after install the directory holds %v, want %v", got, want)
	}
}

// TestStoreCrashAtEveryStep fails each disk call of a snapshot's writes and
// compaction, and of an install, in turn (a failure of one call, with or
// without effect, then a power loss, is a crash between two calls), and
// reopens the store: it must open, keep every entry (in the snapshot or the
// log after it) or, for an install, hold either the old log or the new
// snapshot, and settle to one segment and one checkpoint.
func TestStoreCrashAtEveryStep(t *testing.T) {
	type outcome struct {
		snapshotOffset int64
		entries        []raft.Entry
	}
	cases := []struct {
		name    string
		steps   func(s *store) error
		allowed []outcome
	}{
		{
			name: "snapshot and compact",
			steps: func(s *store) error {
				if err := s.writeSnapshot(7, 2, []byte("image-7")); err != nil {
					return err
				}
				return s.compact(7, 2)
			},
			allowed: []outcome{{0, storeEntries(0, 10)}, {7, storeEntries(7, 10)}},
		},
		{
			name:    "install",
			steps:   func(s *store) error { return s.install(raft.Snapshot{Offset: 30, Epoch: 2, Data: []byte("image-30")}) },
			allowed: []outcome{{0, storeEntries(0, 10)}, {30, nil}},
		},
	}
	for _, tc := range cases {
		for _, ambiguous := range []bool{false, true} {
			for failAt := 0; ; failAt++ {
				disk := newStoreDisk(t, uint64(failAt))
				s, _ := reopen(t, disk)
				disk.InjectFault(sim.DiskFault{After: failAt, Count: 1, Err: core.ErrIO, Ambiguous: ambiguous})
				err := tc.steps(s)
				disk.ClearFaults()
				_, restored := reopen(t, disk)
				got := outcome{restored.Snapshot.Offset, restored.Entries}
				found := false
				for _, allowed := range tc.allowed {
					found = found || reflect.DeepEqual(got, allowed)
				}
				if !found {
					t.Fatalf("%s, call %d fails (ambiguous %v): restored snapshot %d and %d entries %v", tc.name, failAt, ambiguous, got.snapshotOffset, len(got.entries), got.entries)
				}
				if names := listNames(t, disk); len(names) != map[bool]int{false: 1, true: 2}[got.snapshotOffset > 0] {
					t.Fatalf("%s, call %d fails: the directory settled to %v", tc.name, failAt, names)
				}
				if err == nil {
					if got.snapshotOffset == 0 {
						t.Fatalf("%s completed but a restart does not see its snapshot", tc.name)
					}
					break
				}
			}
		}
	}
}

// TestStoreSnapshotDamage checks what a restart does with a checkpoint that
// fails its checksum: it falls back to an older valid checkpoint when one
// is kept and the log still reaches back to it, and otherwise refuses to
// start with an error that names the file.
func TestStoreSnapshotDamage(t *testing.T) {
	damage := func(t *testing.T, disk *sim.Disk, name string) {
		file, err := disk.Create(path.Join(storeDir, name))
		noError(t, err)
		_, err = file.Write([]byte("not a snapshot"))
		noError(t, err)
		noError(t, file.Sync())
		noError(t, file.Close())
	}
	t.Run("fallback", func(t *testing.T) {
		disk := newStoreDisk(t, 3)
		s, _ := reopen(t, disk)
		noError(t, s.writeSnapshot(4, 1, []byte("image-4")))
		noError(t, s.compact(4, 1))
		// A crash between writing the next snapshot and compacting:
		// the older snapshot and the log from it are still there.
		noError(t, s.writeSnapshot(8, 2, []byte("image-8")))
		damage(t, disk, checkpointName(8, 2))
		_, restored := reopen(t, disk)
		if restored.Snapshot.Offset != 4 || string(restored.Snapshot.Data) != "image-4" || !reflect.DeepEqual(restored.Entries, storeEntries(4, 10)) {
			t.Fatalf("restored %+v", restored)
		}
	})
	t.Run("refuse", func(t *testing.T) {
		disk := newStoreDisk(t, 4)
		s, _ := reopen(t, disk)
		noError(t, s.writeSnapshot(8, 2, []byte("image-8")))
		noError(t, s.compact(8, 2))
		damage(t, disk, checkpointName(8, 2))
		disk.Crash()
		_, _, err := openStore(disk, storeDir, "c")
		if err == nil || !strings.Contains(err.Error(), checkpointName(8, 2)) || !strings.Contains(err.Error(), "will not start") {
			t.Fatalf("opened a store whose only snapshot is damaged: %v", err)
		}
	})
}

// TestOpenMakesWhatItReadsDurable: a quorum state and entries written but
// never synced (still in the page cache after a process crash) are read by
// the next open, which syncs them first, so a power loss after it cannot
// take back what the node then acts on.
func TestOpenMakesWhatItReadsDurable(t *testing.T) {
	disk := sim.NewDisk(core.NewRand(3), sim.DiskOptions{})
	s, _, err := openStore(disk, storeDir, "c")
	noError(t, err)
	noError(t, s.writeQuorumState(raft.HardState{Epoch: 1, VotedFor: 1, LeaderID: 1}))
	noError(t, s.append(storeEntries(0, 4)))
	// A new quorum state renamed into place without the directory sync.
	file, err := disk.Create(path.Join(storeDir, quorumStateFile+core.TempSuffix))
	noError(t, err)
	state, _ := json.Marshal(quorumState{ClusterID: "c", LeaderID: 2, LeaderEpoch: 7, VotedID: 2})
	_, err = file.Write(append(state, []byte(fmt.Sprintf("crc32c:%08x\n", crc32.Checksum(state, crc32.MakeTable(crc32.Castagnoli))))...))
	noError(t, err)
	noError(t, file.Sync())
	noError(t, file.Close())
	noError(t, disk.Rename(path.Join(storeDir, quorumStateFile+core.TempSuffix), path.Join(storeDir, quorumStateFile)))
	noError(t, s.close())
	// The process restarts (the page cache survives), then power fails.
	s, restored, err := openStore(disk, storeDir, "c")
	noError(t, err)
	noError(t, s.close())
	disk.Crash()
	_, after, err := openStore(disk, storeDir, "c")
	noError(t, err)
	if after.HardState != restored.HardState || len(after.Entries) != len(restored.Entries) || restored.HardState.Epoch != 7 {
		t.Fatalf("read %+v with %d entries, after the power loss %+v with %d", restored.HardState, len(restored.Entries), after.HardState, len(after.Entries))
	}
}

// TestOpenSurvivesBitFlipsOnRead opens a synced store many times from a
// disk that flips a bit on half of its reads: a flipped read must never be
// taken for a torn tail and cut the log (a voter once lost six committed
// entries so, cluster seed 170).
func TestOpenSurvivesBitFlipsOnRead(t *testing.T) {
	disk := newStoreDisk(t, 5)
	disk.Crash()
	flaky := sim.NewDisk(core.NewRand(6), sim.DiskOptions{ReadBitFlipProbability: 0.5})
	copyDisk(t, disk, flaky)
	for attempt := range 200 {
		s, restored, err := openStore(flaky, storeDir, "c")
		if err != nil {
			continue // a flipped quorum-state or checkpoint read is refused, never trusted
		}
		if !reflect.DeepEqual(restored.Entries, storeEntries(0, 10)) {
			t.Fatalf("open %d: entries %v, want %v (a flipped read cut the log or changed an epoch)", attempt, restored.Entries, storeEntries(0, 10))
		}
		noError(t, s.close())
	}
}

// copyDisk copies every file of from's store directory into to, synced.
func copyDisk(t *testing.T, from, to *sim.Disk) {
	t.Helper()
	noError(t, core.MkdirAllDurable(to, storeDir))
	entries, err := from.ReadDir(storeDir)
	noError(t, err)
	for _, e := range entries {
		data, err := core.ReadFile(from, path.Join(storeDir, e.Name), 1<<30)
		noError(t, err)
		file, err := to.Create(path.Join(storeDir, e.Name))
		noError(t, err)
		_, err = file.Write(data)
		noError(t, err)
		noError(t, file.Sync())
		noError(t, file.Close())
	}
	noError(t, to.SyncDir(storeDir))
}

// TestParseLogRefusesAnEpochChangedOutsideTheCRC: a batch's partition
// leader epoch lies outside its CRC, so a bit flipped there passes the
// CRC; the epoch repeated in the record's key (inside it) must catch it,
// so that the read is retried rather than an entry of a wrong epoch handed
// to Raft (cluster seed 5003810: epoch 0 after a snapshot of epoch 1).
func TestParseLogRefusesAnEpochChangedOutsideTheCRC(t *testing.T) {
	entries := storeEntries(0, 3)
	data, _, err := encodeEntries(nil, 0, entries)
	noError(t, err)
	parsed, _, valid := parseLog(data, 0, 2)
	if !reflect.DeepEqual(parsed, entries) || valid != int64(len(data)) {
		t.Fatalf("the intact log parses to %v, %d of %d bytes", parsed, valid, len(data))
	}
	flipped := slices.Clone(data)
	flipped[15] ^= 1 // the low bit of the first batch's partition leader epoch
	parsed, _, valid = parseLog(flipped, 0, 2)
	if len(parsed) != 0 || valid != 0 {
		t.Fatalf("a flipped epoch parsed as %v (%d valid bytes)", parsed, valid)
	}
}
