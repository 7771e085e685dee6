package broker

import (
	"bytes"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// snapshotNames lists the producer snapshot files in a partition directory.
func snapshotNames(t *testing.T, b *simBroker, p *partition) []string {
	t.Helper()
	entries, err := b.disk.ReadDir(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name, producerSnapshotSuffix) || e.Name == legacyProducerSnapshotFileName {
			names = append(names, e.Name)
		}
	}
	return names
}

// segmentBases lists the base offsets of a partition's segments.
func segmentBases(p *partition) []int64 {
	var bases []int64
	for _, s := range p.log.Segments() {
		bases = append(bases, s.BaseOffset)
	}
	return bases
}

// mustProduce sends an idempotent batch stamped now and requires the given
// offset back.
func mustProduce(t *testing.T, b *simBroker, topic string, spec record.BatchSpec, wantOffset int64, values ...string) {
	t.Helper()
	code, offset := produceCode(t, b, produceNow(t, b, topic, spec, values...))
	if code != 0 || offset != wantOffset {
		t.Fatalf("produce producer %d sequence %d: code %d offset %d, want offset %d",
			spec.ProducerID, spec.BaseSequence, code, offset, wantOffset)
	}
}

// fillSegments has two producers write one-record batches until the log
// has at least segments segments, and returns the next sequence of each.
func fillSegments(t *testing.T, b *simBroker, topic string, segments int) map[int64]int32 {
	t.Helper()
	p := b.node.catalog.partition(topic, 0)
	next := map[int64]int32{1: 0, 2: 0}
	for i := 0; len(p.log.Segments()) < segments; i++ {
		id := int64(1 + i%2)
		mustProduce(t, b, topic, idempotentSpec(id, 0, next[id]), p.log.LogEndOffset(), "filler")
		next[id]++
	}
	return next
}

