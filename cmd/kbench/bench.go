package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
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
	produceRaw []throughput
	// latencyRuns are the open-loop latency runs, one result per rate.
	latencyRuns []*latencyResult
	// consumeCPU and consumeGC add up the server's CPU, and the part its
	// GC cycles reported, over the consume runs.
	consumeCPU, consumeGC time.Duration
	// produceCPU adds up the server's CPU (every node's, for a cluster)
	// over the kgo produce runs, and produceElapsed their wall time.
	produceCPU, produceElapsed time.Duration
	// produceClientCPU adds up kbench's own CPU (the kgo producer's) over
	// the same runs.
	produceClientCPU time.Duration
}

// produceCores is how many cores the server kept busy on average while
// the kgo producer ran.
func (c *caseResult) produceCores() float64 {
	return c.produceCPU.Seconds() / c.produceElapsed.Seconds()
}

// latencyResult holds the open-loop latency runs at one rate (--count of
// them), and the broker's view summed over them.
type latencyResult struct {
	rate   float64
	runs   []stageReport
	broker brokerView
	// disk are the disk reference's runs at this rate (latency mode,
	// first target only).
	disk []diskReport
	// brokerSeconds is how long the runs the broker's view covers sent.
	brokerSeconds float64
}

// summary is the median over the runs of every percentile and tail
// figure; the stages count as tapped only if every run's were.
func (l *latencyResult) summary() stageReport {
	out := stageReport{tapped: true}
	values := make(latencies, len(l.runs))
	middle := func(pick func(stageReport) time.Duration) time.Duration {
		for i, run := range l.runs {
			values[i] = pick(run)
		}
		slices.Sort(values)
		return values.percentile(0.5)
	}
	for _, run := range l.runs {
		out.records += run.records
		if !run.tapped {
			out.tapped, out.tapError = false, run.tapError
		}
	}
	for stage := range stageCount {
		for q := range reportQuantiles {
			out.quantiles[stage][q] = middle(func(r stageReport) time.Duration { return r.quantiles[stage][q] })
		}
		out.tail[stage] = middle(func(r stageReport) time.Duration { return r.tail[stage] })
	}
	return out
}

// targetResult is everything measured on one server.
type targetResult struct {
	name  string
	cases []*caseResult
}

func bench(ctx context.Context, opts options, stdout, stderr io.Writer) error {
	loadBefore := loadAverage()
	if opts.brokerPath == "" && slices.ContainsFunc(opts.targets, func(t string) bool { return t != targetKfake }) {
		// One build serves the single broker and the cluster alike.
		dir, err := os.MkdirTemp("", "kbench-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if opts.brokerPath, err = brokerBinary(ctx, dir, ""); err != nil {
			return err
		}
	}
	if len(opts.latencyRates) > 0 {
		results, err := benchLatencyMode(ctx, opts, stderr)
		if err != nil {
			return err
		}
		reportLatency(stdout, opts, results, loadBefore, loadAverage())
		return nil
	}
	results, references, err := benchThroughput(ctx, opts, stderr)
	if err != nil {
		return err
	}
	report(stdout, opts, results, references, loadBefore, loadAverage())
	return nil
}

// startTarget starts the server --targets names.
func startTarget(ctx context.Context, target string, opts options) (*server, error) {
	switch target {
	case targetCluster:
		return startCluster(ctx, opts.brokerPath, opts.brokerProperties)
	case targetKfake:
		return startKfake(ctx)
	case targetBrokerCaching:
		return startBroker(ctx, targetBrokerCaching, opts.brokerPath, append(slices.Clip(opts.brokerProperties), cachingProperty))
	default:
		return startBroker(ctx, targetBroker, opts.brokerPath, opts.brokerProperties)
	}
}

// cachingProperty is the server.properties line of the broker-caching
// target: acks=all answered after the write, before any fsync.
const cachingProperty = "log.write.caching=true"

