package client

import (
	"fmt"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestIdempotentSendsStayWithinBrokerWindow checks that the idempotent
// producer never sends a batch idempotentWindowBatchesMax or more batches
// past the oldest batch of its partition whose outcome is unknown, since
// the broker recognises a retry as a duplicate only within its last 5
// batches (sim seed 913354: a retry sent after newer batches had run six
// ahead was refused although it was in the log).
//
// The broker appends the first batch but answers its first attempt with
// NOT_ENOUGH_REPLICAS_AFTER_APPEND (retriable, maybe written) and
// acknowledges the four batches in flight behind it. Counting only the
// batches in flight, the producer then sent the retry together with four
// new batches, the last of them eight batches past the unresolved one. The
// fake broker checks the bound on every batch it receives, against the
// batches whose results the producer had not seen when it sent it, and
// answers a retry with the original offset. The producer must still use the
// whole window (five batches in flight at the start); batches of one and of
// three records check that the distance counts batches, not sequence
// numbers.
func TestIdempotentSendsStayWithinBrokerWindow(t *testing.T) {
	for _, recordsPerBatch := range []int{1, 3} {
		t.Run(fmt.Sprintf("records per batch %d", recordsPerBatch), func(t *testing.T) {
			checkSendsWithinWindow(t, recordsPerBatch)
		})
	}
}

func checkSendsWithinWindow(t *testing.T, recordsPerBatch int) {
	const batches = 12
	cfg := DefaultProducerConfig()
	cfg.Idempotent = true
	cfg.Linger = time.Hour
	cfg.BatchBytes = recordsPerBatch * (recordOverheadBytesMax + 1)
	cfg.Partitioner = PartitionerManual
	tc, p := newTestProducer(t, 1, cfg)
	log := map[TopicPartition][]record.Header{}
	offsets := map[int32]int64{} // Base offset by base sequence.
	// resolvedAt is when the producer learned each batch's outcome (its
	// records' results), by batch index.
	resolvedAt := map[int64]time.Time{}
	var violations []string
	distanceMax := int64(0)
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		r, ok := req.(*kmsg.ProduceRequest)
		if !ok {
			return nil, false
		}
		h, err := record.Validate(r.Topics[0].Partitions[0].Records)
		if err != nil {
			t.Fatalf("produce request with an invalid batch: %v", err)
		}
		index := int64(h.BaseSequence) / int64(recordsPerBatch)
		sentAt := tc.clock.Now().Add(-tc.net.latency)
		oldest := int64(0)
		for at, ok := resolvedAt[oldest]; ok && !at.After(sentAt); at, ok = resolvedAt[oldest] {
			oldest++
		}
		distanceMax = max(distanceMax, index-oldest)
		if index-oldest >= idempotentWindowBatchesMax {
			violations = append(violations, fmt.Sprintf("batch %d sent while batch %d was unresolved", index, oldest))
		}
		base, duplicate := offsets[h.BaseSequence]
		if !duplicate {
			resp := produceOK(r, log)
			base = resp.Topics[0].Partitions[0].BaseOffset
			offsets[h.BaseSequence] = base
			if index == 0 {
				return produceError(r, kerr.NotEnoughReplicasAfterAppend.Code), true
			}
		}
		resp := produceOK(r, map[TopicPartition][]record.Header{})
		resp.Topics[0].Partitions[0].BaseOffset = base
		return resp, true
	})
	results := new([]Result)
	for i := range batches * recordsPerBatch {
		p.Produce(Record{Topic: "t", Value: []byte{byte(i)}}, func(r Result) {
			*results = append(*results, r)
			resolvedAt[int64(i/recordsPerBatch)] = tc.clock.Now()
		})
	}
	tc.clock.runUntil(t, time.Minute, func() bool { return len(*results) == batches*recordsPerBatch })
	if len(violations) > 0 {
		t.Fatalf("sends ran %d or more batches past an unresolved batch: %v", idempotentWindowBatchesMax, violations)
	}
	if distanceMax != idempotentWindowBatchesMax-1 {
		t.Fatalf("sends ran at most %d batches ahead, want the whole window (%d)", distanceMax, idempotentWindowBatchesMax-1)
	}
	if n := len(log[TopicPartition{"t", 0}]); n != batches {
		t.Fatalf("%d batches appended, want %d", n, batches)
	}
	// The retried first batch completes after the batches behind it, so
	// each result is matched to its record by value.
	for _, r := range *results {
		i := int(r.Record.Value[0])
		if r.Outcome != OutcomeOK || r.Offset != int64(i) || r.Sequence != int32(i) {
			t.Fatalf("record %d: %v at offset %d with sequence %d (%v), want OK at offset and sequence %d",
				i, r.Outcome, r.Offset, r.Sequence, r.Err, i)
		}
	}
}
