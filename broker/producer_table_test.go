package broker

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"

	"github.com/kafkasim/kafkasim/core/record"
)

const testExpirationMs = 1000

// header builds the header of an appended batch of count records.
func header(id int64, epoch int16, sequence int32, count int32, baseOffset, timestampMs int64) *record.Header {
	return &record.Header{
		BaseOffset: baseOffset, LastOffsetDelta: count - 1, RecordCount: count, MaxTimestamp: timestampMs,
		ProducerID: id, ProducerEpoch: epoch, BaseSequence: sequence,
	}
}

// entryBatches lists an entry's remembered batches, oldest first.
func entryBatches(e *producerEntry) []batchMeta {
	var out []batchMeta
	for i := range e.count {
		out = append(out, e.batches[(e.head+i)%producerBatchesRemembered])
	}
	return out
}

// TestProducerExpirationBoundary checks Kafka's rule: an entry expires when
// nowMs - lastTimestamp >= producer.id.expiration.ms, judged by the newest
// batch's timestamp.
func TestProducerExpirationBoundary(t *testing.T) {
	cases := []struct {
		name     string
		nowMs    int64
		expected bool
	}{
		{"just written", 5_000, false},
		{"one ms short", 5_999, false},
		{"exactly the expiration", 6_000, true},
		{"long after", 60_000, true},
	}
	for _, c := range cases {
		table := newProducerTable()
		table.record(header(1, 0, 0, 1, 0, 1_000), 1_000)
		table.record(header(1, 0, 1, 1, 1, 5_000), 5_000)
		removed := table.expire(c.nowMs, testExpirationMs)
		if _, kept := table.entries[1]; kept == c.expected || removed != map[bool]int{true: 1, false: 0}[c.expected] {
			t.Errorf("%s: kept %v, removed %d; want expired %v", c.name, kept, removed, c.expected)
		}
	}
}

