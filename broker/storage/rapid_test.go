package storage

import (
	"math"
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
	"pgregory.net/rapid"
)

// logMachine drives a Log and the reference model side by side.
type logMachine struct {
	disk   *sim.Disk
	config Config
	log    *Log
	model  model
	nowMs  int64
	nextID uint64
	epoch  int32
}

// TestLogStateMachine checks the log against the in-memory model with
// rapid: random appends (leader and follower, with gaps and sizes that force
// rolls), reads at random offsets with random byte and offset bounds, time
// lookups, truncations, retention, syncs and close/reopen, on random small
// configurations. After every step the whole log is read back and compared
// with the model (see checkLog); rapid shrinks any failure to a minimal
// sequence of steps.
func TestLogStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &logMachine{disk: newDisk(rapid.Uint64().Draw(t, "diskSeed")), nowMs: epoch0.UnixMilli()}
		m.config = DefaultConfig()
		m.config.SegmentBytesMax = rapid.Int64Range(200, 3000).Draw(t, "segmentBytesMax")
		m.config.IndexIntervalBytes = rapid.Int64Range(0, 600).Draw(t, "indexIntervalBytes")
		m.config.IndexBytesMax = rapid.Int64Range(12, 200).Draw(t, "indexBytesMax")
		m.config.SegmentAgeMsMax = rapid.Int64Range(1, 100_000).Draw(t, "segmentAgeMsMax")
		m.config.FlushIntervalMessages = rapid.SampledFrom([]int64{1, 3, 10, math.MaxInt64}).Draw(t, "flushIntervalMessages")
		m.config.RetentionMs = rapid.SampledFrom([]int64{-1, 1000, 50_000}).Draw(t, "retentionMs")
		m.config.RetentionBytes = rapid.SampledFrom([]int64{-1, 500, 5000}).Draw(t, "retentionBytes")
		m.reopenLog(t)
		t.Repeat(map[string]func(*rapid.T){
			"append":           m.append,
			"appendReplicated": m.appendReplicated,
			"read":             m.read,
			"timestamp":        m.timestamp,
			"truncate":         m.truncate,
			"truncateFully":    m.truncateFully,
			"retention":        m.retention,
			"sync":             m.sync,
			"reopen":           m.reopen,
			"":                 m.check,
		})
	})
}

func (m *logMachine) check(t *rapid.T) {
	if err := checkLog(m.log, &m.model, 1<<20); err != nil {
		t.Fatal(err)
	}
	if rp := m.log.RecoveryPoint(); rp < m.model.start || rp > m.model.end {
		t.Fatalf("recovery point %d outside [%d, %d]", rp, m.model.start, m.model.end)
	}
}

func (m *logMachine) newBatch(t *rapid.T) ([]byte, modelBatch) {
	records := rapid.IntRange(1, 5).Draw(t, "records")
	payload := rapid.IntRange(8, 500).Draw(t, "payloadBytes")
	ts := m.nowMs + rapid.Int64Range(-60_000, 1000).Draw(t, "timestampDelta")
	m.nextID++
	b := makeBatch(m.nextID, records, payload, ts)
	return b, modelBatch{id: m.nextID, maxTimestamp: ts, sizeBytes: int64(len(b)), last: int64(records - 1)}
}

func (m *logMachine) append(t *rapid.T) {
	m.nowMs += rapid.Int64Range(0, 20_000).Draw(t, "elapsedMs")
	batch, mb := m.newBatch(t)
	if rapid.IntRange(0, 4).Draw(t, "newEpoch") == 0 {
		m.epoch++
	}
	base, last, err := m.log.Append(batch, m.epoch, at(m.nowMs-epoch0.UnixMilli()))
	if mb.sizeBytes > m.config.SegmentBytesMax {
		if !isErr(err, ErrBatchTooLarge) {
			t.Fatalf("oversize batch: %v", err)
		}
		return
	}
	if err != nil || base != m.model.end || last != base+mb.last {
		t.Fatalf("Append = [%d, %d], %v; want base %d", base, last, err, m.model.end)
	}
	mb.base, mb.last, mb.epoch = base, last, m.epoch
	m.model.append(mb)
}

