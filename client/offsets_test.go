package client

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsResult checks how a ListOffsets answer is read: a lookup
// by time may answer no record (-1, KIP-79) and keeps the record's
// timestamp, while the special lookups (earliest, latest) must name an
// offset.
func TestListOffsetsResult(t *testing.T) {
	tests := []struct {
		name              string
		asked             int64
		offset, timestamp int64
		wantErr           bool
	}{
		{name: "time lookup finds a record", asked: 1000, offset: 7, timestamp: 1005},
		{name: "time lookup finds none", asked: 1000, offset: -1, timestamp: -1},
		{name: "time lookup with a nonsense offset", asked: 1000, offset: -3, timestamp: -1, wantErr: true},
		{name: "latest", asked: OffsetLatest, offset: 12, timestamp: -1},
		{name: "latest without an offset", asked: OffsetLatest, offset: -1, timestamp: -1, wantErr: true},
		{name: "earliest without an offset", asked: OffsetEarliest, offset: -1, timestamp: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := kmsg.NewPtrListOffsetsResponse()
			topic := kmsg.NewListOffsetsResponseTopic()
			topic.Topic = "t"
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition, p.Offset, p.Timestamp = 2, tt.offset, tt.timestamp
			topic.Partitions = append(topic.Partitions, p)
			resp.Topics = append(resp.Topics, topic)
			got, err := listOffsetsResult(resp, tt.asked)
			if tt.wantErr {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("err = %v, want ErrProtocol", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res := got[TopicPartition{Topic: "t", Partition: 2}]
			if res.Offset != tt.offset || res.Timestamp != tt.timestamp || res.Err != nil {
				t.Fatalf("got %+v, want offset %d, timestamp %d", res, tt.offset, tt.timestamp)
			}
		})
	}
}