// TestDecodeProducerSnapshot checks what loading does to a snapshot: it
// drops batches at or above the log end (and producers left without any),
// drops expired producers, counts a version 1 entry as written at load
// time, and rejects content the table could not have held.
func TestDecodeProducerSnapshot(t *testing.T) {
	source := newProducerTable()
	source.record(header(1, 0, 0, 2, 0, 900), 900)
	source.record(header(2, 3, 7, 1, 2, 100), 100)
	source.record(header(1, 0, 2, 1, 3, 950), 950)
	source.record(header(3, 0, 0, 1, 4, 990), 990)
	data, err := source.snapshot(5)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		data   string
		limits producerSnapshotLimits
		want   map[int64][]int64 // producer id -> first offsets of its batches
		err    bool
	}{
		{"as written", string(data), producerSnapshotLimits{10, 1000, testExpirationMs},
			map[int64][]int64{1: {0, 3}, 2: {2}, 3: {4}}, false},
		{"cut at 3", string(data), producerSnapshotLimits{3, 1000, testExpirationMs},
			map[int64][]int64{1: {0}, 2: {2}}, false},
		{"producer 2 expired", string(data), producerSnapshotLimits{10, 1100, testExpirationMs},
			map[int64][]int64{1: {0, 3}, 3: {4}}, false},
		{"version 1 counts as new", `{"version":1,"up_to":1,"producers":[{"id":4,"epoch":0,"batches":[[0,0,0,0]]}]}`,
			producerSnapshotLimits{10, 1_000_000, testExpirationMs}, map[int64][]int64{4: {0}}, false},
		{"unknown version", `{"version":3,"up_to":1,"producers":[]}`, producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
		{"negative offset", `{"version":2,"up_to":-1,"producers":[]}`, producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
		{"batch at the offset", `{"version":2,"up_to":1,"producers":[{"id":4,"batches":[[0,0,1,1]]}]}`,
			producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
		{"overlapping batches", `{"version":2,"up_to":9,"producers":[{"id":4,"batches":[[0,1,0,1],[2,2,1,1]]}]}`,
			producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
		{"six batches", `{"version":2,"up_to":9,"producers":[{"id":4,"batches":[[0,0,0,0],[1,1,1,1],[2,2,2,2],[3,3,3,3],[4,4,4,4],[5,5,5,5]]}]}`,
			producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
		{"producer twice", `{"version":2,"up_to":9,"producers":[{"id":4,"batches":[[0,0,0,0]]},{"id":4,"batches":[[1,1,1,1]]}]}`,
			producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
		{"not json", `{"version":2,`, producerSnapshotLimits{10, 0, testExpirationMs}, nil, true},
	}
	for _, c := range cases {
		table, _, err := decodeProducerSnapshot([]byte(c.data), c.limits)
		if (err != nil) != c.err {
			t.Errorf("%s: error %v, want error %v", c.name, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		got := map[int64][]int64{}
		for id, entry := range table.entries { // order-independent: compared as a map
			for _, b := range entryBatches(entry) {
				got[id] = append(got[id], b.firstOffset)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: producers %v, want %v", c.name, got, c.want)
		}
	}
}

// modelProducer is the reference state of one producer: its epoch, its
// batches of that epoch (newest last, at most producerBatchesRemembered)
// and its newest batch's timestamp.
type modelProducer struct {
	epoch       int16
	batches     []batchMeta
	timestampMs int64
}

// producerMachine drives a producerTable and a plain model side by side.
type producerMachine struct {
	table  *producerTable
	model  map[int64]*modelProducer
	end    int64
	nowMs  int64
	epochs map[int64]int16
}

// modelCheck is check on the model: the same rules written plainly.
func (m *producerMachine) modelCheck(h *record.Header) (batchMeta, error) {
	p, ok := m.model[h.ProducerID]
	if !ok {
		return batchMeta{}, nil
	}
	if h.ProducerEpoch < p.epoch {
		return batchMeta{}, kerr.InvalidProducerEpoch
	}
	if h.ProducerEpoch > p.epoch {
		if h.BaseSequence != 0 {
			return batchMeta{}, kerr.OutOfOrderSequenceNumber
		}
		return batchMeta{}, nil
	}
	for _, b := range p.batches {
		if b.firstSequence == h.BaseSequence && b.lastSequence == h.LastSequence() {
			return b, errDuplicateSequence
		}
	}
	if h.BaseSequence != p.batches[len(p.batches)-1].lastSequence+1 {
		return batchMeta{}, kerr.OutOfOrderSequenceNumber
	}
	return batchMeta{}, nil
}

func (m *producerMachine) modelRecord(h *record.Header, timestampMs int64) {
	p, ok := m.model[h.ProducerID]
	if !ok || p.epoch != h.ProducerEpoch {
		p = &modelProducer{epoch: h.ProducerEpoch}
		m.model[h.ProducerID] = p
	}
	p.batches = append(p.batches, batchMeta{h.BaseSequence, h.LastSequence(), h.BaseOffset, h.LastOffset()})
	if len(p.batches) > producerBatchesRemembered {
		p.batches = p.batches[1:]
	}
	p.timestampMs = timestampMs
}

// modelKeep drops the model's batches at or above end, the producers left
// without batches and the expired ones.
func (m *producerMachine) modelKeep(end int64) {
	for id, p := range m.model { // order-independent: each producer is judged alone
		p.batches = slices.DeleteFunc(p.batches, func(b batchMeta) bool { return b.lastOffset >= end })
		if len(p.batches) == 0 || m.nowMs-p.timestampMs >= testExpirationMs {
			delete(m.model, id)
		}
	}
}

// append offers a batch: usually the producer's next one, sometimes a
// retry, a gap, a new epoch or an old one. Both sides must decide alike.
func (m *producerMachine) append(t *rapid.T) {
	id := rapid.Int64Range(1, 3).Draw(t, "producer")
	epoch := m.epochs[id]
	sequence := int32(0)
	if p, ok := m.model[id]; ok && p.epoch == epoch {
		sequence = p.batches[len(p.batches)-1].lastSequence + 1
	}
	switch rapid.IntRange(0, 9).Draw(t, "kind") {
	case 0:
		sequence = max(0, sequence-rapid.Int32Range(1, 7).Draw(t, "back"))
	case 1:
		sequence += rapid.Int32Range(1, 3).Draw(t, "gap")
	case 2:
		m.epochs[id]++
		epoch, sequence = m.epochs[id], rapid.Int32Range(0, 1).Draw(t, "newEpochSequence")
	case 3:
		epoch = max(0, epoch-1)
	}
	count := rapid.Int32Range(1, 3).Draw(t, "records")
	timestampMs := m.nowMs - rapid.Int64Range(0, 50).Draw(t, "age")
	h := header(id, epoch, sequence, count, m.end, timestampMs)
	gotMeta, gotErr := m.table.check(h)
	wantMeta, wantErr := m.modelCheck(h)
	if !errors.Is(gotErr, wantErr) && !(gotErr == nil && wantErr == nil) || gotMeta != wantMeta {
		t.Fatalf("check %+v: table says %v %v, model %v %v", h, gotMeta, gotErr, wantMeta, wantErr)
	}
	if gotErr == nil {
		m.table.record(h, timestampMs)
		m.modelRecord(h, timestampMs)
		m.end = h.NextOffset()
	}
}

func (m *producerMachine) expire(t *rapid.T) {
	m.nowMs += rapid.Int64Range(0, 2*testExpirationMs).Draw(t, "elapsedMs")
	m.table.expire(m.nowMs, testExpirationMs)
	m.modelKeep(m.end)
}

// reload saves the table and loads it again, as a roll and a restart do,
// possibly with the log cut below the snapshot's offset (the clamp).
func (m *producerMachine) reload(t *rapid.T) {
	data, err := m.table.snapshot(m.end)
	if err != nil {
		t.Fatal(err)
	}
	end := rapid.Int64Range(max(0, m.end-5), m.end).Draw(t, "logEnd")
	table, offset, err := decodeProducerSnapshot(data, producerSnapshotLimits{end, m.nowMs, testExpirationMs})
	if err != nil || offset != m.end {
		t.Fatalf("reload: offset %d, error %v", offset, err)
	}
	m.table, m.end = table, end
	m.modelKeep(end)
}

func (m *producerMachine) check(t *rapid.T) {
	ids := map[int64]bool{}
	for id := range m.table.entries { // order-independent: collected into a set
		ids[id] = true
	}
	for id := range m.model { // order-independent: collected into a set
		ids[id] = true
	}
	for id := range ids { // order-independent: each producer is compared alone
		entry, inTable := m.table.entries[id]
		p, inModel := m.model[id]
		if inTable != inModel {
			t.Fatalf("producer %d: in table %v, in model %v", id, inTable, inModel)
		}
		if got := entryBatches(entry); entry.epoch != p.epoch || entry.lastTimestampMs != p.timestampMs || !slices.Equal(got, p.batches) {
			t.Fatalf("producer %d: table epoch %d ts %d %v, model epoch %d ts %d %v",
				id, entry.epoch, entry.lastTimestampMs, got, p.epoch, p.timestampMs, p.batches)
		}
	}
}

// TestProducerTableMatchesModel checks the producer table against a plain
// model with rapid: random appends (next batches, retries, gaps, new and
// old epochs), expirations as time passes, and snapshot-and-reload cycles
// whose log end may be cut below the snapshot. After every step both must
// hold the same producers, epochs, batches and timestamps, and every check
// must decide alike (accept, duplicate of the same batch, or the same
// error).
func TestProducerTableMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &producerMachine{table: newProducerTable(), model: map[int64]*modelProducer{}, nowMs: 10_000, epochs: map[int64]int16{}}
		t.Repeat(map[string]func(*rapid.T){
			"append": m.append,
			"expire": m.expire,
			"reload": m.reload,
			"":       m.check,
		})
	})
}
