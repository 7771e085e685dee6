package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
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
	// lastTimestampMs is the timestamp of the newest batch (its max
	// timestamp, which is the append time under LogAppendTime), as Kafka's
	// ProducerStateEntry.lastTimestamp: the entry expires
	// producer.id.expiration.ms after it.
	lastTimestampMs int64
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
// one partition. On startup it is loaded from the newest usable snapshot
// and completed by replaying the batch headers after it (see
// producer_snapshot.go), so it survives crashes; entries expire
// producer.id.expiration.ms after their newest batch (see expire).
type producerTable struct {
	entries map[int64]*producerEntry
	// endOffset is the offset after the newest batch the table has
	// recorded or loaded (0 if none): a snapshot at or above it holds
	// everything the table knows.
	endOffset int64
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
		if planted.Is("duplicate-window-of-one") && i < entry.count-1 {
			continue // remember only the newest batch
		}
		b := entry.batches[(entry.head+i)%producerBatchesRemembered]
		if b.firstSequence == h.BaseSequence && b.lastSequence == lastSequence {
			return b, errDuplicateSequence
		}
	}
	want := nextSequence(entry.newest().lastSequence)
	if h.BaseSequence != want && !(planted.Is("sequence-gap-of-one") && h.BaseSequence == nextSequence(want)) {
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

// record remembers an appended batch (h carries its assigned offsets) and
// its timestamp (see batchTimestampMs).
func (t *producerTable) record(h *record.Header, timestampMs int64) {
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
	entry.lastTimestampMs = timestampMs
	t.endOffset = max(t.endOffset, h.LastOffset()+1)
}

// batchTimestampMs is the timestamp a producer entry remembers for a batch:
// its max timestamp (the append time under LogAppendTime, which the broker
// wrote there), or nowMs for a batch without timestamps (-1), so that such
// a producer is not expired at the next check.
func batchTimestampMs(h *record.Header, nowMs int64) int64 {
	if h.MaxTimestamp < 0 {
		return nowMs
	}
	return h.MaxTimestamp
}

// producerIDExpirationMsDefault is Kafka's default producer.id.expiration.ms
// (KIP-854): one day after its newest batch a producer's state is dropped,
// and a retry older than that is no longer recognized as a duplicate.
const producerIDExpirationMsDefault = 86400000

// producerIDExpirationMs is how long a producer entry outlives its newest
// batch (producer.id.expiration.ms).
func (p *partition) producerIDExpirationMs() int64 { return p.node.cfg.ProducerIDExpirationMs }

// expire removes the entries whose newest batch is expirationMs or more
// older than nowMs (Kafka's isProducerExpired: currentTimeMs -
// lastTimestamp >= producerIdExpirationMs) and returns how many it removed.
// Expiring changes no snapshot: loading one expires its entries again.
func (t *producerTable) expire(nowMs, expirationMs int64) int {
	removed := 0
	for id, entry := range t.entries { // order-independent: each entry is judged alone
		if nowMs-entry.lastTimestampMs >= expirationMs {
			delete(t.entries, id)
			removed++
		}
	}
	return removed
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
