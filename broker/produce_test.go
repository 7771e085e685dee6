package broker

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

func idempotentSpec(producerID int64, epoch int16, sequence int32) record.BatchSpec {
	spec := record.NewBatchSpec(record.CodecNone)
	spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = producerID, epoch, sequence
	return spec
}

// produceNow is produceRequest with the records stamped with the broker's
// clock, as a producer stamps them: producer entries expire
// producer.id.expiration.ms after their newest batch's timestamp, so the
// fixed timestamps of produceRequest would expire at once.
func produceNow(t testing.TB, b *simBroker, topic string, spec record.BatchSpec, values ...string) *kmsg.ProduceRequest {
	t.Helper()
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Timestamp: b.node.now().UnixMilli(), Value: []byte(v)}
	}
	batch, err := record.AppendBatch(nil, spec, recs)
	if err != nil {
		t.Fatal(err)
	}
	req := produceRequest(t, topic, 0, -1, spec, values...)
	req.Topics[0].Partitions[0].Records = batch
	return req
}

// TestIdempotentProducerRules checks KIP-98's broker side, one rule per
// step: a retried batch gets its original offset back and is not stored
// again, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch is fenced, and
// a new epoch must start at sequence 0. The log must hold exactly the
// accepted batches.
func TestIdempotentProducerRules(t *testing.T) {
	b := newSimBroker(t, 1, nil)
	createTopic(t, b, "idem", 1)
	steps := []struct {
		name       string
		spec       record.BatchSpec
		values     int
		wantCode   int16
		wantOffset int64
	}{
		{"first batch", idempotentSpec(7, 0, 0), 3, 0, 0},
		{"next batch", idempotentSpec(7, 0, 3), 2, 0, 3},
		{"retry of the first", idempotentSpec(7, 0, 0), 3, 0, 0},
		{"retry of the second", idempotentSpec(7, 0, 3), 2, 0, 3},
		{"gap", idempotentSpec(7, 0, 9), 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"new epoch not at 0", idempotentSpec(7, 1, 5), 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"new epoch", idempotentSpec(7, 1, 0), 1, 0, 5},
		{"old epoch", idempotentSpec(7, 0, 5), 1, kerr.InvalidProducerEpoch.Code, -1},
		{"other producer", idempotentSpec(8, 0, 0), 1, 0, 6},
		{"plain batch", record.NewBatchSpec(record.CodecNone), 1, 0, 7},
	}
	for _, step := range steps {
		values := make([]string, step.values)
		for i := range values {
			values[i] = step.name
		}
		code, offset := produceCode(t, b, produceRequest(t, "idem", 0, -1, step.spec, values...))
		if code != step.wantCode || offset != step.wantOffset {
			t.Fatalf("%s: got code %d offset %d, want code %d offset %d", step.name, code, offset, step.wantCode, step.wantOffset)
		}
	}
	if end := b.node.catalog.partition("idem", 0).log.LogEndOffset(); end != 8 {
		t.Fatalf("log end offset %d, want 8", end)
	}
	b.checkLogsIntact(t)
}

// TestProducerStateSurvivesCrash checks that idempotence holds across a
// crash: with a sync per message, a batch acknowledged just before the
// crash and retried after it is recognized from the log (the state is
// rebuilt from batch headers) instead of being stored twice.
func TestProducerStateSurvivesCrash(t *testing.T) {
	b := newSimBroker(t, 2, func(c *Config) { c.FlushIntervalMessages = 1 })
	createTopic(t, b, "crashy", 1)
	req := produceNow(t, b, "crashy", idempotentSpec(3, 0, 0), "a", "b")
	if code, offset := produceCode(t, b, req); code != 0 || offset != 0 {
		t.Fatalf("first: %d %d", code, offset)
	}
	b.crash(t)
	retry := produceNow(t, b, "crashy", idempotentSpec(3, 0, 0), "a", "b")
	if code, offset := produceCode(t, b, retry); code != 0 || offset != 0 {
		t.Fatalf("retry after crash: code %d offset %d, want the original offset 0", code, offset)
	}
	next := produceNow(t, b, "crashy", idempotentSpec(3, 0, 2), "c")
	if code, offset := produceCode(t, b, next); code != 0 || offset != 2 {
		t.Fatalf("next: %d %d", code, offset)
	}
	if end := b.node.catalog.partition("crashy", 0).log.LogEndOffset(); end != 3 {
		t.Fatalf("log end offset %d, want 3", end)
	}
	b.checkLogsIntact(t)
}

