package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// producerBatchesRemembered is how many recent batches per producer and
// partition the broker keeps to recognize retried duplicates. Kafka keeps 5,
// which is why idempotent producers allow at most 5 requests in flight.
const producerBatchesRemembered = 5

// batchMeta identifies one appended batch of an idempotent producer.
type batchMeta struct {
	firstSequence, lastSequence int32
	firstOffset, lastOffset     int64
}

// producerEntry is the state of one producer id on one partition.
//
// Invariant: batches[0..count) are the most recent batches of epoch, in
// append order (the newest at (head+count-1) % len), with consecutive
// sequence numbers.
type producerEntry struct {
	epoch   int16
	batches [producerBatchesRemembered]batchMeta
	head    int
	count   int
}

func (e *producerEntry) newest() *batchMeta {
	return &e.batches[(e.head+e.count-1)%producerBatchesRemembered]
}

func (e *producerEntry) push(b batchMeta) {
	if e.count == producerBatchesRemembered {
		e.head = (e.head + 1) % producerBatchesRemembered
		e.count--
	}
	e.batches[(e.head+e.count)%producerBatchesRemembered] = b
	e.count++
}

// producerTable holds the idempotence state of every producer that wrote to
// one partition. It is rebuilt from the log on startup (replaying batch
// headers), so it survives crashes without a snapshot of its own.
type producerTable struct {
	entries map[int64]*producerEntry
}

func newProducerTable() *producerTable {
	return &producerTable{entries: make(map[int64]*producerEntry)}
}

// errDuplicateSequence reports a retried batch that is already in the log.
var errDuplicateSequence = errors.New("duplicate sequence")

// check decides whether a batch from a producer may be appended (KIP-98).
// It returns the original batch for a retried duplicate (with
// errDuplicateSequence), or a Kafka error for a fenced epoch or a sequence
// gap. Batches without a producer id are never checked.
func (t *producerTable) check(h *record.Header) (batchMeta, error) {
	if h.ProducerID < 0 {
		return batchMeta{}, nil
	}
	if h.BaseSequence < 0 {
		return batchMeta{}, fmt.Errorf("%w: producer %d sent sequence %d", kerr.InvalidRecord, h.ProducerID, h.BaseSequence)
	}
	entry, ok := t.entries[h.ProducerID]
	if !ok || entry.count == 0 {
		// Like Kafka, accept any first sequence from a producer we hold no
		// state for: its earlier batches may have aged out of the log.
		return batchMeta{}, nil
	}
	switch {
	case h.ProducerEpoch < entry.epoch:
		return batchMeta{}, fmt.Errorf("%w: producer %d epoch %d is older than %d",
			kerr.InvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, entry.epoch)
	case h.ProducerEpoch > entry.epoch:
		if h.BaseSequence != 0 {
			return batchMeta{}, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, not %d",
				kerr.OutOfOrderSequenceNumber, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return batchMeta{}, nil
	}
	lastSequence := h.LastSequence()
	for i := range entry.count {
		b := entry.batches[(entry.head+i)%producerBatchesRemembered]
		if b.firstSequence == h.BaseSequence && b.lastSequence == lastSequence {
			return b, errDuplicateSequence
		}
	}
	if want := nextSequence(entry.newest().lastSequence); h.BaseSequence != want {
		return batchMeta{}, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d",
			kerr.OutOfOrderSequenceNumber, h.ProducerID, h.ProducerEpoch, h.BaseSequence, want)
	}
	return batchMeta{}, nil
}

// nextSequence follows Kafka's wrap-around of sequence numbers at MaxInt32.
func nextSequence(sequence int32) int32 {
	if sequence == 1<<31-1 {
		return 0
	}
	return sequence + 1
}

// record remembers an appended batch (h carries its assigned offsets).
func (t *producerTable) record(h *record.Header) {
	if h.ProducerID < 0 || h.Attributes.IsControl() {
		return
	}
	entry, ok := t.entries[h.ProducerID]
	if !ok {
		entry = &producerEntry{epoch: h.ProducerEpoch}
		t.entries[h.ProducerID] = entry
	}
	if h.ProducerEpoch != entry.epoch {
		*entry = producerEntry{epoch: h.ProducerEpoch}
	}
	entry.push(batchMeta{
		firstSequence: h.BaseSequence,
		lastSequence:  h.LastSequence(),
		firstOffset:   h.BaseOffset,
		lastOffset:    h.LastOffset(),
	})
}

// Producer ids are handed out in blocks. The end of the current block is
// made durable before any id from it is used, so that a restarted broker
// never hands out an id twice.
const (
	producerIDBlockSize    = 1000
	producerIDFileName     = "producer-id-block"
	producerIDFileBytesMax = 64
)

