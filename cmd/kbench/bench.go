package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// latencyDrainTimeout bounds how long the latency test waits, after its
// producer stopped, for the last records to arrive.
const latencyDrainTimeout = 30 * time.Second

// settleBeforeConsume separates a case's produce from its consume.
const settleBeforeConsume = 300 * time.Millisecond

// caseResult holds the runs of one throughput case on one target.
type caseResult struct {
	valueBytes       int
	partitions       int32
	produce, consume []throughput
	// consumeRaw is the same data read by consumeRaw's minimal client;
	// its bytes are record batch bytes, not value bytes.
	consumeRaw []throughput
	// produceRaw is produceRaw's minimal producer, into a topic of its
	// own; its bytes are record values.
	produceRaw  []throughput
	latency     latencies // at half of the median produce rate
	latencyRate float64
	// consumeCPU and consumeGC add up the server's CPU, and the part its
	// GC cycles reported, over the consume runs.
	consumeCPU, consumeGC time.Duration
}

// targetResult is everything measured on one server.
type targetResult struct {
	name  string
	cases []*caseResult
}

func bench(ctx context.Context, opts options, stdout, stderr io.Writer) error {
	loadBefore := loadAverage()
	var references []throughput
	var results []*targetResult
	starts := []func(context.Context) (*server, error){
		func(ctx context.Context) (*server, error) {
			return startBroker(ctx, opts.brokerPath, opts.brokerProperties)
		},
	}
	if opts.measureFake {
		starts = append(starts, startKfake)
	}
	for _, start := range starts {
		s, err := start(ctx)
		if err != nil {
			return err
		}
		result, err := benchTarget(ctx, s, opts, &references, stderr)
		s.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		results = append(results, result)
	}
	report(stdout, opts, results, references, loadBefore, loadAverage())
	return nil
}

// benchTarget runs every case on s. A loopback measurement precedes each
// round, so the reference is spread over the same period as the cases.
func benchTarget(ctx context.Context, s *server, opts options, references *[]throughput, stderr io.Writer) (*targetResult, error) {
	result := &targetResult{name: s.name}
	for _, valueBytes := range opts.sizes {
		for _, partitions := range opts.partitions {
			result.cases = append(result.cases, &caseResult{valueBytes: valueBytes, partitions: partitions})
		}
	}
	for run := range opts.count {
		reference, err := loopback()
		if err != nil {
			return nil, fmt.Errorf("loopback: %w", err)
		}
		*references = append(*references, reference)
		for i, c := range result.cases {
			topic := fmt.Sprintf("kbench-%d-%d-%d-%d", c.valueBytes, c.partitions, run, i)
			if err := benchCase(ctx, s, opts, topic, c); err != nil {
				return nil, err
			}
			fmt.Fprintf(stderr, "kbench: %s %d B x %d partitions run %d: produce %.0f MB/s, consume %.0f MB/s\n", s.name,
				c.valueBytes, c.partitions, run+1, c.produce[run].mbPerSecond(), c.consume[run].mbPerSecond())
		}
	}
	for i, c := range result.cases {
		c.latencyRate = median(c.produce, throughput.recordsPerSecond) / 2
		topic := fmt.Sprintf("kbench-latency-%d-%d-%d", c.valueBytes, c.partitions, i)
		if err := createTopic(ctx, s.addr, topic, c.partitions); err != nil {
			return nil, err
		}
		latencyCtx, cancel := context.WithTimeout(ctx, opts.latencyFor+latencyDrainTimeout)
		l, err := measureLatency(latencyCtx, s.addr, topic, c.valueBytes, c.latencyRate, opts.latencyFor, opts.fetch)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("latency %d B x %d: %w", c.valueBytes, c.partitions, err)
		}
		c.latency = l
		if err := deleteTopic(ctx, s.addr, topic); err != nil {
			return nil, err
		}
	}
	return result, nil
}

// benchCase produces opts.records to a fresh topic, then consumes them,
// counting the server's CPU and GC during the consume.
func benchCase(ctx context.Context, s *server, opts options, topic string, c *caseResult) error {
	if err := createTopic(ctx, s.addr, topic, c.partitions); err != nil {
		return err
	}
	produced, err := produceAll(ctx, s.addr, topic, opts.records, c.valueBytes)
	if err != nil {
		return err
	}
	// GC cycles report when they end: a pause lets those the produce
	// started end before the consume is counted.
	time.Sleep(settleBeforeConsume)
	cpuBefore, err := s.cpu()
	if err != nil {
		return err
	}
	gcBefore := s.gcCPUus.Load()
	profile := ""
	if opts.profileDir != "" {
		profile = filepath.Join(opts.profileDir, fmt.Sprintf("%s-%d-%d-%d.pprof", s.name, c.valueBytes, c.partitions, len(c.consume)))
	}
	consumed, err := consumeInChild(ctx, s.addr, topic, opts.records, opts.fetch, profile)
	if err != nil {
		return err
	}
	cpuAfter, err := s.cpu()
	if err != nil {
		return err
	}
	c.consumeCPU += cpuAfter - cpuBefore
	c.consumeGC += time.Duration(s.gcCPUus.Load()-gcBefore) * time.Microsecond
	raw, err := consumeRaw(s.addr, topic, c.partitions, opts.records, opts.fetch)
	if err != nil {
		return fmt.Errorf("raw consume: %w", err)
	}
	c.produce = append(c.produce, produced)
	c.consume = append(c.consume, consumed)
	c.consumeRaw = append(c.consumeRaw, raw)
	if err := deleteTopic(ctx, s.addr, topic); err != nil {
		return err
	}
	rawTopic := topic + "-raw"
	if err := createTopic(ctx, s.addr, rawTopic, c.partitions); err != nil {
		return err
	}
	producedRaw, err := produceRaw(s.addr, rawTopic, c.partitions, opts.records, c.valueBytes)
	if err != nil {
		return fmt.Errorf("raw produce: %w", err)
	}
	c.produceRaw = append(c.produceRaw, producedRaw)
	return deleteTopic(ctx, s.addr, rawTopic)
}

