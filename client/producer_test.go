package client

import (
	"errors"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newTestProducer returns a producer on a one-broker fake cluster with topic
// "t" of the given partitions.
func newTestProducer(t *testing.T, partitions int32, cfg ProducerConfig) (*testCluster, *Producer) {
	t.Helper()
	tc := newTestCluster(t, 1)
	tc.topics["t"] = partitions
	p, err := NewProducer(tc.cluster, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tc, p
}

// produceAll produces n records with keys k0..k(n-1) to partition 0 and
// returns the slice their results land in.
func produceAll(p *Producer, n int) *[]Result {
	results := new([]Result)
	for i := range n {
		rec := Record{Topic: "t", Partition: 0, Value: []byte{byte(i)}}
		p.Produce(rec, func(r Result) { *results = append(*results, r) })
	}
	return results
}

// TestProduceBatchesByLinger checks that records produced together wait for
// linger.ms and then travel as one batch in one request, acknowledged OK at
// consecutive offsets in order.
func TestProduceBatchesByLinger(t *testing.T) {
	cfg := DefaultProducerConfig()
	cfg.Linger = 20 * time.Millisecond
	cfg.Partitioner = PartitionerManual
	tc, p := newTestProducer(t, 1, cfg)
	log := map[TopicPartition][]record.Header{}
	var produceAt []time.Time
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		if r, ok := req.(*kmsg.ProduceRequest); ok {
			produceAt = append(produceAt, tc.clock.Now())
			return produceOK(r, log), true
		}
		return nil, false
	})
	start := tc.clock.Now()
	results := produceAll(p, 10)
	tc.clock.runUntil(t, time.Second, func() bool { return len(*results) == 10 })
	if len(produceAt) != 1 || produceAt[0].Sub(start) < cfg.Linger {
		t.Fatalf("produce requests at %v, want one after linger %v", produceAt, cfg.Linger)
	}
	for i, r := range *results {
		if r.Outcome != OutcomeOK || r.Offset != int64(i) || r.Err != nil {
			t.Fatalf("result %d = %+v, want OK at offset %d", i, r, i)
		}
	}
}

// TestProduceBatchesBySize checks that batch.size closes batches: 10 records
// of ~100 bytes with batch.size 250 travel in several batches, no batch
// above the size by more than one record, and offsets stay in order.
func TestProduceBatchesBySize(t *testing.T) {
	cfg := DefaultProducerConfig()
	cfg.Linger = time.Hour
	cfg.BatchBytes = 250
	cfg.Partitioner = PartitionerManual
	tc, p := newTestProducer(t, 1, cfg)
	log := map[TopicPartition][]record.Header{}
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		if r, ok := req.(*kmsg.ProduceRequest); ok {
			return produceOK(r, log), true
		}
		return nil, false
	})
	results := new([]Result)
	for i := range 10 {
		p.Produce(Record{Topic: "t", Value: make([]byte, 100+i)}, func(r Result) { *results = append(*results, r) })
	}
	tc.clock.runUntil(t, time.Minute, func() bool { return len(*results) >= 8 })
	batches := log[TopicPartition{"t", 0}]
	if len(batches) < 4 {
		t.Fatalf("%d batches, want at least 4 with batch.size 250", len(batches))
	}
	for _, h := range batches {
		if h.RecordCount > 2 {
			t.Fatalf("batch of %d records exceeds batch.size", h.RecordCount)
		}
	}
	for i, r := range *results {
		if r.Offset != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}
}

// TestProduceTimeoutIsIndefinite checks that a Produce request that never
// gets an answer fails as OutcomeIndefinite (it was sent), and that a record
// refused before sending (too large) is OutcomeDefiniteFailure.
func TestProduceTimeoutIsIndefinite(t *testing.T) {
	cfg := DefaultProducerConfig()
	cfg.Retries = 0
	cfg.RequestTimeout = 500 * time.Millisecond
	cfg.MaxRequestBytes = 1000
	tc, p := newTestProducer(t, 1, cfg)
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		_, isProduce := req.(*kmsg.ProduceRequest)
		return nil, isProduce // Swallow produce requests.
	})
	results := produceAll(p, 1)
	var big Result
	p.Produce(Record{Topic: "t", Value: make([]byte, 2000)}, func(r Result) { big = r })
	tc.clock.runUntil(t, 10*time.Second, func() bool { return len(*results) == 1 && big.Outcome != 0 })
	if r := (*results)[0]; r.Outcome != OutcomeIndefinite || !errors.Is(r.Err, ErrRequestTimeout) {
		t.Fatalf("unanswered produce: %+v, want indefinite request timeout", r)
	}
	if big.Outcome != OutcomeDefiniteFailure || !errors.Is(big.Err, ErrRecordTooLarge) {
		t.Fatalf("oversized record: %+v, want definite ErrRecordTooLarge", big)
	}
}

