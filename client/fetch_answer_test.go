package client

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestOnFetchAnswerReportsEpochAndHighWatermark: a fake broker answers a
// consumer's fetches of t-0 (leader epoch 1 in its metadata) with the
// given error codes and high watermarks. OnFetchAnswer must report
// exactly the answers without an error, each with the request's number,
// the epoch the request carried and the high watermark answered.
func TestOnFetchAnswerReportsEpochAndHighWatermark(t *testing.T) {
	tests := []struct {
		name    string
		answers []fetchAnswerSpec // the broker's answers in order; the last one carries a record
		want    []FetchAnswer
	}{
		{name: "every answer without an error",
			answers: []fetchAnswerSpec{{highWatermark: 0}, {highWatermark: 1}},
			want:    []FetchAnswer{{ID: 1, LeaderEpoch: 1, HighWatermark: 0}, {ID: 2, LeaderEpoch: 1, HighWatermark: 1}}},
		{name: "answers with an error are not reported",
			answers: []fetchAnswerSpec{{code: kerr.FencedLeaderEpoch.Code, highWatermark: 9}, {highWatermark: 1}},
			want:    []FetchAnswer{{ID: 2, LeaderEpoch: 1, HighWatermark: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, 1)
			tc.topics["t"] = 1
			batch, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), []record.Record{{Value: []byte("v0")}})
			if err != nil {
				t.Fatal(err)
			}
			var epochs []int32
			tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
				r, ok := req.(*kmsg.FetchRequest)
				if !ok {
					return nil, false
				}
				epochs = append(epochs, r.Topics[0].Partitions[0].CurrentLeaderEpoch)
				answer := tt.answers[min(len(epochs), len(tt.answers))-1]
				resp := r.ResponseKind().(*kmsg.FetchResponse)
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic = "t"
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.ErrorCode, rp.HighWatermark = answer.code, answer.highWatermark
				if len(epochs) >= len(tt.answers) {
					rp.RecordBatches = batch
				}
				rt.Partitions = append(rt.Partitions, rp)
				resp.Topics = append(resp.Topics, rt)
				return resp, true
			})
			var got []FetchAnswer
			cfg := DefaultConsumerConfig("")
			cfg.RetryBackoff = time.Millisecond
			cfg.OnFetchAnswer = func(a FetchAnswer) { got = append(got, a) }
			consumer, err := NewConsumer(tc.cluster, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := consumer.Assign([]PartitionOffset{{Topic: "t", Partition: 0, Offset: 0}}); err != nil {
				t.Fatal(err)
			}
			var records []Record
			if err := consumer.Poll(func(r []Record) { records = append(records, r...) }); err != nil {
				t.Fatal(err)
			}
			tc.clock.runUntil(t, 10*time.Second, func() bool { return len(records) > 0 })
			for i := range tt.want {
				tt.want[i].Partition = TopicPartition{Topic: "t"}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("answers reported %+v, want %+v", got, tt.want)
			}
			for _, epoch := range epochs {
				if epoch != 1 {
					t.Errorf("fetches carried leader epochs %v, want 1 (the metadata's)", epochs)
					break
				}
			}
		})
	}
}

// fetchAnswerSpec is one answer of the fake broker to a fetch of t-0.
type fetchAnswerSpec struct {
	code          int16
	highWatermark int64
}
