package client

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestOnFetchErrorSeesBrokerAndValidationErrors: a fetch answered
// KAFKA_STORAGE_ERROR and then a batch whose CRC fails are both reported to
// OnFetchError with the offset fetched, the second as ErrCorruptFetch, and
// the consumer delivers only the intact batch that follows.
func TestOnFetchErrorSeesBrokerAndValidationErrors(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.topics["t"] = 1
	good, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), []record.Record{{Value: []byte("v0")}})
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0x40 // inside the CRC-covered records
	fetches := 0
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		r, ok := req.(*kmsg.FetchRequest)
		if !ok {
			return nil, false
		}
		fetches++
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.HighWatermark = 1
		switch fetches {
		case 1:
			rp.ErrorCode = kerr.KafkaStorageError.Code
		case 2:
			rp.RecordBatches = bad
		default:
			rp.RecordBatches = good
		}
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, true
	})
	type seen struct {
		offset int64
		err    error
	}
	var errs []seen
	cfg := DefaultConsumerConfig("")
	cfg.OnFetchError = func(tp TopicPartition, offset int64, err error) { errs = append(errs, seen{offset, err}) }
	var sent, received []uint64
	cfg.OnFetchSent = func(id uint64) { sent = append(sent, id) }
	cfg.OnFetchReceived = func(id uint64) {
		received = append(received, id)
		if len(received) > fetches {
			t.Errorf("fetch %d reported received before the broker answered it", id)
		}
	}
	consumer, err := NewConsumer(tc.cluster, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Assign([]PartitionOffset{{Topic: "t", Partition: 0, Offset: 0}}); err != nil {
		t.Fatal(err)
	}
	var got []Record
	if err := consumer.Poll(func(records []Record) { got = append(got, records...) }); err != nil {
		t.Fatal(err)
	}
	tc.clock.runUntil(t, 10*time.Second, func() bool { return len(got) > 0 })
	if len(errs) != 2 || !errors.Is(errs[0].err, kerr.KafkaStorageError) || !errors.Is(errs[1].err, ErrCorruptFetch) ||
		errs[0].offset != 0 || errs[1].offset != 0 {
		t.Fatalf("fetch errors %+v, want KAFKA_STORAGE_ERROR then ErrCorruptFetch at offset 0", errs)
	}
	if len(got) != 1 || string(got[0].Value) != "v0" || got[0].Offset != 0 {
		t.Fatalf("delivered %+v, want v0 at offset 0", got)
	}
	// The record names the third Fetch, the one that returned it, which
	// was reported sent and then received.
	if got[0].FetchID != 3 || len(sent) < 3 || sent[2] != 3 || len(received) < 3 || received[2] != 3 {
		t.Fatalf("record from fetch %d; fetches sent %v, received %v", got[0].FetchID, sent, received)
	}
}

// TestOnFetchErrorSeesALeaderlessPartition: a partition the metadata shows
// without a leader (an offline partition: LEADER_NOT_AVAILABLE) cannot be
// fetched; OnFetchError hears why, with the broker's error.
func TestOnFetchErrorSeesALeaderlessPartition(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.topics["t"] = 1
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		r, ok := req.(*kmsg.MetadataRequest)
		if !ok {
			return nil, false
		}
		resp := tc.metadata(r).(*kmsg.MetadataResponse)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				p.ErrorCode, p.Leader = kerr.LeaderNotAvailable.Code, -1
			}
		}
		return resp, true
	})
	var errs []error
	cfg := DefaultConsumerConfig("")
	cfg.OnFetchError = func(tp TopicPartition, offset int64, err error) { errs = append(errs, err) }
	consumer, err := NewConsumer(tc.cluster, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Assign([]PartitionOffset{{Topic: "t", Partition: 0, Offset: 0}}); err != nil {
		t.Fatal(err)
	}
	if err := consumer.Poll(func([]Record) {}); err != nil {
		t.Fatal(err)
	}
	tc.clock.runUntil(t, 10*time.Second, func() bool {
		return len(errs) > 0 && errors.Is(errs[len(errs)-1], kerr.LeaderNotAvailable)
	})
	if !errors.Is(errs[len(errs)-1], ErrNoBroker) {
		t.Fatalf("error %v does not say that no broker leads the partition", errs[len(errs)-1])
	}
}
