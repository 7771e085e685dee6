package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestMetricsCountTrafficRequestsAndErrors produces and fetches through the
// simulated broker and checks the snapshot: messages and bytes in and out
// per topic, requests and error codes per API, latency and queue time
// histograms, log sizes, and the cluster gauges of a single node.
func TestMetricsCountTrafficRequestsAndErrors(t *testing.T) {
	b := newSimBroker(t, 1, func(c *Config) { c.AutoCreateTopics = false })
	createTopic(t, b, "orders", 2)
	produce := produceRequest(t, "orders", 1, 1, record.NewBatchSpec(record.CodecNone), "a", "b", "c")
	batchBytes := int64(len(produce.Topics[0].Partitions[0].Records))
	for range 2 {
		if code, _ := produceCode(t, b, produce); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	if code, _ := produceCode(t, b, produceRequest(t, "missing", 0, 1, record.NewBatchSpec(record.CodecNone), "x")); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to a missing topic: error %d", code)
	}
	fetch := newFetchRequest("orders", 1)
	resp := b.roundTrip(t, fetch).(*kmsg.FetchResponse)
	fetchedBytes := int64(len(resp.Topics[0].Partitions[0].RecordBatches))
	if fetchedBytes != 2*batchBytes {
		t.Fatalf("fetched %d bytes, want %d", fetchedBytes, 2*batchBytes)
	}

	m := b.node.Metrics()
	wantTopics := []TopicMetrics{{Topic: "orders", MessagesIn: 6, BytesIn: 2 * batchBytes, MessagesOut: 6, BytesOut: 2 * batchBytes}}
	if len(m.Topics) != 1 || m.Topics[0] != wantTopics[0] {
		t.Errorf("topics %+v, want %+v", m.Topics, wantTopics)
	}
	requests := map[string]RequestMetrics{}
	for _, r := range m.Requests {
		requests[r.Name] = r
	}
	tests := []struct {
		api        string
		requests   int64
		wantErrors []ErrorCount
	}{
		{api: "CreateTopics", requests: 1},
		{api: "Produce", requests: 3, wantErrors: []ErrorCount{{Code: 3, Name: "UNKNOWN_TOPIC_OR_PARTITION", Count: 1}}},
		{api: "Fetch", requests: 1},
	}
	for _, test := range tests {
		r := requests[test.api]
		if r.Requests != test.requests || r.Latency.Count != uint64(test.requests) {
			t.Errorf("%s: %d requests, %d timed, want %d", test.api, r.Requests, r.Latency.Count, test.requests)
		}
		if len(r.Errors) != len(test.wantErrors) || (len(r.Errors) > 0 && r.Errors[0] != test.wantErrors[0]) {
			t.Errorf("%s: errors %+v, want %+v", test.api, r.Errors, test.wantErrors)
		}
	}
	if m.RequestQueueTime.Count != 5 {
		t.Errorf("queue time observed %d times, want 5 (one per request)", m.RequestQueueTime.Count)
	}
	var orders []PartitionMetrics
	for _, p := range m.Partitions {
		if p.Topic == "orders" {
			orders = append(orders, p)
		}
	}
	wantOrders := []PartitionMetrics{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 1, LogBytes: 2 * batchBytes}}
	if len(orders) != 2 || orders[0] != wantOrders[0] || orders[1] != wantOrders[1] {
		t.Errorf("partitions %+v, want %+v", m.Partitions, wantOrders)
	}
	if m.ActiveControllerCount != 1 || m.OfflinePartitions != 0 || m.UnderReplicatedPartitions != 0 {
		t.Errorf("controller %d, offline %d, under-replicated %d, want 1, 0, 0",
			m.ActiveControllerCount, m.OfflinePartitions, m.UnderReplicatedPartitions)
	}
}

