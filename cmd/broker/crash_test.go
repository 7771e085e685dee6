package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ack is one acknowledged produce: what the broker said it stored where.
type ack struct {
	sequence  int // the record's place in the producer's send order
	value     string
	partition int32
	offset    int64
}

// ackLog collects acknowledgements from kgo's promise goroutines.
type ackLog struct {
	mu     sync.Mutex
	acks   []ack
	failed int
}

func (l *ackLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// produceUntilStopped sends records as fast as kgo accepts them until ctx
// ends, logging every acknowledgement; it returns when every promise has
// run.
func produceUntilStopped(ctx context.Context, producer *kgo.Client, acks *ackLog) {
	var pending sync.WaitGroup
	for sequence := 0; ctx.Err() == nil; sequence++ {
		value := fmt.Sprintf("record-%07d", sequence)
		pending.Add(1)
		producer.Produce(ctx, &kgo.Record{Key: []byte(value), Value: []byte(value)}, func(r *kgo.Record, err error) {
			defer pending.Done()
			acks.mu.Lock()
			defer acks.mu.Unlock()
			if err != nil {
				acks.failed++
				return
			}
			acks.acks = append(acks.acks, ack{sequence, value, r.Partition, r.Offset})
		})
	}
	pending.Wait()
}

// TestKill9KeepsAcknowledgedRecords runs an idempotent acks=all producer
// against a broker that syncs before acknowledging
// (log.flush.interval.messages=1), commits group offsets, then SIGKILLs the
// broker mid-stream. After a restart on the same data directory every
// acknowledged record must be at the offset it was acknowledged with, in
// send order per partition, no value may appear twice in the log, and the
// committed offsets must still be there.
func TestKill9KeepsAcknowledgedRecords(t *testing.T) {
	dataDir := t.TempDir()
	config := []string{"log.flush.interval.messages=1", "num.partitions=3"}
	b := startBroker(t, dataDir, config...)
	producer := newClient(t, b.addr, kgo.DefaultProduceTopic("durable"), kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(500),
		kgo.RecordDeliveryTimeout(2*time.Second), kgo.RetryTimeout(2*time.Second))
	acks := &ackLog{}
	ctx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		produceUntilStopped(ctx, producer, acks)
	}()

	waitFor(t, "200 acknowledged records", func() bool { return acks.count() >= 200 })
	committed := commitSomeOffsets(t, b.addr, acks)
	waitFor(t, "400 acknowledged records", func() bool { return acks.count() >= 400 })
	if status := b.signal(t, syscall.SIGKILL); status != -1 {
		t.Fatalf("exit status %d after SIGKILL, want death by signal", status)
	}
	stopProducing()
	producer.Close() // fails what is still buffered; their promises run
	select {
	case <-producing:
	case <-time.After(hangGuard):
		t.Fatal("hang guard: producer promises still pending after the kill")
	}

	restarted := startBroker(t, dataDir, config...)
	checkAcknowledged(t, readAll(t, restarted.addr, "durable"), acks)
	checkCommitted(t, restarted.addr, committed)
}

// commitSomeOffsets commits, for group "readers", one past an acknowledged
// offset in each partition acknowledged so far.
func commitSomeOffsets(t *testing.T, addr string, acks *ackLog) kadm.Offsets {
	t.Helper()
	offsets := kadm.Offsets{}
	acks.mu.Lock()
	for _, a := range acks.acks {
		offsets.Add(kadm.Offset{Topic: "durable", Partition: a.partition, At: a.offset + 1, LeaderEpoch: -1})
	}
	acks.mu.Unlock()
	admin := kadm.NewClient(newClient(t, addr))
	if err := admin.CommitAllOffsets(testContext(t), "readers", offsets); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	return offsets
}

func checkCommitted(t *testing.T, addr string, want kadm.Offsets) {
	t.Helper()
	admin := kadm.NewClient(newClient(t, addr))
	got, err := admin.FetchOffsets(testContext(t), "readers")
	if err != nil || got.Error() != nil {
		t.Fatalf("fetch offsets after restart: %v %v", err, got.Error())
	}
	want.Each(func(o kadm.Offset) {
		r, ok := got.Lookup(o.Topic, o.Partition)
		if !ok || r.At != o.At {
			t.Errorf("committed offset of %s-%d after restart: %v (found %v), want %d", o.Topic, o.Partition, r.At, ok, o.At)
		}
	})
}

// checkAcknowledged compares the log read after the restart with the
// acknowledgements.
func checkAcknowledged(t *testing.T, records []*kgo.Record, acks *ackLog) {
	t.Helper()
	type position struct {
		partition int32
		offset    int64
	}
	stored := map[position]string{}
	seen := map[string]bool{}
	for _, r := range records {
		if seen[string(r.Value)] {
			t.Fatalf("value %s stored twice", r.Value)
		}
		seen[string(r.Value)] = true
		stored[position{r.Partition, r.Offset}] = string(r.Value)
	}
	acks.mu.Lock()
	defer acks.mu.Unlock()
	// kgo runs one partition's promises in send order, so within a
	// partition both the sequence and the offset must rise.
	last := map[int32]ack{}
	for _, a := range acks.acks {
		if got, ok := stored[position{a.partition, a.offset}]; !ok || got != a.value {
			t.Fatalf("acknowledged %s at %d-%d, found %q after the restart (present: %v)", a.value, a.partition, a.offset, got, ok)
		}
		if previous, ok := last[a.partition]; ok && (a.sequence <= previous.sequence || a.offset <= previous.offset) {
			t.Fatalf("partition %d: %s acknowledged at offset %d after %s at offset %d",
				a.partition, a.value, a.offset, previous.value, previous.offset)
		}
		last[a.partition] = a
	}
	t.Logf("%d acknowledged, %d failed at the kill, %d stored after the restart", len(acks.acks), acks.failed, len(records))
}

// TestSigtermShutsDownCleanly produces records to a broker with the default
// flush policy (nothing synced before acknowledging), stops it with
// SIGTERM, and checks that it exits with status 0 after logging its
// shutdown, and that a restart on the same directory serves every record.
func TestSigtermShutsDownCleanly(t *testing.T) {
	dataDir := t.TempDir()
	b := startBroker(t, dataDir, "num.partitions=2")
	values := produceValues(t, b.addr, "graceful", "v", 500)
	if status := b.signal(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0; log:\n%s", status, b.log.String())
	}
	if log := b.log.String(); !strings.Contains(log, `msg="shutting down" signal=terminated`) {
		t.Fatalf("no shutdown line in the log:\n%s", log)
	}
	restarted := startBroker(t, dataDir)
	got := readAll(t, restarted.addr, "graceful")
	checkDense(t, got)
	if len(got) != len(values) {
		t.Fatalf("read %d records after the restart, produced %d", len(got), len(values))
	}
}
