package scenario

import (
	"errors"
	"fmt"
	"hash/crc64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// testBatch encodes a batch of count records at base with leader epoch
// epoch, as a broker stores it.
func testBatch(t *testing.T, base int64, count int, epoch int32) []byte {
	t.Helper()
	records := make([]record.Record, count)
	for i := range records {
		records[i].Value = []byte{byte('a' + i)}
	}
	b, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), records)
	if err != nil {
		t.Fatal(err)
	}
	record.SetBaseOffset(b, base)
	record.SetPartitionLeaderEpoch(b, epoch)
	return b
}

// want describes a parsed batch for the tests.
func want(b []byte, base, last int64, epoch int32, invalid bool) checker.ReplicaBatch {
	return checker.ReplicaBatch{BaseOffset: base, LastOffset: last, LeaderEpoch: epoch, Hash: crc64.Checksum(b, crcTable), Invalid: invalid}
}

// TestParseSegment parses hand-made segment contents: whole batches are
// listed with their offsets, epoch and hash; a batch whose CRC fails is
// listed as invalid; parsing stops at a torn tail, at a header that frames
// no batch, and at offsets that do not follow the batches before.
func TestParseSegment(t *testing.T) {
	first, second := testBatch(t, 0, 2, 1), testBatch(t, 2, 1, 2)
	flipped := slices.Clone(second)
	flipped[len(flipped)-1] ^= 1 // inside the records, which the CRC covers
	badMagic := slices.Clone(second)
	badMagic[16] = 7 // the magic byte
	earlier := testBatch(t, 1, 1, 2)
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	tests := []struct {
		name    string
		before  []checker.ReplicaBatch
		content []byte
		want    []checker.ReplicaBatch
	}{
		{"an empty segment", nil, nil, nil},
		{"two batches", nil, cat(first, second), []checker.ReplicaBatch{want(first, 0, 1, 1, false), want(second, 2, 2, 2, false)}},
		{"a torn tail", nil, cat(first, second[:len(second)-3]), []checker.ReplicaBatch{want(first, 0, 1, 1, false)}},
		{"a tail shorter than a length prefix", nil, cat(first, second[:5]), []checker.ReplicaBatch{want(first, 0, 1, 1, false)}},
		{"a zero-filled tail", nil, cat(first, make([]byte, 100)), []checker.ReplicaBatch{want(first, 0, 1, 1, false)}},
		{"a batch whose CRC fails", nil, cat(first, flipped), []checker.ReplicaBatch{want(first, 0, 1, 1, false), want(flipped, 2, 2, 2, true)}},
		{"a header that frames no batch", nil, cat(first, badMagic, second), []checker.ReplicaBatch{want(first, 0, 1, 1, false)}},
		{"offsets going back", nil, cat(first, earlier), []checker.ReplicaBatch{want(first, 0, 1, 1, false)}},
		{"a segment after another", []checker.ReplicaBatch{want(first, 0, 1, 1, false)}, second,
			[]checker.ReplicaBatch{want(first, 0, 1, 1, false), want(second, 2, 2, 2, false)}},
		{"a segment overlapping the one before", []checker.ReplicaBatch{want(first, 0, 1, 1, false)}, first,
			[]checker.ReplicaBatch{want(first, 0, 1, 1, false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseSegment(tt.content, slices.Clone(tt.before))
			if !slices.Equal(got, tt.want) {
				t.Errorf("parsed %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPartitionDirectory recognises live partition directories by name
// and nothing else.
func TestPartitionDirectory(t *testing.T) {
	tests := []struct {
		entry     core.DirEntry
		topic     string
		partition int32
		ok        bool
	}{
		{core.DirEntry{Name: "sim-3", IsDir: true}, "sim", 3, true},
		{core.DirEntry{Name: "my-topic-12", IsDir: true}, "my-topic", 12, true},
		{core.DirEntry{Name: "__consumer_offsets-0", IsDir: true}, "__consumer_offsets", 0, true},
		{core.DirEntry{Name: "sim-3", IsDir: false}, "", 0, false},
		{core.DirEntry{Name: "sim-3.0123456789abcdef0123456789abcdef.deleted", IsDir: true}, "", 0, false},
		{core.DirEntry{Name: "sim-3.orphaned", IsDir: true}, "", 0, false},
		{core.DirEntry{Name: "sim-03", IsDir: true}, "", 0, false},
		{core.DirEntry{Name: "sim--1", IsDir: true}, "sim-", 1, true},
		{core.DirEntry{Name: "-1", IsDir: true}, "", 0, false},
		{core.DirEntry{Name: "topics.json", IsDir: false}, "", 0, false},
	}
	for _, tt := range tests {
		topic, partition, ok := partitionDirectory(tt.entry)
		if topic != tt.topic || partition != tt.partition || ok != tt.ok {
			t.Errorf("%+v: got %q %d %v, want %q %d %v", tt.entry, topic, partition, ok, tt.topic, tt.partition, tt.ok)
		}
	}
}

// TestReadReplicaLogsFromDisk writes a partition's segments on a
// simulated disk and reads them back as a replica log: through bit flips
// on read (every read call flips a bit with the chance given), past a
// latent sector error that hides its batch and the rest of its segment
// (not the next segment),
// and marking the copy damaged when the disk recorded damage in it.
func TestReadReplicaLogsFromDisk(t *testing.T) {
	a, b, c := testBatch(t, 0, 2, 1), testBatch(t, 2, 1, 1), testBatch(t, 3, 2, 2)
	all := []checker.ReplicaBatch{want(a, 0, 1, 1, false), want(b, 2, 2, 1, false), want(c, 3, 4, 2, false)}
	tests := []struct {
		name    string
		flips   float64
		damage  func(d *sim.Disk) error
		want    []checker.ReplicaBatch
		damaged bool
	}{
		{name: "intact", want: all},
		{name: "bits flipped on a third of the reads", flips: 0.3, want: all},
		{name: "a latent sector error in the second batch",
			damage: func(d *sim.Disk) error {
				return d.AddLatentError("data/sim-0/00000000000000000000.log", int64(len(a)+20), 4)
			},
			want: []checker.ReplicaBatch{all[0], all[2]}, damaged: true},
		{name: "corruption at rest in the second segment",
			damage: func(d *sim.Disk) error {
				return d.Corrupt("data/sim-0/00000000000000000003.log", int64(len(c)-2), 1)
			},
			want: []checker.ReplicaBatch{all[0], all[1], {BaseOffset: 3, LastOffset: 4, LeaderEpoch: 2, Hash: 1, Invalid: true}}, damaged: true},
	}
	for _, tt := range tests {
		// Several disks, so that some flip bits in the first reads.
		for seed := uint64(1); seed <= 16; seed++ {
			t.Run(fmt.Sprintf("%s/disk %d", tt.name, seed), func(t *testing.T) {
				readTestDisk(t, sim.NewDisk(core.NewRand(seed), sim.DiskOptions{ReadBitFlipProbability: tt.flips}), tt.damage, tt.want, tt.damaged, a, b, c)
			})
		}
	}
	if logs, err := readReplicaLogs(sim.NewDisk(core.NewRand(1), sim.DiskOptions{}), "data", 1, nil); err != nil || logs != nil {
		t.Errorf("an empty disk gave %+v, %v; want nothing", logs, err)
	}
}

// readTestDisk writes the segments of sim-0 (a and b in the first, c in
// the second) and other files on disk, damages it, reads it back as node
// 2's replica logs and compares with what the test wants.
func readTestDisk(t *testing.T, disk *sim.Disk, damage func(d *sim.Disk) error, wanted []checker.ReplicaBatch, damaged bool, a, b, c []byte) {
	t.Helper()
	{
		{
			writeFile(t, disk, "data/sim-0/00000000000000000000.log", slices.Concat(a, b))
			writeFile(t, disk, "data/sim-0/00000000000000000003.log", c)
			writeFile(t, disk, "data/sim-0/00000000000000000000.index", []byte("not a log"))
			writeFile(t, disk, "data/__cluster_metadata-0/00000000000000000000.log", a)
			writeFile(t, disk, "data/topics.json", []byte("{}"))
			if damage != nil {
				if err := damage(disk); err != nil {
					t.Fatal(err)
				}
			}
			logs, err := readReplicaLogs(disk, "data", 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) != 1 || logs[0].Node != 2 || logs[0].Topic != "sim" || logs[0].Partition != 0 || logs[0].Damaged != damaged {
				t.Fatalf("logs %+v, want one of sim-0 on node 2, damaged %v", logs, damaged)
			}
			got := logs[0].Batches
			if n := len(got); n > 0 && got[n-1].Invalid {
				got[n-1].Hash = 1 // the damaged bytes are drawn at random
			}
			if !slices.Equal(got, wanted) {
				t.Errorf("batches %+v, want %+v", got, wanted)
			}
		}
	}
}

// writeFile creates name on disk with content, synced.
func writeFile(t *testing.T, disk *sim.Disk, name string, content []byte) {
	t.Helper()
	if err := disk.MkdirAll(name[:strings.LastIndexByte(name, '/')]); err != nil {
		t.Fatal(err)
	}
	f, err := disk.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestRunJudgesReplicas runs a short simulation without faults, on one
// broker and on a cluster whose partitions have several replicas: the
// replica logs read off the disks must agree with what the clients saw, so
// the replica check runs, judges every partition, and passes. The same
// evidence with one replica emptied, or holding other bytes beside its
// peers, must fail.
func TestRunJudgesReplicas(t *testing.T) {
	faults, _ := ParseFaults(FaultCluster)
	clusterSeed := clusterSeeds(t, FaultCluster, 1, 1)[0]
	runs := []struct {
		name         string
		cfg          Config
		replicasMin  int
		partitionMin int
	}{
		{"one broker", Derive(7, Faults{}), 1, 1},
		{"a cluster", Derive(clusterSeed, faults), 2, 1},
	}
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			run.cfg.SafetyDuration = 2 * time.Second
			result := Run(run.cfg, Options{})
			if result.Err != nil || !result.Passed() {
				t.Fatalf("run: %s\n%s", result.Verdict(), result.Check.Report())
			}
			rep := result.History.Replication
			if rep == nil || len(rep.Nodes) == 0 || !rep.CommittedSurvives {
				t.Fatalf("replica evidence %+v, want nodes read and committed records promised", rep)
			}
			stat := result.Check.Checks[len(result.Check.Checks)-1]
			if stat.Name != "replicas" || stat.Checked < int(run.cfg.Partitions) || stat.Note != "" {
				t.Fatalf("replica check %+v, want every one of %d partitions judged", stat, run.cfg.Partitions)
			}
			breakReplicas(t, result.History, run.replicasMin)
		})
	}
}

// breakReplicas finds a partition of the workload's topic with at least
// replicasMin replicas holding data, and requires the checker to reject
// the evidence with one of them emptied, or holding other bytes.
func breakReplicas(t *testing.T, h checker.History, replicasMin int) {
	t.Helper()
	rep := h.Replication
	count := make(map[checker.TopicPartition]int)
	target := -1
	for i, l := range rep.Logs {
		tp := checker.TopicPartition{Topic: l.Topic, Partition: l.Partition}
		if l.Topic == topicName && len(l.Batches) > 0 {
			count[tp]++
			if count[tp] >= replicasMin {
				target = i
			}
		}
	}
	if target < 0 {
		t.Fatalf("no partition of %s has %d replicas holding data: %+v", topicName, replicasMin, rep.Logs)
	}
	tests := []struct {
		name string
		edit func(l *checker.ReplicaLog)
		want checker.AnomalyKind
	}{
		{"a replica emptied", func(l *checker.ReplicaLog) { l.Batches = nil }, checker.AnomalyReplicaMissingCommitted},
		{"a replica holding other bytes", func(l *checker.ReplicaLog) {
			l.Batches = slices.Clone(l.Batches)
			for i := range l.Batches {
				l.Batches[i].Hash++
			}
		}, checker.AnomalyReplicaDiverged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edited := *rep
			edited.Logs = slices.Clone(rep.Logs)
			at := target
			if tt.want == checker.AnomalyReplicaDiverged && replicasMin < 2 {
				// One replica cannot diverge: add a copy of it on node 99.
				other := edited.Logs[target]
				other.Node = 99
				edited.Nodes = append(slices.Clone(edited.Nodes), checker.ReplicaNode{Node: 99})
				edited.Logs = append(edited.Logs, other)
				at = len(edited.Logs) - 1
			}
			tt.edit(&edited.Logs[at])
			h.Replication = &edited
			r := checker.Check(&h, checker.Options{})
			if r.Status != checker.StatusFail || len(r.Anomalies) == 0 {
				t.Fatalf("verdict %s, want %s", r.Verdict, tt.want)
			}
			for _, a := range r.Anomalies {
				if a.Kind != tt.want {
					t.Errorf("anomaly %s, want only %s\n%s", a, tt.want, r.Report())
				}
			}
		})
	}
}