func (m *logMachine) appendReplicated(t *rapid.T) {
	var fetched []byte
	var batches []modelBatch
	next := m.model.end
	for range rapid.IntRange(1, 3).Draw(t, "batches") {
		batch, mb := m.newBatch(t)
		if mb.sizeBytes > m.config.SegmentBytesMax {
			continue
		}
		next += rapid.Int64Range(0, 1).Draw(t, "gap") * rapid.Int64Range(1, 1<<33).Draw(t, "gapOffsets")
		m.epoch += int32(rapid.IntRange(0, 1).Draw(t, "epochStep"))
		record.SetBaseOffset(batch, next)
		record.SetPartitionLeaderEpoch(batch, m.epoch)
		mb.base, mb.last, mb.epoch = next, next+mb.last, m.epoch
		next = mb.last + 1
		fetched = append(fetched, batch...)
		batches = append(batches, mb)
	}
	if _, err := m.log.AppendReplicated(fetched, at(m.nowMs-epoch0.UnixMilli())); err != nil {
		t.Fatalf("AppendReplicated: %v", err)
	}
	for _, b := range batches {
		m.model.append(b)
	}
}

func (m *logMachine) read(t *rapid.T) {
	offset := rapid.Int64Range(m.model.start-1, m.model.end+1).Draw(t, "offset")
	maxBytes := rapid.IntRange(0, 2000).Draw(t, "maxBytes")
	maxOffset := int64(math.MaxInt64)
	if rapid.Bool().Draw(t, "bounded") {
		maxOffset = rapid.Int64Range(offset, m.model.end+1).Draw(t, "maxOffset")
	}
	got, err := m.log.Read(offset, maxBytes, maxOffset, nil)
	if offset < m.model.start || offset > m.model.end {
		if !isErr(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) outside [%d, %d]: %v", offset, m.model.start, m.model.end, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Read(%d): %v", offset, err)
	}
	want := m.expectedRead(offset, maxBytes, maxOffset)
	var ids []uint64
	for rest := got; len(rest) > 0; {
		h, err := record.Validate(rest[:min(len(rest), record.LengthPrefixBytes+int(int32(beUint32(rest[8:]))))])
		if err != nil {
			t.Fatalf("Read(%d) returned a bad batch: %v", offset, err)
		}
		ids = append(ids, batchID(rest))
		rest = rest[h.TotalBytes():]
	}
	if !slicesEqual(ids, want) {
		t.Fatalf("Read(%d, %d, %d) = %v, want %v (segments %v)", offset, maxBytes, maxOffset, ids, want, m.log.Segments())
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// expectedRead computes Read's answer from the model and the segment
// boundaries: consecutive batches from the one holding offset (or the next
// one), all in one segment, all below maxOffset, within maxBytes except for
// the first.
func (m *logMachine) expectedRead(offset int64, maxBytes int, maxOffset int64) []uint64 {
	first := -1
	for i, b := range m.model.batches {
		if b.last >= offset {
			first = i
			break
		}
	}
	if first < 0 {
		return nil
	}
	segmentEnd := int64(math.MaxInt64)
	for _, s := range m.log.Segments() {
		if s.BaseOffset <= m.model.batches[first].base && m.model.batches[first].base < s.NextOffset {
			segmentEnd = s.NextOffset
		}
	}
	var ids []uint64
	var total int64
	for _, b := range m.model.batches[first:] {
		if b.last >= maxOffset || b.base >= segmentEnd || (len(ids) > 0 && total+b.sizeBytes > int64(maxBytes)) {
			break
		}
		ids = append(ids, b.id)
		total += b.sizeBytes
	}
	return ids
}

func (m *logMachine) timestamp(t *rapid.T) {
	target := rapid.Int64Range(0, m.nowMs+2000).Draw(t, "target")
	if rapid.Bool().Draw(t, "nearNow") {
		target = m.nowMs - rapid.Int64Range(0, 70_000).Draw(t, "ago")
	}
	offset, ts, ok, err := m.log.OffsetForTimestamp(target)
	if err != nil {
		t.Fatalf("OffsetForTimestamp(%d): %v", target, err)
	}
	for _, b := range m.model.batches {
		if b.maxTimestamp >= target {
			if !ok || offset != max(b.base, m.model.start) || ts != b.maxTimestamp {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want batch %d at %d", target, offset, ts, ok, b.id, b.base)
			}
			return
		}
	}
	if ok {
		t.Fatalf("OffsetForTimestamp(%d) found %d, the model has nothing", target, offset)
	}
}

func (m *logMachine) truncate(t *rapid.T) {
	offset := rapid.Int64Range(max(0, m.model.start-2), m.model.end+1).Draw(t, "offset")
	// The log end becomes the end of the last remaining batch, or the base
	// of the last remaining segment if that is higher (after a gap).
	segments := m.log.Segments()
	keptBase := segments[0].BaseOffset
	for _, s := range segments {
		if s.BaseOffset <= offset {
			keptBase = s.BaseOffset
		}
	}
	if err := m.log.TruncateTo(offset, at(m.nowMs-epoch0.UnixMilli())); err != nil {
		t.Fatalf("TruncateTo(%d): %v", offset, err)
	}
	if offset >= m.model.end {
		return
	}
	if offset < m.model.start {
		m.model = model{start: offset, end: offset}
	} else {
		if !m.model.truncate(offset) {
			m.model.end = m.model.start
		}
		m.model.end = max(m.model.end, keptBase)
		m.model.dropEpochsFrom(m.model.end)
	}
	if m.log.RecoveryPoint() != m.log.LogEndOffset() {
		t.Fatalf("truncation not durable: recovery point %d", m.log.RecoveryPoint())
	}
}

func (m *logMachine) truncateFully(t *rapid.T) {
	offset := rapid.Int64Range(0, m.model.end+100).Draw(t, "offset")
	if err := m.log.TruncateFullyAndStartAt(offset, at(m.nowMs-epoch0.UnixMilli())); err != nil {
		t.Fatalf("TruncateFullyAndStartAt(%d): %v", offset, err)
	}
	m.model = model{start: offset, end: offset}
}

func (m *logMachine) retention(t *rapid.T) {
	m.nowMs += rapid.Int64Range(0, 60_000).Draw(t, "elapsedMs")
	segments := m.log.Segments()
	want := expectedRetention(segments, m.config, m.nowMs, m.model.start)
	deleted, err := m.log.DeleteOldSegments(at(m.nowMs - epoch0.UnixMilli()))
	if err != nil || deleted != want {
		t.Fatalf("DeleteOldSegments deleted %d (%v), want %d of %v", deleted, err, want, segments)
	}
	if deleted > 0 {
		if start := m.log.LogStartOffset(); start != segments[deleted].BaseOffset {
			t.Fatalf("log start %d, want %d", start, segments[deleted].BaseOffset)
		}
		m.model.dropBefore(segments[deleted].BaseOffset)
	}
}

// expectedRetention applies the documented retention rule to segment
// descriptions.
func expectedRetention(segments []SegmentInfo, c Config, nowMs, start int64) int {
	var total int64
	for _, s := range segments {
		total += s.SizeBytes
	}
	n := 0
	for ; n < len(segments)-1; n++ {
		s := segments[n]
		expired := c.RetentionMs >= 0 && s.MaxTimestamp >= 0 && nowMs-s.MaxTimestamp > c.RetentionMs
		excess := c.RetentionBytes >= 0 && total-s.SizeBytes >= c.RetentionBytes
		if !expired && !excess && segments[n+1].BaseOffset > start {
			break
		}
		total -= s.SizeBytes
	}
	return n
}

func (m *logMachine) sync(t *rapid.T) {
	if err := m.log.Sync(); err != nil || m.log.RecoveryPoint() != m.model.end {
		t.Fatalf("Sync: %v, recovery point %d, end %d", err, m.log.RecoveryPoint(), m.model.end)
	}
}

func (m *logMachine) reopen(t *rapid.T) {
	if err := m.log.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.reopenLog(t)
	// Recovery drops epochs that start at the log end (Kafka does too).
	m.model.dropEpochsFrom(m.model.end)
}

func (m *logMachine) reopenLog(t *rapid.T) {
	l, err := Open(m.disk, testDir, m.config, at(m.nowMs-epoch0.UnixMilli()))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m.log = l
}
