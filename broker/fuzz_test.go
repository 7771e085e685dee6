package broker

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// fuzzSeeds returns well-formed request frames of every implemented API, so
// that the fuzzer starts from inputs that get past the header.
func fuzzSeeds(t testing.TB) [][]byte {
	var frames [][]byte
	add := func(req kmsg.Request, version int16) {
		req.SetVersion(version)
		frames = append(frames, encodeRequest(req, 11))
	}
	for _, codec := range []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd} {
		spec := record.NewBatchSpec(codec)
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = 1, 0, 0
		req := produceRequest(t, "fuzz", 0, -1, spec, "one", "two")
		add(req, 3)
		add(req, 9)
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 100, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	add(fetch, 4)
	add(fetch, 12)
	md := kmsg.NewPtrMetadataRequest()
	add(md, 0)
	add(md, 12)
	add(kmsg.NewPtrApiVersionsRequest(), 3)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "made", 2, 1
	ct.Topics = append(ct.Topics, ctt)
	add(ct, 7)
	lo := kmsg.NewPtrListOffsetsRequest()
	lot := kmsg.NewListOffsetsRequestTopic()
	lot.Topic = "fuzz"
	lop := kmsg.NewListOffsetsRequestTopicPartition()
	lop.Timestamp = -1
	lot.Partitions = append(lot.Partitions, lop)
	lo.Topics = append(lo.Topics, lot)
	add(lo, 0)
	add(lo, 6)
	add(kmsg.NewPtrInitProducerIDRequest(), 4)
	add(kmsg.NewPtrDescribeConfigsRequest(), 4)
	return frames
}

// FuzzRequestFrame feeds arbitrary frames to a broker inside the simulator.
// Whatever the bytes, the node must not panic, every response it sends must
// carry the request's correlation id, and every partition log must still
// hold only valid, contiguous batches.
func FuzzRequestFrame(f *testing.F) {
	for _, frame := range fuzzSeeds(f) {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		b := newSimBroker(t, 1, nil)
		createTopic(t, b, "fuzz", 1)
		before := len(b.wire.sent)
		b.send(frame, 2*time.Second)
		if len(frame) >= 8 {
			correlationID := binary.BigEndian.Uint32(frame[4:])
			for _, resp := range b.wire.sent[before:] {
				if len(resp) < 4 || binary.BigEndian.Uint32(resp) != correlationID {
					t.Fatalf("response % x does not carry correlation id %d", resp[:min(len(resp), 8)], correlationID)
				}
			}
		}
		b.checkLogsIntact(t)
	})
}
