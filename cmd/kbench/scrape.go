package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The broker's own view of a latency run: kbench scrapes its Prometheus
// endpoint (docs/observability.md) before and after the run and reads the
// difference of two histograms, the group-commit fsync latency and the
// Produce request latency (from the request's arrival to its response,
// which for acks=all includes the wait for that fsync). kfake has no such
// endpoint.

// scrapeTimeout bounds one scrape.
const scrapeTimeout = 5 * time.Second

// Series kbench reads.
const (
	seriesSyncLatency    = "kafkasim_log_sync_latency_seconds"
	seriesRequestLatency = "kafkasim_request_latency_seconds"
	seriesQueueTime      = "kafkasim_request_queue_time_seconds"
	produceLabel         = `api="Produce"`
)

// histogram is a Prometheus histogram: cumulative bucket counts by upper
// bound (seconds, ascending, the last +Inf), their sum and count.
type histogram struct {
	bounds []float64
	counts []float64
	sum    float64
	count  float64
}

// minus returns h less an earlier scrape of the same histogram.
func (h histogram) minus(earlier histogram) histogram {
	out := histogram{bounds: h.bounds, counts: slices.Clone(h.counts), sum: h.sum - earlier.sum, count: h.count - earlier.count}
	if len(earlier.counts) == len(h.counts) {
		for i := range out.counts {
			out.counts[i] -= earlier.counts[i]
		}
	}
	return out
}

// plus returns the sum of h and another scrape difference of the same
// histogram.
func (h histogram) plus(other histogram) histogram {
	if len(h.counts) == 0 {
		return other
	}
	out := histogram{bounds: h.bounds, counts: slices.Clone(h.counts), sum: h.sum + other.sum, count: h.count + other.count}
	if len(other.counts) == len(h.counts) {
		for i := range out.counts {
			out.counts[i] += other.counts[i]
		}
	}
	return out
}

// quantileBound is the upper bound of the bucket holding quantile q: the
// true quantile is at most this (and above the bucket below).
func (h histogram) quantileBound(q float64) time.Duration {
	if h.count <= 0 {
		return 0
	}
	rank := q * h.count
	for i, cumulative := range h.counts {
		if cumulative >= rank {
			if math.IsInf(h.bounds[i], 1) {
				return time.Duration(math.MaxInt64)
			}
			return time.Duration(h.bounds[i] * float64(time.Second))
		}
	}
	return 0
}

// mean is the histogram's mean.
func (h histogram) mean() time.Duration {
	if h.count <= 0 {
		return 0
	}
	return time.Duration(h.sum / h.count * float64(time.Second))
}

// brokerMetrics is what one scrape read.
type brokerMetrics struct {
	syncLatency, produceLatency histogram
	// queueTime is how long requests waited behind earlier requests of
	// their connection (every API).
	queueTime histogram
}

// minus returns m less an earlier scrape.
func (m brokerMetrics) minus(earlier brokerMetrics) brokerMetrics {
	return brokerMetrics{syncLatency: m.syncLatency.minus(earlier.syncLatency),
		produceLatency: m.produceLatency.minus(earlier.produceLatency), queueTime: m.queueTime.minus(earlier.queueTime)}
}

// brokerView is the broker's side of latency runs: the sum of the
// differences of their scrapes.
type brokerView struct {
	known bool
	brokerMetrics
}

// add adds the scrape difference of one more run.
func (v *brokerView) add(m brokerMetrics) {
	v.known = true
	v.syncLatency = v.syncLatency.plus(m.syncLatency)
	v.produceLatency = v.produceLatency.plus(m.produceLatency)
	v.queueTime = v.queueTime.plus(m.queueTime)
}

// scrape reads the broker's metrics at addr (host:port of /metrics).
func scrape(addr string) (brokerMetrics, error) {
	client := http.Client{Timeout: scrapeTimeout}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return brokerMetrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return brokerMetrics{}, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the two histograms from Prometheus text format.
func parseMetrics(r io.Reader) (brokerMetrics, error) {
	var m brokerMetrics
	scanner := bufio.NewScanner(r)
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, seriesSyncLatency):
			if err := m.syncLatency.add(line[len(seriesSyncLatency):], ""); err != nil {
				return m, err
			}
		case strings.HasPrefix(line, seriesQueueTime):
			if err := m.queueTime.add(line[len(seriesQueueTime):], ""); err != nil {
				return m, err
			}
		case strings.HasPrefix(line, seriesRequestLatency) && strings.Contains(line, produceLabel):
			if err := m.produceLatency.add(line[len(seriesRequestLatency):], produceLabel); err != nil {
				return m, err
			}
		}
	}
	return m, scanner.Err()
}

// add reads one line of the histogram, after the series name: _bucket
// with an le label, _sum or _count, then the value.
func (h *histogram) add(rest, otherLabel string) error {
	suffix, value, ok := strings.Cut(rest, " ")
	if !ok {
		return fmt.Errorf("metrics line without a value: %q", rest)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil {
		return fmt.Errorf("metrics value %q: %w", value, err)
	}
	switch {
	case strings.HasPrefix(suffix, "_sum"):
		h.sum = v
	case strings.HasPrefix(suffix, "_count"):
		h.count = v
	case strings.HasPrefix(suffix, "_bucket{"):
		labels := strings.TrimSuffix(strings.TrimPrefix(suffix, "_bucket{"), "}")
		for label := range strings.SplitSeq(labels, ",") {
			if label == otherLabel {
				continue
			}
			bound, ok := strings.CutPrefix(label, `le="`)
			if !ok {
				continue
			}
			le, err := strconv.ParseFloat(strings.TrimSuffix(bound, `"`), 64)
			if err != nil {
				return fmt.Errorf("bucket bound %q: %w", bound, err)
			}
			h.bounds = append(h.bounds, le)
			h.counts = append(h.counts, v)
		}
	}
	return nil
}

// scrape reads the server's metrics, summed over a cluster's nodes, or
// fails for a server without them.
func (s *server) scrape() (brokerMetrics, error) {
	if s.metricsAddr == "" {
		return brokerMetrics{}, fmt.Errorf("%s serves no metrics", s.name)
	}
	var total brokerMetrics
	for _, n := range s.nodes() {
		m, err := scrape(n.metricsAddr)
		if err != nil {
			return brokerMetrics{}, err
		}
		total = brokerMetrics{syncLatency: total.syncLatency.plus(m.syncLatency),
			produceLatency: total.produceLatency.plus(m.produceLatency), queueTime: total.queueTime.plus(m.queueTime)}
	}
	return total, nil
}