// TestUnsyncedWritesVanishButLogStaysValid checks the default flush policy:
// without log.flush.interval.messages, a crash may lose what was appended
// (the simulated disk drops everything unsynced), but the recovered log is
// valid and the node accepts new writes at the recovered end.
func TestUnsyncedWritesVanishButLogStaysValid(t *testing.T) {
	b := newSimBroker(t, 3, nil)
	createTopic(t, b, "volatile", 1)
	for i := range 5 {
		code, _ := produceCode(t, b, produceRequest(t, "volatile", 0, 1, record.NewBatchSpec(record.CodecNone), "x"))
		if code != 0 {
			t.Fatalf("produce %d: %d", i, code)
		}
	}
	b.crash(t)
	p := b.node.catalog.partition("volatile", 0)
	if p == nil {
		t.Fatal("topic lost: its creation must be durable")
	}
	end := p.log.LogEndOffset()
	if code, offset := produceCode(t, b, produceRequest(t, "volatile", 0, 1, record.NewBatchSpec(record.CodecNone), "y")); code != 0 || offset != end {
		t.Fatalf("after crash: code %d offset %d, want offset %d", code, offset, end)
	}
	b.checkLogsIntact(t)
}

// TestBadProduceInputGetsErrorsAndLeavesLogIntact sends malformed produce
// requests, each of which must get its Kafka error code, store nothing, and
// leave the connection usable.
func TestBadProduceInputGetsErrorsAndLeavesLogIntact(t *testing.T) {
	b := newSimBroker(t, 4, func(c *Config) { c.MessageBytesMax = 4096; c.AutoCreateTopics = false })
	createTopic(t, b, "strict", 1)
	good := func() *kmsg.ProduceRequest {
		return produceRequest(t, "strict", 0, 1, record.NewBatchSpec(record.CodecNone), "ok")
	}
	cases := []struct {
		name   string
		mutate func(*kmsg.ProduceRequest)
		want   int16
	}{
		{"crc flipped", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Records[65] ^= 1 }, kerr.CorruptMessage.Code},
		{"truncated", func(r *kmsg.ProduceRequest) {
			p := &r.Topics[0].Partitions[0]
			p.Records = p.Records[:len(p.Records)-3]
		}, kerr.CorruptMessage.Code},
		{"two batches", func(r *kmsg.ProduceRequest) {
			p := &r.Topics[0].Partitions[0]
			p.Records = append(append([]byte(nil), p.Records...), p.Records...)
		}, kerr.InvalidRecord.Code},
		// Kafka's ProduceRequest.validateRecords: v3+ requests carry only
		// magic 2 batches, anything older is INVALID_RECORD.
		{"magic 1", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Records[16] = 1 }, kerr.InvalidRecord.Code},
		{"magic 3", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Records[16] = 3 }, kerr.CorruptMessage.Code},
		{"length lies", func(r *kmsg.ProduceRequest) {
			binary.BigEndian.PutUint32(r.Topics[0].Partitions[0].Records[8:], 1<<30)
		}, kerr.CorruptMessage.Code},
		{"bad acks", func(r *kmsg.ProduceRequest) { r.Acks = 2 }, kerr.InvalidRequiredAcks.Code},
		{"unknown topic", func(r *kmsg.ProduceRequest) { r.Topics[0].Topic = "nope" }, kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Partition = 9 }, kerr.UnknownTopicOrPartition.Code},
		{"internal topic", func(r *kmsg.ProduceRequest) { r.Topics[0].Topic = offsetsTopic }, kerr.InvalidTopicException.Code},
		{"too large", func(r *kmsg.ProduceRequest) {
			big := produceRequest(t, "strict", 0, 1, record.NewBatchSpec(record.CodecNone), string(make([]byte, 8000)))
			r.Topics[0].Partitions[0].Records = big.Topics[0].Partitions[0].Records
		}, kerr.MessageTooLarge.Code},
		{"transactional", func(r *kmsg.ProduceRequest) {
			spec := idempotentSpec(1, 0, 0)
			spec.Transactional = true
			tx := produceRequest(t, "strict", 0, 1, spec, "tx")
			r.Topics[0].Partitions[0].Records = tx.Topics[0].Partitions[0].Records
		}, kerr.InvalidRecord.Code},
	}
	for _, c := range cases {
		req := good()
		c.mutate(req)
		code, _ := produceCode(t, b, req)
		if code != c.want {
			t.Errorf("%s: code %d (%v), want %d", c.name, code, kerr.ErrorForCode(code), c.want)
		}
	}
	if end := b.node.catalog.partition("strict", 0).log.LogEndOffset(); end != 0 {
		t.Fatalf("bad input stored %d records", end)
	}
	if code, offset := produceCode(t, b, good()); code != 0 || offset != 0 {
		t.Fatalf("good produce after bad ones: %d %d", code, offset)
	}
	b.checkLogsIntact(t)
	if b.wire.closed {
		t.Fatal("a bad produce closed the connection; it must get an error code instead")
	}
}