// median returns the median of metric over runs (the lower middle for an
// even count).
func median(runs []throughput, metric func(throughput) float64) float64 {
	values := make([]float64, len(runs))
	for i, r := range runs {
		values[i] = metric(r)
	}
	slices.Sort(values)
	return values[(len(values)-1)/2]
}

// loadAverage is the one-minute load average, or "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return "?"
	}
	return fields[0]
}

// minimalTable prints the medians of one minimal client's runs per case.
func minimalTable(w io.Writer, results []*targetResult, reference float64, verb, title string, runs func(*caseResult) []throughput) {
	fmt.Fprintln(w, "\n"+title)
	fmt.Fprintf(w, "\n| server | record | partitions | %s MB/s | /loopback | %s records/s |\n", verb, verb)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			raw := median(runs(c), throughput.mbPerSecond)
			fmt.Fprintf(w, "| %s | %d B | %d | %.0f | %.2f | %s |\n", t.name, c.valueBytes, c.partitions,
				raw, raw/reference, humanRate(median(runs(c), throughput.recordsPerSecond)))
		}
	}
}

// report prints the run as Markdown tables, every figure with its ratio
// to the loopback stream's median.
func report(w io.Writer, opts options, results []*targetResult, references []throughput, loadBefore, loadAfter string) {
	reference := median(references, throughput.mbPerSecond)
	fmt.Fprintf(w, "kbench %s: %d records per case, median of %d runs, GOMAXPROCS %d, load average %s before and %s after\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), opts.records, opts.count, runtime.GOMAXPROCS(0), loadBefore, loadAfter)
	fmt.Fprintf(w, "Consumers fetch up to %d MiB per request and %d KiB per partition.\n\n",
		opts.fetch.bytesMax>>20, opts.fetch.partitionBytesMax>>10)
	fmt.Fprintf(w, "One loopback TCP stream (the reference): %.0f MB/s (median of %d)\n\n", reference, len(references))
	fmt.Fprintln(w, "| server | record | partitions | produce MB/s | /loopback | produce records/s | consume MB/s | /loopback | consume records/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			produce, consume := median(c.produce, throughput.mbPerSecond), median(c.consume, throughput.mbPerSecond)
			fmt.Fprintf(w, "| %s | %d B | %d | %.0f | %.2f | %s | %.0f | %.2f | %s |\n", t.name, c.valueBytes, c.partitions,
				produce, produce/reference, humanRate(median(c.produce, throughput.recordsPerSecond)),
				consume, consume/reference, humanRate(median(c.consume, throughput.recordsPerSecond)))
		}
	}
	minimalTable(w, results, reference, "produce",
		"Produce with a minimal client (1 MiB batches built once, acks=all, 5 requests in flight; MB/s of record values):",
		func(c *caseResult) []throughput { return c.produceRaw })
	minimalTable(w, results, reference, "consume",
		"Consume with a minimal client (batch headers only; MB/s of record batches):",
		func(c *caseResult) []throughput { return c.consumeRaw })
	fmt.Fprintln(w, "\nEnd-to-end latency (producer's send to consumer's poll) at half of the median produce rate:")
	fmt.Fprintln(w, "\n| server | record | partitions | records/s | p50 ms | p99 ms | p99.9 ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			fmt.Fprintf(w, "| %s | %d B | %d | %s | %.2f | %.2f | %.2f |\n", t.name, c.valueBytes, c.partitions, humanRate(c.latencyRate),
				ms(c.latency.percentile(0.50)), ms(c.latency.percentile(0.99)), ms(c.latency.percentile(0.999)))
		}
	}
	fmt.Fprintln(w, "\nServer CPU during the consume runs (from /proc/PID/stat) and the part in GC cycles (GODEBUG=gctrace=1):")
	fmt.Fprintln(w, "\n| server | record | partitions | CPU s | GC CPU s | GC share |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			share := 0.0
			if c.consumeCPU > 0 {
				share = 100 * c.consumeGC.Seconds() / c.consumeCPU.Seconds()
			}
			fmt.Fprintf(w, "| %s | %d B | %d | %.2f | %.3f | %.1f%% |\n", t.name, c.valueBytes, c.partitions,
				c.consumeCPU.Seconds(), c.consumeGC.Seconds(), share)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// humanRate prints a rate with a k or M suffix.
func humanRate(perSecond float64) string {
	switch {
	case perSecond >= 1e6:
		return fmt.Sprintf("%.2f M", perSecond/1e6)
	case perSecond >= 1e3:
		return fmt.Sprintf("%.0f k", perSecond/1e3)
	default:
		return fmt.Sprintf("%.0f", perSecond)
	}
}

// startClientProfile starts a CPU profile of this process into the file
// path when it is set, and returns what stops it.
func startClientProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("client profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("client profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
