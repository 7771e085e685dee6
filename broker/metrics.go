package broker

import (
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// nodeMetrics are the node's counters, gauges and histograms. They are plain
// fields, updated on the loop, so the simulator reads them deterministically;
// the production edge (cmd/broker) converts snapshots into Prometheus
// metrics at scrape time. docs/observability.md lists every one.
type nodeMetrics struct {
	// syncsStarted counts group-commit syncs submitted to the IO.
	syncsStarted int64
	// syncLatency times group-commit syncs from submission to completion.
	syncLatency histogram
	// producePurgatory is the number of acks=all produce requests waiting
	// for durability now.
	producePurgatory int64

	// topics counts messages and bytes in and out per topic. Only topics
	// that exist get an entry (a produce to an unknown name fails first), so
	// a client cannot grow it with made-up names.
	topics map[string]*topicCounters
	// requests counts requests, errors and latency per API key. Only keys
	// the broker implements get an entry.
	requests map[int16]*requestCounters
	// requestQueueTime times frames from arrival to the start of their
	// handler (Kafka's RequestQueueTimeMs).
	requestQueueTime histogram

	connections connectionCounters
}

// topicCounters are one topic's traffic counters.
type topicCounters struct {
	messagesIn, bytesIn, messagesOut, bytesOut int64
}

// requestCounters are one API's request counters.
type requestCounters struct {
	requests int64
	// errors counts error codes other than NONE found in responses, by code.
	errors  map[int16]int64
	latency histogram
}

// connectionCounters count what happened to client connections.
type connectionCounters struct {
	accepted, closed                         int64
	refusedMaxConnections, refusedPerAddress int64
	closedIdle, closedMalformed              int64
}

// Metrics is a snapshot of a node's metrics, in a deterministic order
// (sorted by topic, API key, partition), so the simulator can hash or
// compare it.
type Metrics struct {
	// SyncsStarted counts group-commit syncs submitted to the IO.
	SyncsStarted int64
	// SyncLatency times group-commit syncs (fsync latency).
	SyncLatency Histogram
	// ProducePurgatory is the number of acks=all produce requests waiting
	// for durability (Kafka's produce purgatory size).
	ProducePurgatory int64
	// Topics holds traffic per topic, sorted by name.
	Topics []TopicMetrics
	// Requests holds request counts, errors and latency per API, sorted by
	// key; an API that was never called is absent.
	Requests []RequestMetrics
	// RequestQueueTime times frames from arrival to their handler's start.
	RequestQueueTime Histogram
	// Partitions holds each partition's log size, sorted by topic and
	// partition.
	Partitions []PartitionMetrics
	// UnderReplicatedPartitions is the number of partitions whose ISR is
	// smaller than their replica set; a single node has none.
	UnderReplicatedPartitions int64
	// OfflinePartitions is the number of partitions without a serving
	// leader: every partition once the node halted, otherwise none.
	OfflinePartitions int64
	// ActiveControllerCount is 1 on the node that is the active
	// controller; a single node always is.
	ActiveControllerCount int64
	// Connections counts client connections.
	Connections ConnectionMetrics
}

// TopicMetrics is one topic's traffic. In counts records and record-batch
// bytes appended by Produce; Out counts those sent in Fetch responses.
type TopicMetrics struct {
	Topic                                      string
	MessagesIn, BytesIn, MessagesOut, BytesOut int64
}

// RequestMetrics is one API's request statistics.
type RequestMetrics struct {
	APIKey int16
	// Name is Kafka's name for the API ("Produce", "Fetch").
	Name string
	// Requests counts requests whose handler started.
	Requests int64
	// Errors counts the error codes other than NONE found in responses,
	// sorted by code. A response with several failed partitions counts each.
	Errors []ErrorCount
	// Latency times answered requests from the frame's arrival to the
	// response (Kafka's TotalTimeMs).
	Latency Histogram
}

// ErrorCount is how often one Kafka error code was answered.
type ErrorCount struct {
	Code int16
	// Name is Kafka's name for the code ("NOT_LEADER_OR_FOLLOWER").
	Name  string
	Count int64
}

// PartitionMetrics is one partition's log size.
type PartitionMetrics struct {
	Topic     string
	Partition int32
	// LogBytes is the size of the partition's segments on disk.
	LogBytes int64
}

// ConnectionMetrics counts client connections.
type ConnectionMetrics struct {
	// Open is the number of connections open now.
	Open int64
	// Accepted and Closed count connections over the node's life; a
	// refused connection counts in neither.
	Accepted, Closed int64
	// RefusedMaxConnections and RefusedPerAddress count connections closed
	// at accept by max.connections and max.connections.per.ip.
	RefusedMaxConnections, RefusedPerAddress int64
	// ClosedIdle counts connections closed by connections.max.idle.ms.
	ClosedIdle int64
	// ClosedMalformed counts connections closed for a malformed or
	// oversized frame.
	ClosedMalformed int64
}

// Metrics returns a snapshot of the node's metrics. It runs on the loop.
func (n *Node) Metrics() Metrics {
	m := &n.metrics
	s := Metrics{
		SyncsStarted:          m.syncsStarted,
		SyncLatency:           m.syncLatency.snapshot(),
		ProducePurgatory:      m.producePurgatory,
		RequestQueueTime:      m.requestQueueTime.snapshot(),
		ActiveControllerCount: 1,
		Connections: ConnectionMetrics{
			Open:                  int64(len(n.conns)),
			Accepted:              m.connections.accepted,
			Closed:                m.connections.closed,
			RefusedMaxConnections: m.connections.refusedMaxConnections,
			RefusedPerAddress:     m.connections.refusedPerAddress,
			ClosedIdle:            m.connections.closedIdle,
			ClosedMalformed:       m.connections.closedMalformed,
		},
	}
	s.Topics = m.topicSnapshot()
	s.Requests = m.requestSnapshot()
	s.Partitions, s.OfflinePartitions = n.partitionSnapshot()
	if n.halted != nil {
		s.OfflinePartitions = int64(len(s.Partitions))
	}
	return s
}

func (m *nodeMetrics) topicSnapshot() []TopicMetrics {
	topics := make([]TopicMetrics, 0, len(m.topics))
	for name, t := range m.topics { // order-independent: sorted below
		topics = append(topics, TopicMetrics{Topic: name,
			MessagesIn: t.messagesIn, BytesIn: t.bytesIn, MessagesOut: t.messagesOut, BytesOut: t.bytesOut})
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i].Topic < topics[j].Topic })
	return topics
}