// TestProducerSnapshotAtEveryRoll checks that a roll writes a snapshot named
// by the new segment's base offset holding exactly the state of the batches
// below it (the table rebuilt from the log up to there encodes to the same
// bytes), and that a retention check writes nothing when nothing changed,
// while one whose roll snapshot is missing writes it once.
func TestProducerSnapshotAtEveryRoll(t *testing.T) {
	b := newSimBroker(t, 21, func(c *Config) { c.SegmentBytes = 300 })
	createTopic(t, b, "rolls", 1)
	fillSegments(t, b, "rolls", 4)
	p := b.node.catalog.partition("rolls", 0)
	var want []string
	for _, base := range segmentBases(p)[1:] {
		want = append(want, producerSnapshotName(base))
		data, err := core.ReadFileChecked(b.disk, path.Join(p.dir, producerSnapshotName(base)), producerSnapshotBytesMax)
		if err != nil {
			t.Fatal(err)
		}
		expected := newProducerTable()
		err = p.scanBatches(0, func(_ []byte, h *record.Header) error {
			if h.BaseOffset < base {
				expected.record(h, batchTimestampMs(h, 0))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if encoded, _ := expected.snapshot(base); !bytes.Equal(encoded, data) {
			t.Fatalf("snapshot at %d:\n%s\nwant the state below it:\n%s", base, data, encoded)
		}
	}
	if got := snapshotNames(t, b, p); !slices.Equal(got, want) {
		t.Fatalf("snapshots %v, want one per roll %v", got, want)
	}
	p.enforceRetention(b.node.now())
	if got := snapshotNames(t, b, p); !slices.Equal(got, want) {
		t.Fatalf("a retention check with nothing changed wrote snapshots: %v, want %v", got, want)
	}
	// Without the newest roll's snapshot, retention writes one at the
	// durable end before it may delete anything, and only once.
	newest := p.snapshots[len(p.snapshots)-1]
	if err := b.disk.Remove(path.Join(p.dir, newest.name)); err != nil {
		t.Fatal(err)
	}
	p.snapshots = p.snapshots[:len(p.snapshots)-1]
	p.enforceRetention(b.node.now())
	p.enforceRetention(b.node.now())
	rewritten := append(want[:len(want)-1:len(want)-1], producerSnapshotName(p.log.DurableEndOffset()))
	if got := snapshotNames(t, b, p); !slices.Equal(got, rewritten) {
		t.Fatalf("snapshots %v, want %v", got, rewritten)
	}
}

// TestRetentionKeepsTheSnapshotAtTheLogStart checks that retention deletes
// the snapshots below the newest one at or below the new log start, keeps
// that one, and that a producer whose only batches were deleted is still
// recognized after a restart.
func TestRetentionKeepsTheSnapshotAtTheLogStart(t *testing.T) {
	b := newSimBroker(t, 22, func(c *Config) {
		c.SegmentBytes = 300
		c.RetentionBytes = 900
	})
	createTopic(t, b, "kept", 1)
	mustProduce(t, b, "kept", idempotentSpec(9, 0, 0), 0, "only-once")
	fillSegments(t, b, "kept", 8)
	p := b.node.catalog.partition("kept", 0)
	p.enforceRetention(b.node.now())
	start := p.log.LogStartOffset()
	if start == 0 {
		t.Fatal("retention deleted nothing; the test needs the first batch gone")
	}
	var want []string
	for _, base := range segmentBases(p) {
		if base > 0 {
			want = append(want, producerSnapshotName(base))
		}
	}
	if got := snapshotNames(t, b, p); !slices.Equal(got, want) || want[0] != producerSnapshotName(start) {
		t.Fatalf("snapshots %v after retention to %d, want %v (from the log start on)", got, start, want)
	}
	end := p.log.LogEndOffset()
	b.kill(t)
	code, offset := produceCode(t, b, produceNow(t, b, "kept", idempotentSpec(9, 0, 0), "only-once"))
	if code != 0 || offset != 0 {
		t.Fatalf("retry of a deleted batch after restart: code %d offset %d, want its original offset 0", code, offset)
	}
	if got := b.node.catalog.partition("kept", 0).log.LogEndOffset(); got != end {
		t.Fatalf("log end %d, want %d: the retry must not be stored again", got, end)
	}
}

// TestStartupReplaysOnlyAfterTheSnapshot checks that opening a partition
// does not read the batches below its newest snapshot: a latent sector
// error in the first segment's first batch would fail a replay from the
// log start, yet the broker starts and still recognizes a retry of a batch
// in that segment (its state comes from the snapshot).
func TestStartupReplaysOnlyAfterTheSnapshot(t *testing.T) {
	// Segments large enough for index entries (one per 4 KiB): storage's
	// own open reads only the batches after a segment's last entry.
	b := newSimBroker(t, 23, func(c *Config) { c.SegmentBytes = 20_000 })
	createTopic(t, b, "fast", 1)
	mustProduce(t, b, "fast", idempotentSpec(9, 0, 0), 0, "first")
	p := b.node.catalog.partition("fast", 0)
	for sequence := int32(0); len(p.log.Segments()) < 3; sequence++ {
		mustProduce(t, b, "fast", idempotentSpec(1, 0, sequence), p.log.LogEndOffset(), strings.Repeat("v", 1000))
	}
	end := p.log.LogEndOffset()
	// Storage itself reads the first and last batches of a segment on
	// open; replay from the log start would read the second one too.
	first := path.Join(p.dir, "00000000000000000000.log")
	data, err := core.ReadFile(b.disk, first, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	second := int64(mustBatchSize(t, data))
	if err := b.disk.AddLatentError(first, second, record.HeaderBytes); err != nil {
		t.Fatal(err)
	}
	b.kill(t)
	if failed := b.disk.Stats().LatentReadsFailed; failed != 0 {
		t.Fatalf("startup read the first segment (%d failed reads); it is below the snapshot", failed)
	}
	code, offset := produceCode(t, b, produceNow(t, b, "fast", idempotentSpec(9, 0, 0), "first"))
	if code != 0 || offset != 0 {
		t.Fatalf("retry after restart: code %d offset %d, want the original offset 0", code, offset)
	}
	if got := b.node.catalog.partition("fast", 0).log.LogEndOffset(); got != end {
		t.Fatalf("log end %d, want %d", got, end)
	}
}

// TestSnapshotAboveTheLogEndIsDropped is the regression test for "the
// producer snapshot is not clamped to the log end on load": a snapshot that
// remembers a batch a power loss took from the log (here written as that
// snapshot would be, in the legacy and the current format) must not make
// the producer's retry a duplicate of an offset that no longer exists; the
// retry is appended again.
func TestSnapshotAboveTheLogEndIsDropped(t *testing.T) {
	cases := []struct {
		name string
		file string
		data string
	}{
		{"legacy", legacyProducerSnapshotFileName,
			`{"version":1,"up_to":2,"producers":[{"id":9,"epoch":0,"batches":[[0,0,0,0],[1,1,1,1]]}]}`},
		{"per roll", producerSnapshotName(2),
			`{"version":2,"up_to":2,"producers":[{"id":9,"epoch":0,"last_timestamp_ms":TS,"batches":[[0,0,0,0],[1,1,1,1]]}]}`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newSimBroker(t, uint64(30+i), nil)
			createTopic(t, b, "cut", 1)
			mustProduce(t, b, "cut", idempotentSpec(9, 0, 0), 0, "kept")
			p := b.node.catalog.partition("cut", 0)
			data := strings.ReplaceAll(c.data, "TS", "1767225600000")
			if err := core.WriteFileChecked(b.disk, p.dir, c.file, []byte(data)); err != nil {
				t.Fatal(err)
			}
			b.crash(t)
			code, offset := produceCode(t, b, produceNow(t, b, "cut", idempotentSpec(9, 0, 1), "lost"))
			if code != 0 || offset != 1 {
				t.Fatalf("retry of the lost batch: code %d offset %d, want it appended at 1", code, offset)
			}
			p = b.node.catalog.partition("cut", 0)
			if end := p.log.LogEndOffset(); end != 2 {
				t.Fatalf("log end %d, want 2: the retry was taken for a duplicate of an offset the log lost", end)
			}
			if names := snapshotNames(t, b, p); len(names) != 0 {
				t.Fatalf("snapshots above the log end survived the open: %v", names)
			}
		})
	}
}

// TestUnusableSnapshotFallsBack checks that a snapshot that cannot be used
// (corrupt at rest, not parseable, impossible content) is a warning, not a
// failed startup: the broker starts from the next older snapshot and
// replays after it, so every producer is still recognized.
func TestUnusableSnapshotFallsBack(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, b *simBroker, p *partition, newest string)
	}{
		{"corrupt at rest", func(t *testing.T, b *simBroker, p *partition, newest string) {
			if err := b.disk.Corrupt(path.Join(p.dir, newest), 10, 4); err != nil {
				t.Fatal(err)
			}
		}},
		{"not json", func(t *testing.T, b *simBroker, p *partition, newest string) {
			if err := core.WriteFileChecked(b.disk, p.dir, newest, []byte("{not json")); err != nil {
				t.Fatal(err)
			}
		}},
		{"impossible batch", func(t *testing.T, b *simBroker, p *partition, newest string) {
			data := `{"version":2,"up_to":1,"producers":[{"id":1,"epoch":0,"batches":[[0,0,5,3]]}]}`
			if err := core.WriteFileChecked(b.disk, p.dir, newest, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newSimBroker(t, uint64(40+i), func(c *Config) { c.SegmentBytes = 300 })
			createTopic(t, b, "spoiled", 1)
			mustProduce(t, b, "spoiled", idempotentSpec(9, 0, 0), 0, "first")
			next := fillSegments(t, b, "spoiled", 4)
			p := b.node.catalog.partition("spoiled", 0)
			end := p.log.LogEndOffset()
			newest := p.snapshots[len(p.snapshots)-1].name
			c.spoil(t, b, p, newest)
			b.kill(t)
			p = b.node.catalog.partition("spoiled", 0)
			if slices.Contains(snapshotNames(t, b, p), newest) {
				t.Fatalf("the unusable snapshot %s was kept", newest)
			}
			mustProduce(t, b, "spoiled", idempotentSpec(9, 0, 0), 0, "first")
			for id, sequence := range next { // order-independent: each retry is checked alone
				code, offset := produceCode(t, b, produceNow(t, b, "spoiled", idempotentSpec(id, 0, sequence-1), "filler"))
				if code != 0 || offset >= end {
					t.Fatalf("retry of producer %d's last batch: code %d offset %d, want a duplicate below %d", id, code, offset, end)
				}
			}
			if got := p.log.LogEndOffset(); got != end {
				t.Fatalf("log end %d, want %d: a retry was stored again", got, end)
			}
		})
	}
}

// TestProducerIDsExpire checks producer.id.expiration.ms: a retry within
// the expiration after the producer's newest batch is recognized; after
// it, the retention timer has removed the producer (also from what a
// restart loads), so the same batch is appended again, as in Kafka.
func TestProducerIDsExpire(t *testing.T) {
	b := newSimBroker(t, 24, func(c *Config) { c.SegmentBytes = 300 })
	createTopic(t, b, "idle", 1)
	mustProduce(t, b, "idle", idempotentSpec(9, 0, 0), 0, "once")
	next := fillSegments(t, b, "idle", 3)
	p := b.node.catalog.partition("idle", 0)
	end := p.log.LogEndOffset()
	expiration := time.Duration(producerIDExpirationMsDefault) * time.Millisecond
	// The harness runs no timers (the node is not started): each check is
	// the retention timer's call.
	if err := b.sched.RunFor(expiration - time.Hour); err != nil {
		t.Fatal(err)
	}
	p.enforceRetention(b.node.now())
	if _, ok := p.producers.entries[9]; !ok {
		t.Fatal("producer 9 expired before producer.id.expiration.ms passed")
	}
	// The fillers' producers keep writing; producer 9 stays idle.
	mustProduce(t, b, "idle", idempotentSpec(1, 0, next[1]), end, "late")
	if err := b.sched.RunFor(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	p.enforceRetention(b.node.now())
	if _, ok := p.producers.entries[9]; ok {
		t.Fatalf("producer 9 is still remembered after producer.id.expiration.ms: now %v, last batch %d", b.node.now(), p.producers.entries[9].lastTimestampMs)
	}
	b.kill(t)
	p = b.node.catalog.partition("idle", 0)
	if _, ok := p.producers.entries[9]; ok {
		t.Fatal("a restart brought the expired producer 9 back")
	}
	if _, ok := p.producers.entries[1]; !ok {
		t.Fatal("producer 1 wrote within the expiration and must be remembered")
	}
	mustProduce(t, b, "idle", idempotentSpec(1, 0, next[1]), end, "late")
	mustProduce(t, b, "idle", idempotentSpec(9, 0, 0), end+1, "once")
}
