package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// produceTimestamps appends one batch to topic partition 0 whose records
// carry timestamps, compressed with codec, and fails the test on an error.
func produceTimestamps(t *testing.T, b *simBroker, topic string, codec record.Codec, timestamps ...int64) {
	t.Helper()
	recs := make([]record.Record, len(timestamps))
	for i, ts := range timestamps {
		recs[i] = record.Record{Timestamp: ts, Value: []byte{byte(i)}}
	}
	batch, err := record.AppendBatch(nil, record.NewBatchSpec(codec), recs)
	if err != nil {
		t.Fatal(err)
	}
	req := produceRequest(t, topic, 0, -1, record.NewBatchSpec(codec), "x")
	req.Topics[0].Partitions[0].Records = batch
	resp := b.roundTrip(t, req).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: error %d", code)
	}
}

// listOffsetAt sends ListOffsets v6 for a timestamp and returns partition
// 0's answer.
func listOffsetAt(t *testing.T, b *simBroker, topic string, timestamp int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(6)
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, timestamp, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return b.roundTrip(t, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
}

// TestListOffsetsByTimestampFindsTheRecord checks issue 11 item 3: KIP-79
// defines ListOffsets by time as "the earliest offset whose timestamp is
// greater than or equal to the given timestamp", and Kafka's
// LogSegment.findOffsetByTimestamp answers it by finding the batch through
// the time index and then the first record of that batch at or after the
// target, returning that record's offset and timestamp and the batch's
// leader epoch. When no record qualifies Kafka answers offset, timestamp and
// leader epoch -1 (TimestampAndOffset unknown). Batches are compressed, so
// the broker must decompress to answer, and the timestamps inside a batch
// are out of order, so the answer is neither the batch's first record nor
// its max timestamp.
func TestListOffsetsByTimestampFindsTheRecord(t *testing.T) {
	b := newSimBroker(t, 11, nil)
	createTopic(t, b, "times", 1)
	const base = 1_700_000_000_000
	produceTimestamps(t, b, "times", record.CodecZstd, base+100, base+300, base+200)
	produceTimestamps(t, b, "times", record.CodecGzip, base+400, base+350, base+500)
	cases := []struct {
		target                  int64
		wantOffset, wantStampMs int64
		wantEpoch               int32
	}{
		{base, 0, base + 100, 0},
		{base + 100, 0, base + 100, 0},
		{base + 150, 1, base + 300, 0},
		{base + 301, 3, base + 400, 0},
		{base + 360, 3, base + 400, 0},
		{base + 450, 5, base + 500, 0},
		{base + 501, -1, -1, -1},
	}
	for _, c := range cases {
		got := listOffsetAt(t, b, "times", c.target)
		if got.ErrorCode != 0 || got.Offset != c.wantOffset || got.Timestamp != c.wantStampMs || got.LeaderEpoch != c.wantEpoch {
			t.Errorf("ListOffsets(base+%d) = error %d offset %d timestamp %d epoch %d; want offset %d timestamp %d epoch %d",
				c.target-base, got.ErrorCode, got.Offset, got.Timestamp, got.LeaderEpoch, c.wantOffset, c.wantStampMs, c.wantEpoch)
		}
	}
}
