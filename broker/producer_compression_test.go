package broker

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// storedBatch reads the batch at offset as the partition stores it and
// returns its header and record values.
func storedBatch(t *testing.T, p *partition, offset int64) (record.Header, []string) {
	t.Helper()
	data, err := p.log.Read(offset, 1<<20, p.log.LogEndOffset(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var reader record.Reader
	var values []string
	h, err := reader.Records(data[:mustBatchSize(t, data)], func(r *record.Record) error {
		values = append(values, string(r.Value))
		return nil
	})
	if err != nil {
		t.Fatalf("stored batch at %d: %v", offset, err)
	}
	return h, values
}

// noise returns n bytes that no codec can shrink (a xorshift stream, so the
// test is the same on every run).
func noise(n int) string {
	out := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[i] = byte(x)
	}
	return string(out)
}

// TestCompressionTypeRewritesBatches checks the produce path's side of
// compression.type (issue 11): a batch in another codec is stored in the
// topic's codec with the same offsets, producer fields and records; one
// already in it, or any batch under compression.type=producer, is stored as
// sent; an idempotent retry of a rewritten batch is still recognized; and a
// rewritten batch above max.message.bytes is MESSAGE_TOO_LARGE.
func TestCompressionTypeRewritesBatches(t *testing.T) {
	cases := []struct {
		compressionType string
		sent            record.Codec
		stored          record.Codec
	}{
		{"producer", record.CodecGzip, record.CodecGzip},
		{"zstd", record.CodecGzip, record.CodecZstd},
		{"zstd", record.CodecZstd, record.CodecZstd},
		{"uncompressed", record.CodecLZ4, record.CodecNone},
		{"snappy", record.CodecNone, record.CodecSnappy},
	}
	b := newSimBroker(t, 51, nil)
	for i, c := range cases {
		topic := fmt.Sprintf("codec-%d", i)
		if code := createCode(t, b, topic, 1, 1, "compression.type", c.compressionType); code != "NONE" {
			t.Fatalf("create %s: %s", topic, code)
		}
		values := []string{"a", "bb", "ccc"}
		spec := idempotentSpec(int64(100+i), 2, 0)
		spec.Codec = c.sent
		mustProduce(t, b, topic, spec, 0, values...)
		mustProduce(t, b, topic, spec, 0, values...) // the retry is a duplicate
		spec.BaseSequence = 3
		mustProduce(t, b, topic, spec, 3, "d")
		p := b.node.catalog.partition(topic, 0)
		h, got := storedBatch(t, p, 0)
		if codec := h.Attributes.Compression(); codec != c.stored || !slices.Equal(got, values) {
			t.Errorf("compression.type=%s, sent %v: stored %v %q, want %v %q", c.compressionType, c.sent, codec, got, c.stored, values)
		}
		if h.BaseOffset != 0 || h.LastOffsetDelta != 2 || h.ProducerID != int64(100+i) || h.ProducerEpoch != 2 || h.BaseSequence != 0 {
			t.Errorf("compression.type=%s: header changed: %+v", c.compressionType, h)
		}
		if end := p.log.LogEndOffset(); end != 4 {
			t.Errorf("compression.type=%s: log end %d, want 4", c.compressionType, end)
		}
	}
	b.checkLogsIntact(t)
}

// TestRecompressedBatchMustFitMaxMessageBytes checks that the limit applies
// to the batch as stored: incompressible values sent uncompressed just
// under max.message.bytes grow when the topic asks for gzip, and are
// refused with MESSAGE_TOO_LARGE; the same batch is accepted under
// compression.type=producer.
func TestRecompressedBatchMustFitMaxMessageBytes(t *testing.T) {
	b := newSimBroker(t, 52, nil)
	value := noise(2000)
	req := produceRequest(t, "x", 0, -1, record.NewBatchSpec(record.CodecNone), value)
	limit := fmt.Sprint(len(req.Topics[0].Partitions[0].Records) + 8)
	cases := []struct {
		compressionType string
		want            int16
	}{
		{"producer", 0},
		{"gzip", kerr.MessageTooLarge.Code},
	}
	for _, c := range cases {
		topic := "limit-" + c.compressionType
		if code := createCode(t, b, topic, 1, 1, "compression.type", c.compressionType, "max.message.bytes", limit); code != "NONE" {
			t.Fatalf("create %s: %s", topic, code)
		}
		req := produceRequest(t, topic, 0, -1, record.NewBatchSpec(record.CodecNone), value)
		if code, _ := produceCode(t, b, req); code != c.want {
			t.Errorf("compression.type=%s: code %d, want %d", c.compressionType, code, c.want)
		}
	}
}

// TestKgoCompressionType checks compression.type end to end with franz-go:
// a producer sends gzip batches; a consumer reads back, with the offsets
// and values sent, zstd batches from the topic with compression.type=zstd
// and the gzip batches as sent from the one with compression.type=producer
// (franz-go reports each record's batch codec in its attributes).
func TestKgoCompressionType(t *testing.T) {
	r := startNode(t, t.TempDir(), nil)
	cases := []struct {
		compressionType string
		wantCodec       uint8 // Kafka's codec numbers: 1 gzip, 4 zstd
	}{
		{"zstd", 4},
		{"producer", 1},
	}
	const count = 50
	for _, c := range cases {
		topic := "compressed-" + c.compressionType
		admin := newClient(t, r.addr)
		create := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		config := kmsg.NewCreateTopicsRequestTopicConfig()
		config.Name, config.Value = "compression.type", kmsg.StringPtr(c.compressionType)
		rt.Configs = append(rt.Configs, config)
		create.Topics = append(create.Topics, rt)
		resp, err := create.RequestWith(testContext(t), admin)
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("create %s: %v %+v", topic, err, resp)
		}
		producer := newClient(t, r.addr, kgo.ProducerBatchCompression(kgo.GzipCompression()), kgo.DefaultProduceTopic(topic))
		var records []*kgo.Record
		for i := range count {
			records = append(records, &kgo.Record{Value: fmt.Appendf(nil, "value-%d", i)})
		}
		if err := producer.ProduceSync(testContext(t), records...).FirstErr(); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		got := consumeAll(t, r.addr, topic, count)
		if len(got) != count {
			t.Fatalf("%s: consumed %d records, want %d", topic, len(got), count)
		}
		for i, rec := range got {
			if rec.Offset != records[i].Offset || string(rec.Value) != fmt.Sprintf("value-%d", i) {
				t.Fatalf("%s: record %d is offset %d %q, produced at offset %d", topic, i, rec.Offset, rec.Value, records[i].Offset)
			}
			if codec := rec.Attrs.CompressionType(); codec != c.wantCodec {
				t.Fatalf("%s: record %d read from a batch with codec %d, want %d", topic, i, codec, c.wantCodec)
			}
		}
	}
}

