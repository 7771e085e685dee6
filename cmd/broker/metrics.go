package main

// The metrics listener: Prometheus' /metrics and a /health probe on an
// address of their own (metrics.listener), served by goroutines at the
// production edge. The node stays single-threaded: a scrape posts a
// snapshot request to the event loop and waits for it, with a timeout, and
// converts the snapshot (broker.Metrics) into Prometheus metrics.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kafkasim/kafkasim/broker"
	knet "github.com/kafkasim/kafkasim/net"
)

// snapshotWaitMax bounds how long a scrape waits for the event loop: a
// stalled loop makes the scrape fail (and /health report it) instead of
// piling up waiting scrapes.
const snapshotWaitMax = 5 * time.Second

// metricsServer serves /metrics and /health for one node.
type metricsServer struct {
	listener net.Listener
	server   *http.Server
	loop     *knet.Loop
	log      *slog.Logger

	mu sync.Mutex
	// node is set while the node serves; nil before (recovery) and after
	// (shutdown, halt). notServing says why it is nil.
	node       *broker.Node
	notServing string
}

// listenMetrics binds the metrics listener. It runs before the data
// directory is read, like the client listeners, so a port in use stops the
// broker early. An address that is only the default, and is in use (say,
// by a second broker on the same machine), is skipped with a warning rather
// than stopping the broker; a configured one is an error.
func listenMetrics(addr string, isDefault bool, loop *knet.Loop, log *slog.Logger) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	listener, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) && isDefault {
		log.Warn("metrics listener address in use; serving no metrics (set metrics.listener= or --metrics-listener)",
			slog.String("metrics.listener", addr))
		return nil, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("metrics.listener %s: %w (change metrics.listener= in the config or --metrics-listener, or set it empty to disable)", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("metrics.listener %s: %w", addr, err)
	}
	m := &metricsServer{listener: listener, loop: loop, log: log, notServing: "starting: recovering the data directory"}
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		&nodeCollector{server: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorLog: slogErrorLog{log}}))
	mux.HandleFunc("/health", m.health)
	m.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", slog.Any("err", err))
		}
	}()
	log.Info("metrics listening", slog.String("addr", listener.Addr().String()))
	return m, nil
}

// serving records that node serves clients now.
func (m *metricsServer) serving(node *broker.Node) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.node, m.notServing = node, ""
}

// stopped records that the node no longer serves, and why.
func (m *metricsServer) stopped(why string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.node, m.notServing = nil, why
}

// close stops serving /metrics and /health.
func (m *metricsServer) close() {
	if m != nil {
		m.server.Close()
	}
}

// state returns the serving node, or nil and why there is none.
func (m *metricsServer) state() (*broker.Node, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node, m.notServing
}

// health answers 200 while the node serves, and 503 with the reason before
// (recovery), after (shutdown) and when it halted.
func (m *metricsServer) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if node, why := m.state(); node == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, why)
		return
	}
	fmt.Fprintln(w, "ok")
}

// snapshot asks the event loop for the node's metrics and waits at most
// snapshotWaitMax.
func (m *metricsServer) snapshot() (broker.Metrics, error) {
	node, why := m.state()
	if node == nil {
		return broker.Metrics{}, errors.New(why)
	}
	result := make(chan broker.Metrics, 1) // buffered: a late answer never blocks the loop
	if !m.loop.Post(func() { result <- node.Metrics() }) {
		return broker.Metrics{}, errors.New("the event loop has stopped")
	}
	timeout := time.NewTimer(snapshotWaitMax)
	defer timeout.Stop()
	select {
	case s := <-result:
		return s, nil
	case <-timeout.C:
		return broker.Metrics{}, fmt.Errorf("the event loop did not answer within %v", snapshotWaitMax)
	}
}

// slogErrorLog passes promhttp's error messages to the broker's log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }

// nodeCollector converts a node's snapshot into Prometheus metrics at
// scrape time. It is unchecked (Describe sends nothing) because its
// label values (topics, APIs, error codes) are known only from a snapshot.
type nodeCollector struct{ server *metricsServer }

func (c *nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.server.snapshot()
	serving := 1.0
	if err != nil {
		serving = 0
	}
	ch <- gauge(descServing, serving)
	if err != nil {
		return // only the process and Go metrics, and serving 0, while not serving
	}
	collectTopics(ch, s.Topics)
	collectRequests(ch, s)
	for _, p := range s.Partitions {
		ch <- gauge(descPartitionLogBytes, float64(p.LogBytes), p.Topic, strconv.Itoa(int(p.Partition)))
	}
	ch <- gauge(descProducePurgatory, float64(s.ProducePurgatory))
	ch <- gauge(descUnderReplicated, float64(s.UnderReplicatedPartitions))
	ch <- gauge(descOffline, float64(s.OfflinePartitions))
	ch <- gauge(descActiveController, float64(s.ActiveControllerCount))
	ch <- counter(descSyncs, float64(s.SyncsStarted))
	ch <- histogram(descSyncLatency, s.SyncLatency)
	collectConnections(ch, s.Connections)
}

func collectTopics(ch chan<- prometheus.Metric, topics []broker.TopicMetrics) {
	for _, t := range topics {
		ch <- counter(descMessagesIn, float64(t.MessagesIn), t.Topic)
		ch <- counter(descBytesIn, float64(t.BytesIn), t.Topic)
		ch <- counter(descMessagesOut, float64(t.MessagesOut), t.Topic)
		ch <- counter(descBytesOut, float64(t.BytesOut), t.Topic)
	}
}