// benchThroughput runs the throughput mode. Every target is started
// first, and each round measures one loopback stream and then every case
// on every target in turn, so that the targets share the machine's load
// as it changes (on the shared machine other engineers' builds and
// sweeps come and go within minutes) and a ratio between targets
// compares runs made minutes apart at most. The targets that wait cost
// little: an idle three-node cluster used 2.75% of one core (55 clock
// ticks in 20 s). After the rounds, each target's latency is measured at
// half of its median produce rate.
func benchThroughput(ctx context.Context, opts options, stderr io.Writer) ([]*targetResult, references, error) {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var results []*targetResult
	for _, target := range opts.targets {
		s, err := startTarget(ctx, target, opts)
		if err != nil {
			return nil, references{}, err
		}
		servers = append(servers, s)
		results = append(results, newTargetResult(s.name, opts))
	}
	var refs references
	for run := range opts.count {
		reference, err := loopback()
		if err != nil {
			return nil, refs, fmt.Errorf("loopback: %w", err)
		}
		refs.loopback = append(refs.loopback, reference)
		appended, err := appendReference(servers[0].dir, int64(opts.records)*int64(slices.Max(opts.sizes)))
		if err != nil {
			return nil, refs, err
		}
		refs.appends = append(refs.appends, appended)
		for i, s := range servers {
			if err := benchRound(ctx, s, opts, results[i], run, stderr); err != nil {
				return nil, references{}, fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	for i, s := range servers {
		if err := benchHalfLoad(ctx, s, opts, results[i], stderr); err != nil {
			return nil, references{}, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return results, refs, nil
}

// references are the physical references of a throughput run, one per
// round: one loopback TCP stream, and 1 MiB appends to a file in the
// first target's data directory's filesystem.
type references struct {
	loopback, appends []throughput
}

// newTargetResult holds a case per record size and partition count.
func newTargetResult(name string, opts options) *targetResult {
	result := &targetResult{name: name}
	for _, valueBytes := range opts.sizes {
		for _, partitions := range opts.partitions {
			result.cases = append(result.cases, &caseResult{valueBytes: valueBytes, partitions: partitions})
		}
	}
	return result
}

// benchRound runs every case of result once on s.
func benchRound(ctx context.Context, s *server, opts options, result *targetResult, run int, stderr io.Writer) error {
	for i, c := range result.cases {
		topic := fmt.Sprintf("kbench-%d-%d-%d-%d", c.valueBytes, c.partitions, run, i)
		if err := benchCase(ctx, s, opts, topic, c); err != nil {
			return err
		}
		consumed := math.NaN()
		if run < len(c.consume) {
			consumed = c.consume[run].mbPerSecond()
		}
		fmt.Fprintf(stderr, "kbench: %s %d B x %d partitions run %d: produce %.0f MB/s, consume %s MB/s (load average %s)\n", s.name,
			c.valueBytes, c.partitions, run+1, c.produce[run].mbPerSecond(), cell("%.0f", consumed), loadAverage())
	}
	return nil
}

// benchHalfLoad runs --count latency runs of every case of result on s,
// at half of the case's median produce rate.
func benchHalfLoad(ctx context.Context, s *server, opts options, result *targetResult, stderr io.Writer) error {
	for i, c := range result.cases {
		rate := median(c.produce, throughput.recordsPerSecond) / 2
		for run := range opts.count {
			topic := fmt.Sprintf("kbench-latency-%d-%d-%d-%d", c.valueBytes, c.partitions, i, run)
			if err := benchLatency(ctx, s, opts, topic, c, rate, stderr); err != nil {
				return err
			}
		}
	}
	return nil
}

// benchLatencyMode runs the latency mode (--latency-rates). Every target
// is started first; for every case and rate, each round runs one
// open-loop test on every target in turn and then the disk reference, so
// that the targets and the reference share the machine's load as it
// changes and their figures can be compared. "half" is half of the median
// rate of --count produce runs of -n records on each target; the disk
// reference runs at the first target's rate, in its data directory's
// filesystem, and its runs are kept with the first target's results.
func benchLatencyMode(ctx context.Context, opts options, stderr io.Writer) ([]*targetResult, error) {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var results []*targetResult
	for _, target := range opts.targets {
		s, err := startTarget(ctx, target, opts)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
		results = append(results, newTargetResult(s.name, opts))
	}
	for c := range results[0].cases {
		for r, rate := range opts.latencyRates {
			if err := benchLatencyRounds(ctx, servers, results, c, r, rate, opts, stderr); err != nil {
				return nil, err
			}
		}
	}
	return results, nil
}

// benchLatencyRounds runs --count rounds of case c at one rate on every
// target, each round followed by the disk reference.
func benchLatencyRounds(ctx context.Context, servers []*server, results []*targetResult, c, r int, rate latencyRate,
	opts options, stderr io.Writer) error {
	perSecond := make([]float64, len(servers))
	for i, s := range servers {
		perSecond[i] = rate.perSecond
		if rate.half {
			half, err := halfProduceRate(ctx, s, opts, results[i].cases[c])
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			perSecond[i] = half
		}
	}
	for run := range opts.count {
		for i, s := range servers {
			cr := results[i].cases[c]
			topic := fmt.Sprintf("kbench-latency-%d-%d-%d-%d", cr.valueBytes, cr.partitions, r, run)
			if err := benchLatency(ctx, s, opts, topic, cr, perSecond[i], stderr); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		first := results[0].cases[c]
		rep, err := measureDisk(ctx, servers[0].dir, first.valueBytes, perSecond[0], opts.latencyFor)
		if err != nil {
			return err
		}
		result := first.latencyAt(perSecond[0])
		result.disk = append(result.disk, rep)
		fmt.Fprintf(stderr, "kbench: disk reference %d B at %s records/s: append to fdatasync p50 %.2f ms, p99 %.2f ms, %d fdatasyncs (load average %s)\n",
			first.valueBytes, humanRate(perSecond[0]), ms(rep.appended[0]), ms(rep.appended[1]), rep.syncs, loadAverage())
	}
	return nil
}

// halfProduceRate is half of the median rate of --count produce runs of
// -n records into fresh topics.
func halfProduceRate(ctx context.Context, s *server, opts options, c *caseResult) (float64, error) {
	var runs []throughput
	for run := range opts.count {
		topic := fmt.Sprintf("kbench-rate-%d-%d-%d", c.valueBytes, c.partitions, run)
		if err := createTopic(ctx, s, topic, c.partitions); err != nil {
			return 0, err
		}
		produced, err := produceAll(ctx, s.addr, topic, opts.records, c.valueBytes)
		if err != nil {
			return 0, err
		}
		runs = append(runs, produced)
		if err := deleteTopic(ctx, s.addr, topic); err != nil {
			return 0, err
		}
	}
	return median(runs, throughput.recordsPerSecond) / 2, nil
}

// benchLatency runs one open-loop latency test at rate on a fresh topic
// and adds it to c's result at that rate.
func benchLatency(ctx context.Context, s *server, opts options, topic string, c *caseResult, rate float64, stderr io.Writer) error {
	if err := createTopic(ctx, s, topic, c.partitions); err != nil {
		return err
	}
	before, scrapeErr := s.scrape()
	latencyCtx, cancel := context.WithTimeout(ctx, opts.latencyFor+latencyDrainTimeout)
	rep, err := measureOpenLoop(latencyCtx, s.addr, topic, latencyConfig{
		valueBytes: c.valueBytes, rate: rate, duration: opts.latencyFor, linger: opts.linger, fetch: opts.fetch})
	cancel()
	if err != nil {
		return fmt.Errorf("latency %d B x %d at %s/s: %w", c.valueBytes, c.partitions, humanRate(rate), err)
	}
	result := c.latencyAt(rate)
	result.runs = append(result.runs, rep)
	if after, err := s.scrape(); err == nil && scrapeErr == nil {
		result.broker.add(after.minus(before))
		result.brokerSeconds += opts.latencyFor.Seconds()
	} else if s.metricsAddr != "" {
		fmt.Fprintf(stderr, "kbench: scraping the broker's metrics: %v\n", cmpOr(scrapeErr, err))
	}
	fmt.Fprintf(stderr, "kbench: %s %d B x %d partitions at %s records/s: end to end p50 %.2f ms, p99 %.2f ms\n", s.name,
		c.valueBytes, c.partitions, humanRate(rate), ms(rep.quantiles[stageEndToEnd][0]), ms(rep.quantiles[stageEndToEnd][1]))
	return deleteTopic(ctx, s.addr, topic)
}

// latencyAt returns c's result at rate, adding it if new.
func (c *caseResult) latencyAt(rate float64) *latencyResult {
	for _, l := range c.latencyRuns {
		if l.rate == rate {
			return l
		}
	}
	l := &latencyResult{rate: rate}
	c.latencyRuns = append(c.latencyRuns, l)
	return l
}

// benchCase produces opts.records to a fresh topic, then consumes them,
// counting the server's CPU and GC during the consume. With
// --produce-only it only produces. The minimal clients talk to one broker
// for every partition, so on a cluster they do not run.
func benchCase(ctx context.Context, s *server, opts options, topic string, c *caseResult) error {
	if err := createTopic(ctx, s, topic, c.partitions); err != nil {
		return err
	}
	cpuBefore, err := s.cpu()
	if err != nil {
		return err
	}
	clientBefore := selfCPU()
	produced, err := produceAll(ctx, s.addr, topic, opts.records, c.valueBytes)
	if err != nil {
		return err
	}
	c.produceClientCPU += selfCPU() - clientBefore
	cpuAfter, err := s.cpu()
	if err != nil {
		return err
	}
	c.produce = append(c.produce, produced)
	c.produceCPU += cpuAfter - cpuBefore
	c.produceElapsed += produced.elapsed
	if opts.produceOnly {
		return deleteTopic(ctx, s.addr, topic)
	}
	// GC cycles report when they end: a pause lets those the produce
	// started end before the consume is counted.
	time.Sleep(settleBeforeConsume)
	if cpuBefore, err = s.cpu(); err != nil {
		return err
	}
	gcBefore := s.gcCPU()
	profile := ""
	if opts.profileDir != "" {
		profile = filepath.Join(opts.profileDir, fmt.Sprintf("%s-%d-%d-%d.pprof", s.name, c.valueBytes, c.partitions, len(c.consume)))
	}
	consumed, err := consumeInChild(ctx, s.addr, topic, opts.records, opts.fetch, profile)
	if err != nil {
		return err
	}
	if cpuAfter, err = s.cpu(); err != nil {
		return err
	}
	c.consumeCPU += cpuAfter - cpuBefore
	c.consumeGC += s.gcCPU() - gcBefore
	c.consume = append(c.consume, consumed)
	if len(s.peers) > 0 {
		return deleteTopic(ctx, s.addr, topic)
	}
	raw, err := consumeRaw(s.addr, topic, c.partitions, opts.records, opts.fetch)
	if err != nil {
		return fmt.Errorf("raw consume: %w", err)
	}
	c.consumeRaw = append(c.consumeRaw, raw)
	if err := deleteTopic(ctx, s.addr, topic); err != nil {
		return err
	}
	rawTopic := topic + "-raw"
	if err := createTopic(ctx, s, rawTopic, c.partitions); err != nil {
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
// even count), or NaN when nothing ran.
func median(runs []throughput, metric func(throughput) float64) float64 {
	if len(runs) == 0 {
		return math.NaN()
	}
	values := make([]float64, len(runs))
	for i, r := range runs {
		values[i] = metric(r)
	}
	slices.Sort(values)
	return values[(len(values)-1)/2]
}

// cell formats a figure of a table, or "-" for one that was not
// measured (NaN).
func cell(format string, value float64) string {
	if math.IsNaN(value) {
		return "-"
	}
	return fmt.Sprintf(format, value)
}

// rateCell is humanRate, or "-" for a rate that was not measured.
func rateCell(perSecond float64) string {
	if math.IsNaN(perSecond) {
		return "-"
	}
	return humanRate(perSecond)
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
	if !slices.ContainsFunc(results, func(t *targetResult) bool {
		return slices.ContainsFunc(t.cases, func(c *caseResult) bool { return len(runs(c)) > 0 })
	}) {
		return
	}
	fmt.Fprintln(w, "\n"+title)
	fmt.Fprintf(w, "\n| server | record | partitions | %s MB/s | /loopback | %s records/s |\n", verb, verb)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			if len(runs(c)) == 0 {
				continue
			}
			raw := median(runs(c), throughput.mbPerSecond)
			fmt.Fprintf(w, "| %s | %d B | %d | %.0f | %.2f | %s |\n", t.name, c.valueBytes, c.partitions,
				raw, raw/reference, humanRate(median(runs(c), throughput.recordsPerSecond)))
		}
	}
}

// report prints the run as Markdown tables, every figure with its ratio
// to the loopback stream's median.
func report(w io.Writer, opts options, results []*targetResult, refs references, loadBefore, loadAfter string) {
	reference := median(refs.loopback, throughput.mbPerSecond)
	fmt.Fprintf(w, "kbench %s: %d records per case, median of %d runs, GOMAXPROCS %d, load average %s before and %s after\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), opts.records, opts.count, runtime.GOMAXPROCS(0), loadBefore, loadAfter)
	fmt.Fprintf(w, "Consumers fetch up to %d MiB per request and %d KiB per partition.\n\n",
		opts.fetch.bytesMax>>20, opts.fetch.partitionBytesMax>>10)
	fmt.Fprintf(w, "One loopback TCP stream (the reference): %.0f MB/s (median of %d)\n\n", reference, len(refs.loopback))
	appended := median(refs.appends, throughput.mbPerSecond)
	if len(refs.appends) > 0 {
		fmt.Fprintf(w, "Appends to a file in the data directory's filesystem (1 MiB writes of %d MiB, no fsync; the produce path's floor on this disk): %.0f MB/s (median of %d)\n\n",
			refs.appends[0].valueBytes>>20, appended, len(refs.appends))
	}
	fmt.Fprintln(w, "| server | record | partitions | produce MB/s | /loopback | produce records/s | consume MB/s | /loopback | consume records/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			produce, consume := median(c.produce, throughput.mbPerSecond), median(c.consume, throughput.mbPerSecond)
			fmt.Fprintf(w, "| %s | %d B | %d | %.0f | %.2f | %s | %s | %s | %s |\n", t.name, c.valueBytes, c.partitions,
				produce, produce/reference, humanRate(median(c.produce, throughput.recordsPerSecond)),
				cell("%.0f", consume), cell("%.2f", consume/reference), rateCell(median(c.consume, throughput.recordsPerSecond)))
		}
	}
	appendTable(w, results, appended)
	ratioTable(w, results)
	minimalTable(w, results, reference, "produce",
		"Produce with a minimal client (1 MiB batches built once, acks=all, 5 requests in flight; MB/s of record values):",
		func(c *caseResult) []throughput { return c.produceRaw })
	minimalTable(w, results, reference, "consume",
		"Consume with a minimal client (batch headers only; MB/s of record batches):",
		func(c *caseResult) []throughput { return c.consumeRaw })
	latencyTables(w, opts, results, "at half of the median produce rate")
	if opts.produceOnly {
		return
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

// appendTable prints each case's produce rate over the append reference,
// when it was measured.
func appendTable(w io.Writer, results []*targetResult, appended float64) {
	if math.IsNaN(appended) {
		return
	}
	fmt.Fprintln(w, "\nProduce against the append reference (both MB/s of record values written), and the cores the server and the kgo producer "+
		"(kbench's own process) kept busy over the produce runs (CPU from /proc/PID/stat and getrusage over the runs' wall time):")
	fmt.Fprintln(w, "\n| server | record | partitions | produce MB/s | /append | server cores | client cores |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			produce := median(c.produce, throughput.mbPerSecond)
			fmt.Fprintf(w, "| %s | %d B | %d | %.0f | %.2f | %.2f | %.2f |\n", t.name, c.valueBytes, c.partitions, produce, produce/appended,
				c.produceCores(), c.produceClientCPU.Seconds()/c.produceElapsed.Seconds())
		}
	}
}

// ratioTable prints, when the run measured both the single broker and
// the cluster, the cluster's produce rate over the broker's per case.
func ratioTable(w io.Writer, results []*targetResult) {
	single, cluster := findTarget(results, targetBroker), findTarget(results, targetCluster)
	if single == nil || cluster == nil || len(single.cases) != len(cluster.cases) {
		return
	}
	fmt.Fprintln(w, "\nReplication's cost: the cluster (3 replicas, min.insync.replicas=2) against one broker, acks=all produce; "+
		"cores are the servers' CPU (all three nodes' for the cluster) over the produce runs' wall time, from /proc/PID/stat:")
	fmt.Fprintln(w, "\n| record | partitions | broker MB/s | cluster MB/s | cluster/broker | broker cores | cluster cores |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	for i, c := range cluster.cases {
		one, three := median(single.cases[i].produce, throughput.mbPerSecond), median(c.produce, throughput.mbPerSecond)
		fmt.Fprintf(w, "| %d B | %d | %.0f | %.0f | %.2f | %.2f | %.2f |\n", c.valueBytes, c.partitions, one, three, three/one,
			single.cases[i].produceCores(), c.produceCores())
	}
}

// findTarget returns the results of the target named name, or nil.
func findTarget(results []*targetResult, name string) *targetResult {
	for _, t := range results {
		if t.name == name {
			return t
		}
	}
	return nil
}

// latencyTables prints the open-loop latency runs: the end-to-end
// percentiles, then every stage's p50 and p99 and, in brackets, its median
// over the records at or above the end-to-end p99.
func latencyTables(w io.Writer, opts options, results []*targetResult, rates string) {
	fmt.Fprintf(w, "\nEnd-to-end latency, open loop (from each record's scheduled send to the consumer's poll) %s, %s per run, median of %d runs, producer linger %v:\n",
		rates, opts.latencyFor, opts.count, opts.linger)
	fmt.Fprintln(w, "\n| server | record | partitions | records/s | p50 ms | p99 ms | p99.9 ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			for _, l := range c.latencyRuns {
				q := l.summary().quantiles[stageEndToEnd]
				fmt.Fprintf(w, "| %s | %d B | %d | %s | %.2f | %.2f | %.2f |\n", t.name, c.valueBytes, c.partitions,
					humanRate(l.rate), ms(q[0]), ms(q[1]), ms(q[2]))
			}
		}
	}
	fmt.Fprintln(w, "\nStages of the same runs in ms, p50 / p99 [median over the records at or above the end-to-end p99]:")
	fmt.Fprint(w, "\n| server | record | partitions | records/s |")
	for _, name := range stageNames[:stageEndToEnd] {
		fmt.Fprintf(w, " %s |", name)
	}
	fmt.Fprintln(w, "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			for _, l := range c.latencyRuns {
				summary := l.summary()
				fmt.Fprintf(w, "| %s | %d B | %d | %s |", t.name, c.valueBytes, c.partitions, humanRate(l.rate))
				for stage := range stageEndToEnd {
					if !summary.tapped && stage != stagePace {
						fmt.Fprint(w, " ? |")
						continue
					}
					q := summary.quantiles[stage]
					fmt.Fprintf(w, " %.2f / %.2f [%.2f] |", ms(q[0]), ms(q[1]), ms(summary.tail[stage]))
				}
				fmt.Fprintln(w)
			}
		}
	}
	brokerTable(w, opts, results)
	diskTable(w, results)
	for _, t := range results {
		for _, c := range t.cases {
			for _, l := range c.latencyRuns {
				if summary := l.summary(); !summary.tapped {
					fmt.Fprintf(w, "\n%s %d B x %d at %s/s: the wire tap lost track (%s)\n", t.name, c.valueBytes, c.partitions,
						humanRate(l.rate), summary.tapError)
				}
			}
		}
	}
}

// diskTable prints the disk reference runs (latency mode), each at the
// rate of the target whose results hold them.
func diskTable(w io.Writer, results []*targetResult) {
	if !slices.ContainsFunc(results, func(t *targetResult) bool {
		return slices.ContainsFunc(t.cases, func(c *caseResult) bool {
			return slices.ContainsFunc(c.latencyRuns, func(l *latencyResult) bool { return len(l.disk) > 0 })
		})
	}) {
		return
	}
	fmt.Fprintln(w, "\nDisk reference, run after every round on the filesystem of the first target's data directory: records of the case's size appended at its rate "+
		"(those due together in one write) and fdatasync back to back, each covering what was appended before it began; ms from a record's write, "+
		"and from its due time, to the end of the fdatasync covering it, median over the runs:")
	fmt.Fprintln(w, "\n| record | records/s | MB/s | write→synced p50 / p99 / p99.9 ms | due→synced p50 / p99 / p99.9 ms | fdatasyncs/s | fdatasync p50 / p99 / p99.9 ms |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			for _, l := range c.latencyRuns {
				if len(l.disk) == 0 {
					continue
				}
				d := diskSummary(l.disk)
				fmt.Fprintf(w, "| %d B | %s | %.0f | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.0f | %.2f / %.2f / %.2f |\n", c.valueBytes,
					humanRate(l.rate), l.rate*float64(c.valueBytes)/1e6, ms(d.appended[0]), ms(d.appended[1]), ms(d.appended[2]),
					ms(d.due[0]), ms(d.due[1]), ms(d.due[2]), float64(d.syncs)/d.elapsed.Seconds(),
					ms(d.syncQuantiles[0]), ms(d.syncQuantiles[1]), ms(d.syncQuantiles[2]))
			}
		}
	}
}

// brokerTable prints the broker's own view of the latency runs.
func brokerTable(w io.Writer, opts options, results []*targetResult) {
	fmt.Fprintln(w, "\nThe broker's view of the same runs (its /metrics histograms; p50 and p99 are bucket upper bounds; a Produce counts from its arrival, so it includes its wait behind the requests before it on its connection; a cluster's figures add up its nodes', followers' fsyncs included):")
	fmt.Fprintln(w, "\n| server | record | partitions | records/s | fsyncs/s | fsync mean ms | fsync p50 / p99 ms | Produce requests/s | Produce mean ms | Produce p50 / p99 ms | queued ms per Produce |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range results {
		for _, c := range t.cases {
			for _, l := range c.latencyRuns {
				if !l.broker.known {
					continue
				}
				sync, produce, seconds := l.broker.syncLatency, l.broker.produceLatency, l.brokerSeconds
				fmt.Fprintf(w, "| %s | %d B | %d | %s | %.0f | %.2f | %s / %s | %.0f | %.2f | %s / %s | %.2f |\n", t.name, c.valueBytes, c.partitions,
					humanRate(l.rate), sync.count/seconds, ms(sync.mean()), bound(sync.quantileBound(0.5)), bound(sync.quantileBound(0.99)),
					produce.count/seconds, ms(produce.mean()), bound(produce.quantileBound(0.5)), bound(produce.quantileBound(0.99)),
					ms(queuedPerProduce(l.broker.brokerMetrics)))
			}
		}
	}
}

// queuedPerProduce is the time requests waited behind earlier requests of
// their connection, over the Produce requests: in a latency run only the
// producer's connection pipelines (the consumer has one Fetch out at a
// time), so this is the mean wait of a Produce request for the ones
// before it.
func queuedPerProduce(m brokerMetrics) time.Duration {
	if m.produceLatency.count <= 0 {
		return 0
	}
	return time.Duration(m.queueTime.sum / m.produceLatency.count * float64(time.Second))
}

// bound prints a bucket's upper bound in ms.
func bound(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "+Inf"
	}
	return strconv.FormatFloat(ms(d), 'g', -1, 64)
}

// reportLatency prints a run of the latency mode.
func reportLatency(w io.Writer, opts options, results []*targetResult, loadBefore, loadAfter string) {
	fmt.Fprintf(w, "kbench %s: latency mode, GOMAXPROCS %d, load average %s before and %s after\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOMAXPROCS(0), loadBefore, loadAfter)
	latencyTables(w, opts, results, "at fixed rates")
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
