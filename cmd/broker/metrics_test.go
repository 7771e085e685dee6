package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var metricsLine = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// metricsAddr returns the metrics listener's address from the broker's
// log.
func metricsAddr(t *testing.T, p *brokerProcess) string {
	t.Helper()
	m := metricsLine.FindStringSubmatch(p.log.String())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", p.log.String())
	}
	return m[1]
}

// httpGet fetches url and returns the status and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: hangGuard}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics into a map from series ("name{labels}", as the
// text format writes it) to value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	status, body := httpGet(t, "http://"+addr+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: status %d:\n%s", status, body)
	}
	series := map[string]float64{}
	scanner := bufio.NewScanner(strings.NewReader(body))
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		value, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		series[line[:i]] = value
	}
	return series
}

// TestMetricsEndpoint runs the real binary with its metrics listener on a
// free port, produces and consumes through it, and scrapes /metrics:
// messages and bytes in and out of the topic, requests per API, latency
// histograms, log size, connections and the single node's cluster gauges.
// /health answers 200 while the broker serves.
func TestMetricsEndpoint(t *testing.T) {
	p := startBroker(t, t.TempDir(), "metrics.listener=127.0.0.1:0")
	addr := metricsAddr(t, p)
	if status, body := httpGet(t, "http://"+addr+"/health"); status != http.StatusOK || body != "ok\n" {
		t.Fatalf("/health: %d %q, want 200 ok", status, body)
	}
	const records = 25
	createTopic(t, p.addr, "metered", 1)
	produceValues(t, p.addr, "metered", "m", records)
	if got := len(readAll(t, p.addr, "metered")); got != records {
		t.Fatalf("consumed %d records, want %d", got, records)
	}

	series := scrape(t, addr)
	exact := map[string]float64{
		`kafkasim_topic_messages_in_total{topic="metered"}`:  records,
		`kafkasim_topic_messages_out_total{topic="metered"}`: records,
		`kafkasim_active_controller_count`:                   1,
		`kafkasim_offline_partitions`:                        0,
		`kafkasim_under_replicated_partitions`:               0,
		`kafkasim_node_serving`:                              1,
		`kafkasim_requests_total{api="CreateTopics"}`:        1,
	}
	for name, want := range exact {
		if got, ok := series[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	bytesIn := series[`kafkasim_topic_bytes_in_total{topic="metered"}`]
	if bytesIn <= 0 || series[`kafkasim_topic_bytes_out_total{topic="metered"}`] != bytesIn {
		t.Errorf("bytes in %v, out %v: want equal and positive (every batch read once)",
			bytesIn, series[`kafkasim_topic_bytes_out_total{topic="metered"}`])
	}
	if logBytes := series[`kafkasim_partition_log_size_bytes{partition="0",topic="metered"}`]; logBytes != bytesIn {
		t.Errorf("log size %v, want the %v bytes produced", logBytes, bytesIn)
	}
	positive := []string{
		`kafkasim_requests_total{api="Produce"}`,
		`kafkasim_requests_total{api="Fetch"}`,
		`kafkasim_request_latency_seconds_count{api="Produce"}`,
		`kafkasim_request_latency_seconds_bucket{api="Produce",le="+Inf"}`,
		`kafkasim_request_queue_time_seconds_count`,
		`kafkasim_connections_accepted_total`,
		`kafkasim_connections_open`,
		`go_goroutines`,
	}
	for _, name := range positive {
		if series[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, series[name])
		}
	}
	if series[`kafkasim_request_latency_seconds_count{api="Produce"}`] != series[`kafkasim_requests_total{api="Produce"}`] {
		t.Errorf("%v Produce requests but %v timed", series[`kafkasim_requests_total{api="Produce"}`],
			series[`kafkasim_request_latency_seconds_count{api="Produce"}`])
	}
}

// TestMetricsListenerInUse checks that a configured metrics address that is
// taken stops the broker with one clear line, and that an empty one
// disables the listener.
func TestMetricsListenerInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dataDir := t.TempDir()
	status, stderr := runBroker(t, "--config", writeConfig(t, dataDir), "--metrics-listener", taken.Addr().String())
	want := fmt.Sprintf("broker: metrics.listener %s: listen tcp %s: bind: address already in use", taken.Addr(), taken.Addr())
	if status != exitFailure || !strings.Contains(stderr, want) || !strings.Contains(stderr, "--metrics-listener") {
		t.Errorf("status %d, stderr:\n%s\nwant %d and a line starting %q", status, stderr, exitFailure, want)
	}
	p := startBroker(t, t.TempDir(), "metrics.listener=")
	if metricsLine.MatchString(p.log.String()) {
		t.Errorf("metrics.listener= still serves metrics:\n%s", p.log.String())
	}
}

// TestHealthReportsWhyNotServing checks /health's answers through the
// handler: 503 with the reason while recovering and after a halt (the 200
// of a serving broker is checked by TestMetricsEndpoint).
func TestHealthReportsWhyNotServing(t *testing.T) {
	m := &metricsServer{notServing: "starting: recovering the data directory", log: slog.New(slog.DiscardHandler)}
	check := func(wantStatus int, wantBody string) {
		t.Helper()
		w := httptest.NewRecorder()
		m.health(w, httptest.NewRequest("GET", "/health", nil))
		if w.Code != wantStatus || w.Body.String() != wantBody {
			t.Errorf("/health: %d %q, want %d %q", w.Code, w.Body.String(), wantStatus, wantBody)
		}
	}
	check(http.StatusServiceUnavailable, "starting: recovering the data directory\n")
	if _, err := m.snapshot(); err == nil {
		t.Error("a snapshot before the node serves succeeded")
	}
	m.stopped("halted: sync failed")
	check(http.StatusServiceUnavailable, "halted: sync failed\n")
}