func collectRequests(ch chan<- prometheus.Metric, s broker.Metrics) {
	for _, r := range s.Requests {
		ch <- counter(descRequests, float64(r.Requests), r.Name)
		for _, e := range r.Errors {
			ch <- counter(descRequestErrors, float64(e.Count), r.Name, e.Name)
		}
		ch <- histogram(descRequestLatency, r.Latency, r.Name)
	}
	ch <- histogram(descRequestQueueTime, s.RequestQueueTime)
}

func collectConnections(ch chan<- prometheus.Metric, c broker.ConnectionMetrics) {
	ch <- gauge(descConnectionsOpen, float64(c.Open))
	ch <- counter(descConnectionsAccepted, float64(c.Accepted))
	ch <- counter(descConnectionsClosed, float64(c.Closed))
	ch <- counter(descConnectionsRefused, float64(c.RefusedMaxConnections), "max.connections")
	ch <- counter(descConnectionsRefused, float64(c.RefusedPerAddress), "max.connections.per.ip")
	ch <- counter(descConnectionsClosedIdle, float64(c.ClosedIdle))
	ch <- counter(descConnectionsClosedMalformed, float64(c.ClosedMalformed))
}

func gauge(desc *prometheus.Desc, value float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value, labels...)
}

func counter(desc *prometheus.Desc, value float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, value, labels...)
}

func histogram(desc *prometheus.Desc, h broker.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.BoundsSeconds))
	for i, bound := range h.BoundsSeconds {
		buckets[bound] = h.CumulativeCounts[i]
	}
	return prometheus.MustNewConstHistogram(desc, h.Count, h.SumSeconds, buckets, labels...)
}

// The metrics, each documented in docs/observability.md.
var (
	descServing = prometheus.NewDesc("kafkasim_node_serving",
		"1 while the node serves clients, 0 during recovery, shutdown or after a halt.", nil, nil)
	descMessagesIn = prometheus.NewDesc("kafkasim_topic_messages_in_total",
		"Records appended by Produce, per topic.", []string{"topic"}, nil)
	descBytesIn = prometheus.NewDesc("kafkasim_topic_bytes_in_total",
		"Record-batch bytes appended by Produce, per topic.", []string{"topic"}, nil)
	descMessagesOut = prometheus.NewDesc("kafkasim_topic_messages_out_total",
		"Records sent in Fetch responses, per topic.", []string{"topic"}, nil)
	descBytesOut = prometheus.NewDesc("kafkasim_topic_bytes_out_total",
		"Record-batch bytes sent in Fetch responses, per topic.", []string{"topic"}, nil)
	descRequests = prometheus.NewDesc("kafkasim_requests_total",
		"Requests whose handler started, per API.", []string{"api"}, nil)
	descRequestErrors = prometheus.NewDesc("kafkasim_request_errors_total",
		"Error codes other than NONE in responses, per API and error (one per failed partition).", []string{"api", "error"}, nil)
	descRequestLatency = prometheus.NewDesc("kafkasim_request_latency_seconds",
		"Time from a request frame's arrival to its response, per API (Kafka's TotalTimeMs).", []string{"api"}, nil)
	descRequestQueueTime = prometheus.NewDesc("kafkasim_request_queue_time_seconds",
		"Time a request frame waited in its connection's queue before its handler started (Kafka's RequestQueueTimeMs).", nil, nil)
	descPartitionLogBytes = prometheus.NewDesc("kafkasim_partition_log_size_bytes",
		"Size of a partition's log segments.", []string{"topic", "partition"}, nil)
	descProducePurgatory = prometheus.NewDesc("kafkasim_produce_purgatory_size",
		"acks=all Produce requests waiting for durability.", nil, nil)
	descUnderReplicated = prometheus.NewDesc("kafkasim_under_replicated_partitions",
		"Partitions whose in-sync replica set is smaller than their replica set.", nil, nil)
	descOffline = prometheus.NewDesc("kafkasim_offline_partitions",
		"Partitions without a serving leader.", nil, nil)
	descActiveController = prometheus.NewDesc("kafkasim_active_controller_count",
		"1 on the active controller.", nil, nil)
	descSyncs = prometheus.NewDesc("kafkasim_log_syncs_total",
		"Group-commit fsyncs submitted.", nil, nil)
	descSyncLatency = prometheus.NewDesc("kafkasim_log_sync_latency_seconds",
		"Group-commit fsync latency, from submission to completion.", nil, nil)
	descConnectionsOpen = prometheus.NewDesc("kafkasim_connections_open",
		"Client connections open now.", nil, nil)
	descConnectionsAccepted = prometheus.NewDesc("kafkasim_connections_accepted_total",
		"Client connections accepted (not counting refused ones).", nil, nil)
	descConnectionsClosed = prometheus.NewDesc("kafkasim_connections_closed_total",
		"Accepted client connections that closed, for any reason.", nil, nil)
	descConnectionsRefused = prometheus.NewDesc("kafkasim_connections_refused_total",
		"Client connections closed at accept, per limit.", []string{"limit"}, nil)
	descConnectionsClosedIdle = prometheus.NewDesc("kafkasim_connections_closed_idle_total",
		"Client connections closed by connections.max.idle.ms.", nil, nil)
	descConnectionsClosedMalformed = prometheus.NewDesc("kafkasim_connections_closed_malformed_total",
		"Client connections closed for a malformed or oversized frame.", nil, nil)
)