type producerIDAllocator struct {
	fsys     core.FS
	dir      string
	next     int64
	blockEnd int64
}

func openProducerIDAllocator(fsys core.FS, dir string) (*producerIDAllocator, error) {
	a := &producerIDAllocator{fsys: fsys, dir: dir}
	data, err := core.ReadFileChecked(fsys, path.Join(dir, producerIDFileName), producerIDFileBytesMax)
	switch {
	case err == nil:
		end, perr := strconv.ParseInt(string(data), 10, 64)
		if perr != nil || end < 0 {
			return nil, fmt.Errorf("broker: corrupt %s: %q", producerIDFileName, data)
		}
		a.next, a.blockEnd = end, end
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("broker: read %s: %w", producerIDFileName, err)
	}
	return a, nil
}

// allocate returns a producer id never handed out before, by this broker or
// an earlier incarnation of it.
func (a *producerIDAllocator) allocate() (int64, error) {
	if a.next >= a.blockEnd {
		end := a.next + producerIDBlockSize
		if err := core.WriteFileChecked(a.fsys, a.dir, producerIDFileName, strconv.AppendInt(nil, end, 10)); err != nil {
			return 0, fmt.Errorf("broker: reserve producer ids: %w", err)
		}
		a.blockEnd = end
	}
	id := a.next
	a.next++
	return id, nil
}

// Producer state snapshots. Retention deletes the batches the producer
// table was rebuilt from, so before it runs the table is saved: every
// remembered batch below the recovery point (synced, so it survives any
// crash) goes into a checksummed snapshot file in the partition directory,
// with the offset it covers up to. Opening a partition loads the snapshot
// and replays only the batches from that offset on. Like Kafka after
// KIP-360, a producer's state thus outlives the segments it was read from.
const (
	producerSnapshotFileName = "producer-state"
	producerSnapshotVersion  = 1
	// producerSnapshotBytesMax bounds the snapshot file: a little over 1M
	// producers with 5 batches each.
	producerSnapshotBytesMax = 256 << 20
)

type producerSnapshot struct {
	Version int `json:"version"`
	// UpTo is the offset the snapshot covers: it holds every remembered
	// batch below it, and replay starts there.
	UpTo      int64                   `json:"up_to"`
	Producers []producerSnapshotEntry `json:"producers"`
}

type producerSnapshotEntry struct {
	ID      int64      `json:"id"`
	Epoch   int16      `json:"epoch"`
	Batches [][4]int64 `json:"batches"` // first/last sequence, first/last offset, oldest first
}

// snapshot encodes the batches of the table below upTo.
func (t *producerTable) snapshot(upTo int64) ([]byte, error) {
	s := producerSnapshot{Version: producerSnapshotVersion, UpTo: upTo}
	ids := make([]int64, 0, len(t.entries))
	for id := range t.entries { // order-independent: sorted below
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		entry := t.entries[id]
		e := producerSnapshotEntry{ID: id, Epoch: entry.epoch}
		for i := range entry.count {
			b := entry.batches[(entry.head+i)%producerBatchesRemembered]
			if b.lastOffset < upTo {
				e.Batches = append(e.Batches, [4]int64{int64(b.firstSequence), int64(b.lastSequence), b.firstOffset, b.lastOffset})
			}
		}
		if len(e.Batches) > 0 {
			s.Producers = append(s.Producers, e)
		}
	}
	return json.Marshal(s)
}

// loadProducerSnapshot reads a partition's snapshot into a new table and
// returns the offset replay must start from (0 without a snapshot).
func loadProducerSnapshot(fsys core.FS, dir string) (*producerTable, int64, error) {
	t := newProducerTable()
	data, err := core.ReadFileChecked(fsys, path.Join(dir, producerSnapshotFileName), producerSnapshotBytesMax)
	if errors.Is(err, fs.ErrNotExist) {
		return t, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("broker: producer snapshot of %s: %w", dir, err)
	}
	var s producerSnapshot
	if err := json.Unmarshal(data, &s); err != nil || s.Version != producerSnapshotVersion || s.UpTo < 0 {
		return nil, 0, fmt.Errorf("broker: producer snapshot of %s is corrupt (version %d): %v", dir, s.Version, err)
	}
	for _, e := range s.Producers {
		entry := &producerEntry{epoch: e.Epoch}
		for _, b := range e.Batches {
			entry.push(batchMeta{firstSequence: int32(b[0]), lastSequence: int32(b[1]), firstOffset: b[2], lastOffset: b[3]})
		}
		t.entries[e.ID] = entry
	}
	return t, s.UpTo, nil
}
