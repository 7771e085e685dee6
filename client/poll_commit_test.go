package client

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMaxPollRecords checks max.poll.records as Kafka defines it: one Poll
// delivers at most that many records, the rest stay buffered for the next
// Polls, every partition is served in turn, and each partition's records
// come in offset order with its position just past the last one delivered.
func TestMaxPollRecords(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		buffered []int // records buffered per partition
		want     [][]int32
	}{
		{name: "one at a time alternates", max: 1, buffered: []int{2, 2}, want: [][]int32{{0}, {1}, {0}, {1}}},
		{name: "a batch spans partitions", max: 3, buffered: []int{2, 2}, want: [][]int32{{0, 0, 1}, {1}}},
		{name: "a large limit takes everything", max: 500, buffered: []int{3, 1}, want: [][]int32{{0, 0, 0, 1}}},
		{name: "a partition left empty is skipped", max: 2, buffered: []int{0, 3}, want: [][]int32{{1, 1}, {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, 1)
			cfg := DefaultConsumerConfig("")
			cfg.MaxPollRecords = tt.max
			c, err := NewConsumer(tc.cluster, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var assign []PartitionOffset
			for p := range tt.buffered {
				assign = append(assign, PartitionOffset{Topic: "t", Partition: int32(p), Offset: 0})
			}
			if err := c.Assign(assign); err != nil {
				t.Fatal(err)
			}
			for p, n := range tt.buffered {
				cp := c.parts[TopicPartition{Topic: "t", Partition: int32(p)}]
				for offset := range n {
					cp.buffered = append(cp.buffered, Record{Topic: "t", Partition: int32(p), Offset: int64(offset)})
				}
				// Stopped partitions are not fetched: the test feeds them.
				cp.fetchOffset, cp.stopped = int64(n), true
				c.buffered += n
			}
			var got [][]int32
			next := make(map[int32]int64)
			for range tt.want {
				var delivered []Record
				if err := c.Poll(func(records []Record) { delivered = records }); err != nil {
					t.Fatal(err)
				}
				tc.clock.run(time.Millisecond)
				var partitions []int32
				for _, rec := range delivered {
					if rec.Offset != next[rec.Partition] {
						t.Fatalf("partition %d delivered offset %d, want %d", rec.Partition, rec.Offset, next[rec.Partition])
					}
					next[rec.Partition]++
					partitions = append(partitions, rec.Partition)
				}
				got = append(got, partitions)
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("deliveries by partition = %v, want %v", got, tt.want)
			}
			for p, n := range tt.buffered {
				if pos, _ := c.Position(TopicPartition{Topic: "t", Partition: int32(p)}); pos != int64(n) {
					t.Fatalf("partition %d position %d, want %d", p, pos, n)
				}
			}
			if c.buffered != 0 {
				t.Fatalf("%d records still buffered", c.buffered)
			}
		})
	}
}

// TestMaxPollRecordsValidated checks that max.poll.records outside 1 to
// the client's bound is a configuration error.
func TestMaxPollRecordsValidated(t *testing.T) {
	for _, n := range []int{0, -1, pollRecordsMax + 1} {
		cfg := DefaultConsumerConfig("")
		cfg.MaxPollRecords = n
		if err := cfg.validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("max.poll.records %d: err = %v, want ErrInvalidConfig", n, err)
		}
	}
}

// TestOnCommitSeesOwnCommits checks that a commit the consumer makes on its
// own (here: on Close with auto-commit) is reported to OnCommit with its
// offsets and membership when sent, and with its outcome when answered,
// while an explicit CommitAs is not reported; and that CommitAs sends the
// membership it is given.
func TestOnCommitSeesOwnCommits(t *testing.T) {
	tests := []struct {
		name    string
		code    int16
		wantErr error
	}{
		{name: "stored", code: 0},
		{name: "refused", code: kerr.IllegalGeneration.Code, wantErr: kerr.IllegalGeneration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, 1)
			var sent []*kmsg.OffsetCommitRequest
			tc.chain(tc.brokers[0], func(_ *fakeConn, _ int32, req kmsg.Request) (kmsg.Response, bool) {
				r, ok := req.(*kmsg.OffsetCommitRequest)
				if !ok {
					return nil, false
				}
				sent = append(sent, r)
				return offsetCommitAnswer(r, tt.code), true
			})
			cfg := DefaultConsumerConfig("g")
			var calls []GroupMembership
			var offsets []PartitionOffset
			var outcomes []error
			cfg.OnCommit = func(o []PartitionOffset, m GroupMembership) func(error) {
				calls, offsets = append(calls, m), o
				return func(err error) { outcomes = append(outcomes, err) }
			}
			c, err := NewConsumer(tc.cluster, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Assign([]PartitionOffset{{Topic: "t", Partition: 0, Offset: 5}}); err != nil {
				t.Fatal(err)
			}
			c.parts[TopicPartition{Topic: "t", Partition: 0}].stopped = true
			asked := GroupMembership{MemberID: "old", Generation: 3}
			var commitAsErr error
			c.CommitAs(asked, []PartitionOffset{{Topic: "t", Partition: 0, Offset: 2}}, func(err error) { commitAsErr = err })
			tc.clock.run(time.Second)
			closed := false
			c.Close(func() { closed = true })
			tc.clock.run(time.Second)
			if !closed || len(sent) != 2 {
				t.Fatalf("closed %v after %d commits, want closed after 2", closed, len(sent))
			}
			if got := sent[0]; got.MemberID != "old" || got.Generation != 3 || !errors.Is(commitAsErr, tt.wantErr) {
				t.Fatalf("CommitAs sent member %q generation %d, err %v", got.MemberID, got.Generation, commitAsErr)
			}
			want := []PartitionOffset{{Topic: "t", Partition: 0, Offset: 5}}
			if len(calls) != 1 || calls[0] != (GroupMembership{Generation: -1}) || !slices.Equal(offsets, want) {
				t.Fatalf("OnCommit calls %v with %v, want one without membership with %v", calls, offsets, want)
			}
			if len(outcomes) != 1 || !errors.Is(outcomes[0], tt.wantErr) || (tt.wantErr == nil) != (outcomes[0] == nil) {
				t.Fatalf("outcomes %v, want [%v]", outcomes, tt.wantErr)
			}
		})
	}
}
