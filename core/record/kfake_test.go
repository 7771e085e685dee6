package record

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfakeHangGuard bounds each kfake exchange so that a broken fake fails the
// test instead of hanging it. No test asserts anything about elapsed time.
const kfakeHangGuard = 60 * time.Second

// kgoCodecs maps our codecs to franz-go's producer options.
var kgoCodecs = map[Codec]kgo.CompressionCodec{
	CodecNone:   kgo.NoCompression(),
	CodecGzip:   kgo.GzipCompression(),
	CodecSnappy: kgo.SnappyCompression(),
	CodecLZ4:    kgo.Lz4Compression(),
	CodecZstd:   kgo.ZstdCompression(),
}

// newFake starts an in-process kfake cluster with one single-partition topic
// and returns a client for it.
func newFake(t *testing.T, opts ...kgo.Opt) (*kgo.Client, [16]byte) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	ctx, cancel := context.WithTimeout(context.Background(), kfakeHangGuard)
	defer cancel()
	meta := kmsg.NewPtrMetadataRequest()
	topic := "t"
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	resp, err := meta.RequestWith(ctx, client)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	return client, resp.Topics[0].TopicID
}

// toKgo converts a record for kgo's producer.
func toKgo(r *Record) *kgo.Record {
	kr := &kgo.Record{Topic: "t", Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

// fetchRaw fetches partition 0 of topic t from offset 0 with a raw
// FetchRequest and returns the stored batch bytes, exactly as the broker
// keeps them.
func fetchRaw(t *testing.T, client *kgo.Client, topicID [16]byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kfakeHangGuard)
	defer cancel()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, 64<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "t", topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes = 0, 64<<20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response shape: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return p.RecordBatches
}

// decodeStream decodes consecutive batches and returns their records and the
// codecs they used.
func decodeStream(t *testing.T, stream []byte) ([]Record, []Codec) {
	t.Helper()
	var records []Record
	var codecs []Codec
	for len(stream) > 0 {
		size, err := BatchSize(stream)
		if err != nil {
			t.Fatal(err)
		}
		h, got, err := DecodeRecords(stream[:size])
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, got...)
		codecs = append(codecs, h.Attributes.Compression())
		stream = stream[size:]
	}
	return records, codecs
}

// TestKgoProducedBatchesDecodeWithOurs produces records with franz-go's real
// producer to kfake with each codec, fetches the stored batches raw, and
// checks that our reader decodes every record exactly (keys, values,
// headers, timestamps, offsets) and that the batch used the codec.
func TestKgoProducedBatchesDecodeWithOurs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts in-process kfake brokers")
	}
	want := sampleRecords(200, 300)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			client, topicID := newFake(t, kgo.ProducerBatchCompression(kgoCodecs[codec]),
				kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			ctx, cancel := context.WithTimeout(context.Background(), kfakeHangGuard)
			defer cancel()
			batch := make([]*kgo.Record, len(want))
			for i := range want {
				batch[i] = toKgo(&want[i])
			}
			if err := client.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			stored := fetchRaw(t, client, topicID)
			if codec == CodecSnappy {
				t.Logf("kgo snappy payload is xerial-framed: %v", bytes.HasPrefix(stored[HeaderBytes:], xerialMagic))
			}
			got, codecs := decodeStream(t, stored)
			compareStream(t, got, want)
			for _, c := range codecs {
				if c != codec {
					t.Fatalf("stored batch codec %v, want %v", c, codec)
				}
			}
		})
	}
}

func compareStream(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.Offset = int64(i)
		if err := equalRecord(&got[i], &w); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// TestOurBatchesConsumeWithKgo sends batches built and compressed by us in a
// raw ProduceRequest to kfake, then consumes them with franz-go's consumer
// (which decompresses with its own codecs) and compares every record.
func TestOurBatchesConsumeWithKgo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts in-process kfake brokers")
	}
	want := sampleRecords(120, 300)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			client, topicID := newFake(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				"t": {0: kgo.NewOffset().AtStart()},
			}))
			// Two batches, so that offsets continue across batches.
			produceRaw(t, client, topicID, codec, want[:50])
			produceRaw(t, client, topicID, codec, want[50:])
			got := consumeKgo(t, client, len(want))
			compareStream(t, got, want)
		})
	}
}

func produceRaw(t *testing.T, client *kgo.Client, topicID [16]byte, codec Codec, records []Record) {
	t.Helper()
	batch, err := AppendBatch(nil, NewBatchSpec(codec), records)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kfakeHangGuard)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = "t", topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
}

func consumeKgo(t *testing.T, client *kgo.Client, n int) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kfakeHangGuard)
	defer cancel()
	var out []Record
	for len(out) < n {
		fetches := client.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("consumed %d of %d records before the hang guard", len(out), n)
			}
			t.Fatal(err)
		}
		fetches.EachRecord(func(kr *kgo.Record) {
			r := Record{Offset: kr.Offset, Timestamp: kr.Timestamp.UnixMilli(), Key: kr.Key, Value: kr.Value}
			for _, h := range kr.Headers {
				r.Headers = append(r.Headers, RecordHeader{Key: h.Key, Value: h.Value})
			}
			out = append(out, r)
		})
	}
	return out
}