func (m *nodeMetrics) requestSnapshot() []RequestMetrics {
	requests := make([]RequestMetrics, 0, len(m.requests))
	for key, r := range m.requests { // order-independent: sorted below
		errors := make([]ErrorCount, 0, len(r.errors))
		for code, count := range r.errors { // order-independent: sorted below
			errors = append(errors, ErrorCount{Code: code, Name: errorName(code), Count: count})
		}
		sort.Slice(errors, func(i, j int) bool { return errors[i].Code < errors[j].Code })
		requests = append(requests, RequestMetrics{APIKey: key, Name: kmsg.NameForKey(key),
			Requests: r.requests, Errors: errors, Latency: r.latency.snapshot()})
	}
	sort.Slice(requests, func(i, j int) bool { return requests[i].APIKey < requests[j].APIKey })
	return requests
}

// partitionSnapshot lists every partition's log size, and counts the
// partitions that corruption took offline (offline.go).
func (n *Node) partitionSnapshot() (partitions []PartitionMetrics, offline int64) {
	if n.catalog == nil {
		return nil, 0
	}
	for _, t := range n.catalog.topics { // order-independent: sorted below
		for _, p := range t.partitions {
			if p == nil || p.closed {
				continue
			}
			if p.offline != nil {
				offline++
			}
			if p.log == nil {
				continue // opened offline: no log to measure
			}
			partitions = append(partitions, PartitionMetrics{Topic: t.name, Partition: p.index, LogBytes: p.log.Size()})
		}
	}
	sort.Slice(partitions, func(i, j int) bool {
		if partitions[i].Topic != partitions[j].Topic {
			return partitions[i].Topic < partitions[j].Topic
		}
		return partitions[i].Partition < partitions[j].Partition
	})
	return partitions, offline
}

// errorName is Kafka's name for an error code, or "UNKNOWN_<code>".
func errorName(code int16) string {
	if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && ke.Code == code {
		return ke.Message
	}
	return fmt.Sprintf("UNKNOWN_%d", code)
}

// syncStarted counts a group-commit sync and returns the time it started,
// for syncFinished. durability.go's scheduleSync calls it where it submits
// the sync.
func (n *Node) syncStarted() time.Time {
	n.metrics.syncsStarted++
	return n.now()
}

// syncFinished records the latency of a sync that started at started (from
// syncStarted). It reads the node's clock, which is virtual in the
// simulator, so simulated fsync latency shows here too.
func (n *Node) syncFinished(started time.Time) {
	n.metrics.syncLatency.observe(n.now().Sub(started))
}