// TestMetricsRequestQueueTime queues a second request behind a parked fetch
// on one connection and checks that its queue time (the fetch's wait) lands
// in the histogram, measured on the simulator's virtual clock.
func TestMetricsRequestQueueTime(t *testing.T) {
	b := newSimBroker(t, 1, nil)
	createTopic(t, b, "waits", 1)
	fetch := newFetchRequest("waits", 0)
	fetch.MaxWaitMillis, fetch.MinBytes = 400, 1
	b.conn.OnFrame(b.wire, encodeRequest(fetch, 1))
	b.conn.OnFrame(b.wire, encodeRequest(newAPIVersionsRequest(), 2))
	b.sched.RunFor(time.Second)
	q := b.node.Metrics().RequestQueueTime
	// CreateTopics and the fetch started at once; ApiVersions waited 400 ms.
	if q.Count != 3 {
		t.Fatalf("queue time observed %d times, want 3", q.Count)
	}
	if q.SumSeconds < 0.4 || q.SumSeconds > 0.5 {
		t.Errorf("queue time sum %.3f s, want the fetch's 0.4 s wait", q.SumSeconds)
	}
	below := q.CumulativeCounts[indexOfBound(t, 0.25)]
	if below != 2 {
		t.Errorf("%d requests queued at most 250 ms, want 2", below)
	}
}

// TestHistogramBuckets checks the cumulative buckets, the sum, and that a
// negative duration (a clock step back) counts as zero.
func TestHistogramBuckets(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{-time.Second, 50 * time.Microsecond, 3 * time.Millisecond, time.Minute} {
		h.observe(d)
	}
	s := h.snapshot()
	tests := []struct {
		bound float64
		want  uint64
	}{{0.0001, 2}, {0.0025, 2}, {0.005, 3}, {30, 3}}
	for _, test := range tests {
		if got := s.CumulativeCounts[indexOfBound(t, test.bound)]; got != test.want {
			t.Errorf("bucket le=%g: %d, want %d", test.bound, got, test.want)
		}
	}
	if s.Count != 4 || s.SumSeconds < 60.003 || s.SumSeconds > 60.0031 {
		t.Errorf("count %d sum %f, want 4 and 60.00305", s.Count, s.SumSeconds)
	}
	if empty := (&histogram{}).snapshot(); empty.Count != 0 || len(empty.CumulativeCounts) != len(latencyBoundsSeconds) {
		t.Errorf("empty snapshot %+v", empty)
	}
}

func indexOfBound(t *testing.T, bound float64) int {
	t.Helper()
	for i, b := range latencyBoundsSeconds {
		if b == bound {
			return i
		}
	}
	t.Fatalf("no bucket bound %g", bound)
	return -1
}

// TestErrorCodesFoundAtAnyDepth checks the reflective error count used for
// the APIs other than Produce and Fetch.
func TestErrorCodesFoundAtAnyDepth(t *testing.T) {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	for _, code := range []int16{0, 3, 3, 41} {
		topic := kmsg.NewDeleteTopicsResponseTopic()
		topic.ErrorCode = code
		resp.Topics = append(resp.Topics, topic)
	}
	var m nodeMetrics
	m.requestAnswered(20, resp, time.Millisecond)
	got := m.requestSnapshot()[0].Errors
	want := []ErrorCount{{Code: 3, Name: "UNKNOWN_TOPIC_OR_PARTITION", Count: 2}, {Code: 41, Name: "NOT_CONTROLLER", Count: 1}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("errors %+v, want %+v", got, want)
	}
}

// TestSyncLatencyUsesTheNodeClock checks the functions the group commit
// calls around a sync: the latency is the node's (virtual) time between
// them, and the sync is counted.
func TestSyncLatencyUsesTheNodeClock(t *testing.T) {
	b := newSimBroker(t, 1, nil)
	before := b.node.Metrics()
	started := b.node.syncStarted()
	b.sched.RunFor(3 * time.Millisecond)
	b.node.syncFinished(started)
	after := b.node.Metrics()
	if after.SyncsStarted != before.SyncsStarted+1 {
		t.Errorf("syncs %d, want %d", after.SyncsStarted, before.SyncsStarted+1)
	}
	added := after.SyncLatency.SumSeconds - before.SyncLatency.SumSeconds
	if after.SyncLatency.Count != before.SyncLatency.Count+1 || added < 0.003 || added > 0.0031 {
		t.Errorf("latency count %d sum +%f, want one more and +0.003", after.SyncLatency.Count, added)
	}
}