// TestProduceOutcomeByErrorCode checks the classification of broker error
// codes without retries: MESSAGE_TOO_LARGE proves nothing was appended
// (definite); NOT_ENOUGH_REPLICAS_AFTER_APPEND and NOT_LEADER_OR_FOLLOWER do
// not (indefinite).
func TestProduceOutcomeByErrorCode(t *testing.T) {
	cases := []struct {
		code int16
		want Outcome
	}{
		{kerr.MessageTooLarge.Code, OutcomeDefiniteFailure},
		{kerr.NotEnoughReplicasAfterAppend.Code, OutcomeIndefinite},
		{kerr.NotLeaderForPartition.Code, OutcomeIndefinite},
		{kerr.InvalidRecord.Code, OutcomeDefiniteFailure},
	}
	for _, tt := range cases {
		cfg := DefaultProducerConfig()
		cfg.Retries = 0
		tc, p := newTestProducer(t, 1, cfg)
		tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
			if r, ok := req.(*kmsg.ProduceRequest); ok {
				return produceError(r, tt.code), true
			}
			return nil, false
		})
		results := produceAll(p, 1)
		tc.clock.runUntil(t, 10*time.Second, func() bool { return len(*results) == 1 })
		if got := (*results)[0]; got.Outcome != tt.want {
			t.Errorf("code %d: outcome %v (%v), want %v", tt.code, got.Outcome, got.Err, tt.want)
		}
	}
}

// TestIdempotentRetryKeepsSequenceAndOrder checks the idempotent producer:
// the first attempt of every batch fails with NOT_LEADER_OR_FOLLOWER (after
// which the batch may be in the log), the retries carry the same producer
// id, epoch and base sequence, sequences grow by the record counts, and all
// records end OK in production order.
func TestIdempotentRetryKeepsSequenceAndOrder(t *testing.T) {
	cfg := DefaultProducerConfig()
	cfg.Idempotent = true
	cfg.Linger = 0
	cfg.Partitioner = PartitionerManual
	tc, p := newTestProducer(t, 1, cfg)
	log := map[TopicPartition][]record.Header{}
	attempts := map[int32]int{}
	var sent []record.Header
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		r, ok := req.(*kmsg.ProduceRequest)
		if !ok {
			return nil, false
		}
		h, _ := record.Validate(r.Topics[0].Partitions[0].Records)
		sent = append(sent, h)
		attempts[h.BaseSequence]++
		if attempts[h.BaseSequence] == 1 {
			return produceError(r, kerr.NotLeaderForPartition.Code), true
		}
		return produceOK(r, log), true
	})
	results := new([]Result)
	for i := range 6 {
		p.Produce(Record{Topic: "t", Value: []byte{byte(i)}}, func(r Result) { *results = append(*results, r) })
		tc.clock.run(time.Millisecond / 2)
	}
	tc.clock.runUntil(t, time.Minute, func() bool { return len(*results) == 6 })
	for i, r := range *results {
		if r.Outcome != OutcomeOK || r.Record.Value[0] != byte(i) {
			t.Fatalf("result %d: %+v", i, r)
		}
		// Linger 0 sends each record alone, so its sequence is its index.
		if r.ProducerID != 7 || r.ProducerEpoch != 0 || r.Sequence != int32(i) {
			t.Fatalf("result %d sent as pid %d epoch %d seq %d, want pid 7 epoch 0 seq %d", i, r.ProducerID, r.ProducerEpoch, r.Sequence, i)
		}
	}
	next := int32(0)
	for _, h := range log[TopicPartition{"t", 0}] {
		if h.ProducerID != 7 || h.BaseSequence != next {
			t.Fatalf("appended batch pid %d seq %d, want pid 7 seq %d", h.ProducerID, h.BaseSequence, next)
		}
		next += h.RecordCount
	}
	for seq, n := range attempts { // order-independent: each count is checked alone
		if n != 2 {
			t.Fatalf("sequence %d sent %d times, want 2", seq, n)
		}
	}
}