// TestGarbageFramesCloseTheConnection checks that frames that are not
// requests close the connection (Kafka's answer) without touching state,
// and that an ApiVersions of a future version gets the KIP-511 downgrade.
func TestGarbageFramesCloseTheConnection(t *testing.T) {
	for _, frame := range [][]byte{nil, {1}, {0, 0, 0, 11, 0, 0, 0, 1, 0xff, 0xff, 1, 2, 3}, {0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}} {
		b := newSimBroker(t, 5, nil)
		b.send(frame, time.Second)
		if !b.wire.closed || len(b.wire.sent) != 0 {
			t.Errorf("frame % x: closed=%v responses=%d", frame, b.wire.closed, len(b.wire.sent))
		}
	}
	b := newSimBroker(t, 5, nil)
	req := kmsg.NewPtrApiVersionsRequest()
	frame := encodeRequest(req, 9)
	binary.BigEndian.PutUint16(frame[2:], 99)
	b.send(frame, time.Second)
	if len(b.wire.sent) != 1 {
		t.Fatalf("ApiVersions v99: %d responses", len(b.wire.sent))
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(b.wire.sent[0][4:]); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 {
		t.Fatalf("downgrade answer: %v %+v", err, resp)
	}
}

// TestAcksZeroErrorClosesConnection checks Kafka's signal to producers
// that cannot see error codes: an acks=0 produce that fails closes the
// connection, while one that succeeds gets no answer and keeps it open.
func TestAcksZeroErrorClosesConnection(t *testing.T) {
	b := newSimBroker(t, 6, func(c *Config) { c.AutoCreateTopics = false })
	createTopic(t, b, "quiet", 1)
	before := len(b.wire.sent)
	b.send(encodeRequest(produceRequest(t, "quiet", 0, 0, record.NewBatchSpec(record.CodecNone), "ok"), 8), time.Second)
	if len(b.wire.sent) != before || b.wire.closed {
		t.Fatalf("successful acks=0 produce: %d answers, closed=%v", len(b.wire.sent)-before, b.wire.closed)
	}
	b.send(encodeRequest(produceRequest(t, "missing", 0, 0, record.NewBatchSpec(record.CodecNone), "x"), 9), time.Second)
	if len(b.wire.sent) != before || !b.wire.closed {
		t.Fatalf("failed acks=0 produce: %d answers, closed=%v", len(b.wire.sent)-before, b.wire.closed)
	}
}

// TestProducerStateSurvivesRetentionAndRestart keeps the idempotence
// promise when retention deletes the segment holding a producer's batch and
// the broker restarts before the producer's retry arrives. Found by the
// simulator ('retention' fault, seed 5088: the retry was stored twice):
// the producer table is now saved before retention deletes segments.
func TestProducerStateSurvivesRetentionAndRestart(t *testing.T) {
	b := newSimBroker(t, 11, func(c *Config) {
		c.FlushIntervalMessages = 1
		c.SegmentBytes = 200
		c.RetentionBytes = 400
	})
	createTopic(t, b, "short", 1)
	original := produceNow(t, b, "short", idempotentSpec(7, 0, 0), "kept-once")
	if code, offset := produceCode(t, b, original); code != 0 || offset != 0 {
		t.Fatalf("first: %d %d", code, offset)
	}
	for i := range 10 {
		code, _ := produceCode(t, b, produceNow(t, b, "short", idempotentSpec(8, 0, int32(i)), "filler"))
		if code != 0 {
			t.Fatalf("filler %d: %d", i, code)
		}
	}
	p := b.node.catalog.partition("short", 0)
	p.enforceRetention(b.node.now())
	if p.log.LogStartOffset() == 0 {
		t.Fatal("retention deleted nothing; the test needs the first batch gone")
	}
	b.kill(t)
	retry := produceNow(t, b, "short", idempotentSpec(7, 0, 0), "kept-once")
	code, offset := produceCode(t, b, retry)
	if code != 0 || offset != 0 {
		t.Fatalf("retry after retention and restart: code %d offset %d, want the original offset 0", code, offset)
	}
	if end := b.node.catalog.partition("short", 0).log.LogEndOffset(); end != 11 {
		t.Fatalf("log end %d, want 11: the retry must not be stored again", end)
	}
}
