package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// parkFetch sends a Fetch of topic "t" from offset 0 with minBytes on a
// connection of its own and returns the connection's wire and the parked
// waiter.
func parkFetch(t *testing.T, b *simBroker, minBytes int32) (*captureConn, *fetchWaiter) {
	t.Helper()
	c, wire := otherConn(b, 60)
	fetch := newFetchRequest("t", 0)
	fetch.MinBytes, fetch.MaxWaitMillis = minBytes, fetchWaitMsMax // produceValue runs a second each
	c.OnFrame(wire, encodeRequest(fetch, 3))
	b.sched.RunFor(time.Millisecond)
	waiters := b.node.catalog.partition("t", 0).waiters
	if len(wire.sent) != 0 || len(waiters) != 1 {
		t.Fatalf("fetch of an empty partition: %d answers, %d waiters, want it parked", len(wire.sent), len(waiters))
	}
	return wire, waiters[0]
}

func produceValue(t *testing.T, b *simBroker, valueBytes int) {
	t.Helper()
	req := produceRequest(t, "t", 0, 1, record.NewBatchSpec(record.CodecNone), strings.Repeat("v", valueBytes))
	if code, _ := produceCode(t, b, req); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
}

// TestParkedFetchIgnoresSmallAppends checks that appends which cannot
// satisfy a parked fetch's MinBytes do not make it read its partitions
// again (in caching mode every append moves the high watermark), and that
// the append that does satisfy it answers it.
func TestParkedFetchIgnoresSmallAppends(t *testing.T) {
	b := newSimBroker(t, 1, func(c *Config) { c.WriteCaching = true })
	createTopic(t, b, "t", 1)
	wire, w := parkFetch(t, b, 20_000)
	for range 10 {
		produceValue(t, b, 1000)
	}
	if len(wire.sent) != 0 || w.rereads != 0 {
		t.Fatalf("after 10 KB of appends: %d answers, %d re-reads, want none", len(wire.sent), w.rereads)
	}
	produceValue(t, b, 12_000)
	if len(wire.sent) != 1 || w.rereads != 1 {
		t.Fatalf("after 22 KB of appends: %d answers, %d re-reads, want 1 and 1", len(wire.sent), w.rereads)
	}
	resp := decodeFetchFrame(t, wire.sent[0], 11)
	if got := recordsIn(resp.Topics[0].Partitions[0].RecordBatches); got != 11 {
		t.Errorf("answer holds %d records, want 11", got)
	}
}

// TestParkedFetchSeesDataThatBecomesDurable checks the case the growth
// bound cannot see: data appended before the fetch parked but above the
// high watermark (durable mode, before the group commit's fsync) answers
// the fetch as soon as the fsync exposes it, not when its wait ends.
func TestParkedFetchSeesDataThatBecomesDurable(t *testing.T) {
	b, io := newHeldBroker(t, nil)
	req := produceRequest(t, "t", 0, 1, record.NewBatchSpec(record.CodecNone), "appended before the fetch")
	b.conn.OnFrame(b.wire, encodeRequest(req, 8))
	b.sched.RunFor(time.Millisecond)
	wire, w := parkFetch(t, b, 1)
	io.release()
	b.sched.RunFor(time.Millisecond)
	if len(wire.sent) != 1 || w.rereads != 1 {
		t.Fatalf("after the fsync: %d answers, %d re-reads, want 1 and 1", len(wire.sent), w.rereads)
	}
}

// decodeFetchFrame parses a Fetch response frame of version.
func decodeFetchFrame(t *testing.T, frame []byte, version int16) *kmsg.FetchResponse {
	t.Helper()
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	body := frame[4:]
	if version >= fetchFlexibleVersionMin {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("fetch response does not parse: %v", err)
	}
	return resp
}