// TestIdempotentUnknownProducerResets checks that UNKNOWN_PRODUCER_ID makes
// the producer fail the numbered batch definitively (this attempt proves no
// append and no earlier attempt was sent), take a new identity, and send
// the next record with sequence 0 again.
func TestIdempotentUnknownProducerResets(t *testing.T) {
	cfg := DefaultProducerConfig()
	cfg.Idempotent = true
	tc, p := newTestProducer(t, 1, cfg)
	log := map[TopicPartition][]record.Header{}
	inits := 0
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		switch r := req.(type) {
		case *kmsg.InitProducerIDRequest:
			inits++
			resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
			resp.ProducerID = int64(100 + inits)
			return resp, true
		case *kmsg.ProduceRequest:
			if len(log[TopicPartition{"t", 0}]) == 0 && inits == 1 {
				log[TopicPartition{"t", 0}] = nil
				return produceError(r, kerr.UnknownProducerID.Code), true
			}
			return produceOK(r, log), true
		}
		return nil, false
	})
	first := produceAll(p, 1)
	tc.clock.runUntil(t, time.Minute, func() bool { return len(*first) == 1 })
	second := produceAll(p, 1)
	tc.clock.runUntil(t, time.Minute, func() bool { return len(*second) == 1 })
	if r := (*first)[0]; r.Outcome != OutcomeDefiniteFailure || !errors.Is(r.Err, ErrProducerReset) {
		t.Fatalf("first record: %+v, want a definite reset failure", r)
	}
	h := log[TopicPartition{"t", 0}][0]
	if r := (*second)[0]; r.Outcome != OutcomeOK || h.ProducerID != 102 || h.BaseSequence != 0 {
		t.Fatalf("second record %+v in batch pid %d seq %d, want OK with pid 102 seq 0", r, h.ProducerID, h.BaseSequence)
	}
}

// TestProduceFlush checks that Flush sends at once despite a long linger and
// calls back only when every record has completed.
func TestProduceFlush(t *testing.T) {
	cfg := DefaultProducerConfig()
	cfg.Linger = time.Hour
	tc, p := newTestProducer(t, 3, cfg)
	log := map[TopicPartition][]record.Header{}
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		if r, ok := req.(*kmsg.ProduceRequest); ok {
			return produceOK(r, log), true
		}
		return nil, false
	})
	results := produceAll(p, 5)
	flushed := false
	p.Flush(func() { flushed = true })
	tc.clock.runUntil(t, time.Second, func() bool { return flushed })
	if len(*results) != 5 || p.Buffered() != 0 {
		t.Fatalf("flush finished with %d results, %d buffered", len(*results), p.Buffered())
	}
}

// TestResultIdentityAndBatchSize checks what a Result says about how its
// record was sent: the sequence of each record of a batch is the batch's
// base sequence plus its index, the batch size is the encoded batch's, and
// a producer without idempotence reports no identity.
func TestResultIdentityAndBatchSize(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		cfg := DefaultProducerConfig()
		cfg.Idempotent = idempotent
		cfg.Linger = 10 * time.Millisecond
		tc, p := newTestProducer(t, 1, cfg)
		log := map[TopicPartition][]record.Header{}
		var sizes []int
		tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
			if r, ok := req.(*kmsg.ProduceRequest); ok {
				sizes = append(sizes, len(r.Topics[0].Partitions[0].Records))
				return produceOK(r, log), true
			}
			return nil, false
		})
		results := produceAll(p, 3)
		tc.clock.runUntil(t, time.Minute, func() bool { return len(*results) == 3 })
		if len(sizes) != 1 {
			t.Fatalf("idempotent %v: %d produce requests, want one batch", idempotent, len(sizes))
		}
		for i, r := range *results {
			wantSeq, wantPID := int32(i), int64(7)
			if !idempotent {
				wantSeq, wantPID = -1, -1
			}
			if r.Outcome != OutcomeOK || r.Sequence != wantSeq || r.ProducerID != wantPID {
				t.Errorf("idempotent %v: result %d is %v as pid %d seq %d, want ok as pid %d seq %d", idempotent, i, r.Outcome, r.ProducerID, r.Sequence, wantPID, wantSeq)
			}
			if r.BatchBytes != sizes[0] || r.BatchRecords != 3 {
				t.Errorf("idempotent %v: result %d in a batch of %d bytes and %d records, want %d and 3", idempotent, i, r.BatchBytes, r.BatchRecords, sizes[0])
			}
		}
	}
}