// TestUnreadableBatchIsCorruptWhenRecompressed checks that a batch whose
// CRC is right but whose compressed records cannot be read back is
// CORRUPT_MESSAGE when the topic must rewrite it (the broker never stores
// records it could not carry over), and stored as sent under
// compression.type=producer, where the broker does not look inside.
func TestUnreadableBatchIsCorruptWhenRecompressed(t *testing.T) {
	b := newSimBroker(t, 53, nil)
	cases := []struct {
		compressionType string
		want            int16
	}{
		{"producer", 0},
		{"zstd", kerr.CorruptMessage.Code},
	}
	for _, c := range cases {
		topic := "garbled-" + c.compressionType
		if code := createCode(t, b, topic, 1, 1, "compression.type", c.compressionType); code != "NONE" {
			t.Fatalf("create %s: %s", topic, code)
		}
		req := produceRequest(t, topic, 0, -1, record.NewBatchSpec(record.CodecGzip), "some value", "another value")
		batch := req.Topics[0].Partitions[0].Records
		for i := record.HeaderBytes; i < len(batch); i++ {
			batch[i] ^= 0x5a
		}
		binary.BigEndian.PutUint32(batch[17:], record.ComputeCRC(batch))
		if code, _ := produceCode(t, b, req); code != c.want {
			t.Errorf("compression.type=%s: code %d, want %d", c.compressionType, code, c.want)
		}
	}
}
