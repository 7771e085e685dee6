package main

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// TestGCCycleCPU checks the parse of gctrace lines: the CPU of a cycle is
// the sum of its five CPU figures, and other lines are not cycles.
func TestGCCycleCPU(t *testing.T) {
	tests := []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"gc 7 @1.204s 3%: 0.018+1.2+0.020 ms clock, 0.036+0.40/1.1/2.0+0.041 ms cpu, 4->4->1 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P",
			3577 * time.Microsecond, true},
		{"gc 1 @0.001s 0%: 1+2+3 ms clock, 1+2/3/4+5 ms cpu, 4->4->0 MB, 4 MB goal, 2 P (forced)", 15 * time.Millisecond, true},
		{"time=... level=WARN msg=\"gc is not a cycle\"", 0, false},
		{"gc 3 @0.1s 1%: garbled", 0, false},
		{"gc 3 @0.1s 1%: 1+2+3 ms clock, 1+x/3/4+5 ms cpu", 0, false},
	}
	for _, test := range tests {
		got, ok := gcCycleCPU(test.line)
		if ok != test.ok || got != test.want {
			t.Errorf("gcCycleCPU(%q) = %v, %v; want %v, %v", test.line, got, ok, test.want, test.ok)
		}
	}
}

// TestProcessCPU checks that utime and stime are read after the command
// name, which may contain spaces and parentheses.
func TestProcessCPU(t *testing.T) {
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0"
	got, err := processCPU(stat)
	if err != nil || got != 3*time.Second {
		t.Errorf("processCPU = %v, %v; want 3s", got, err)
	}
	if _, err := processCPU("4242 (broker"); err == nil {
		t.Error("processCPU accepted a stat without a closing parenthesis")
	}
}

// TestPercentileAndMedian checks the summaries on small known inputs.
func TestPercentileAndMedian(t *testing.T) {
	l := latencies{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, test := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0.999, 10}, {0.1, 1}} {
		if got := l.percentile(test.q); got != test.want {
			t.Errorf("percentile(%v) = %v, want %v", test.q, got, test.want)
		}
	}
	runs := []throughput{{records: 3, elapsed: time.Second}, {records: 1, elapsed: time.Second}, {records: 2, elapsed: time.Second}}
	if got := median(runs, throughput.recordsPerSecond); got != 2 {
		t.Errorf("median = %v, want 2", got)
	}
}

// TestParseFlags checks the defaults and that bad values are refused.
func TestParseFlags(t *testing.T) {
	opts, err := parseFlags(nil)
	if err != nil || opts.records != 1_000_000 || opts.count != 3 || len(opts.sizes) != 2 || len(opts.partitions) != 2 ||
		len(opts.targets) != 1 || opts.targets[0] != targetBroker || opts.produceOnly {
		t.Fatalf("defaults: %+v, %v", opts, err)
	}
	for _, args := range [][]string{{"-n", "0"}, {"--sizes", "1024,x"}, {"--partitions", "0"}, {"extra"}, {"--latency-for", "0s"}, {"--fetch-bytes", "0"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// TestBatchRecords checks the raw consumer's walk over batch headers: the
// record counts add up, the next offset follows the last whole batch, and
// a truncated batch ends the walk.
func TestBatchRecords(t *testing.T) {
	batch := func(base int64, records int32) []byte {
		b := make([]byte, batchHeaderBytes+10)
		binary.BigEndian.PutUint64(b, uint64(base))
		binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(len(b)-batchLengthAt-4))
		binary.BigEndian.PutUint32(b[batchLastOffsetDeltaAt:], uint32(records-1))
		binary.BigEndian.PutUint32(b[batchRecordCountAt:], uint32(records))
		return b
	}
	data := append(batch(10, 5), batch(15, 3)...)
	if count, next := batchRecords(data, 10); count != 8 || next != 18 {
		t.Errorf("two batches: %d records, next %d; want 8 and 18", count, next)
	}
	if count, next := batchRecords(data[:len(data)-1], 10); count != 5 || next != 15 {
		t.Errorf("truncated second batch: %d records, next %d; want 5 and 15", count, next)
	}
	if count, next := batchRecords(nil, 7); count != 0 || next != 7 {
		t.Errorf("no data: %d records, next %d; want 0 and 7", count, next)
	}
}

// TestConsumeChildArguments: the hidden consume child refuses malformed
// arguments with one line and the argument exit status, before it dials
// anything.
func TestConsumeChildArguments(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"127.0.0.1:1", "t", "x", "1", "1", ""},
		{"127.0.0.1:1", "t", "10", "0", "1", ""},
		{"127.0.0.1:1", "t", "10", "1"},
	} {
		var stdout, stderr strings.Builder
		if code := serveConsumeChild(args, &stdout, &stderr); code != exitArgument || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("serveConsumeChild(%q) = %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	opts, err := parseFlags([]string{"--client-cpuprofile", "/tmp/p", "--broker-property", "log.write.caching=true"})
	if err != nil || opts.profileDir != "/tmp/p" || len(opts.brokerProperties) != 1 || opts.brokerProperties[0] != "log.write.caching=true" {
		t.Fatalf("--client-cpuprofile, --broker-property: %+v, %v", opts, err)
	}
	for _, bad := range []string{"novalue", "=x", "a=b\nc=d"} {
		if _, err := parseFlags([]string{"--broker-property", bad}); err == nil {
			t.Errorf("--broker-property %q accepted", bad)
		}
	}
}

// TestParseTargets checks --targets and --kfake: order is kept, each
// target counts once, kfake comes last when only --kfake names it, and an
// unknown name is refused.
func TestParseTargets(t *testing.T) {
	tests := []struct {
		args []string
		want string
		ok   bool
	}{
		{nil, "broker", true},
		{[]string{"--kfake"}, "broker,kfake", true},
		{[]string{"--targets", "broker,cluster"}, "broker,cluster", true},
		{[]string{"--targets", "cluster, broker", "--kfake"}, "cluster,broker,kfake", true},
		{[]string{"--targets", "kfake,broker", "--kfake"}, "kfake,broker", true},
		{[]string{"--targets", "cluster,cluster"}, "cluster", true},
		{[]string{"--targets", "broker,broker-caching,broker"}, "broker,broker-caching", true},
		{[]string{"--targets", "brokers"}, "", false},
		{[]string{"--targets", ""}, "", false},
	}
	for _, test := range tests {
		t.Run(strings.Join(test.args, " "), func(t *testing.T) {
			opts, err := parseFlags(test.args)
			if (err == nil) != test.ok {
				t.Fatalf("parseFlags(%q) error %v, want ok %v", test.args, err, test.ok)
			}
			if got := strings.Join(opts.targets, ","); test.ok && got != test.want {
				t.Errorf("targets %q, want %q", got, test.want)
			}
		})
	}
	opts, err := parseFlags([]string{"--produce-only"})
	if err != nil || !opts.produceOnly {
		t.Errorf("--produce-only: %+v, %v", opts, err)
	}
}

// TestClusterProperties checks a cluster node's server.properties: the
// layout of cmd/broker/examples/cluster (a combined node, the voters, its
// own listeners and directory), topics of three replicas with
// min.insync.replicas=2, and the --broker-property lines last so that
// they win.
func TestClusterProperties(t *testing.T) {
	n := clusterNode{id: 2, client: "127.0.0.1:1002", controller: "127.0.0.1:2002", dir: "/tmp/node-2"}
	got := clusterProperties(n, "1@127.0.0.1:2001,2@127.0.0.1:2002,3@127.0.0.1:2003", []string{"log.write.caching=true"})
	want := `node.id=2
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:1002,CONTROLLER://127.0.0.1:2002
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:2001,2@127.0.0.1:2002,3@127.0.0.1:2003
log.dirs=/tmp/node-2/data
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
default.replication.factor=3
offsets.topic.replication.factor=3
min.insync.replicas=2
log.write.caching=true
`
	if got != want {
		t.Errorf("clusterProperties =\n%s\nwant\n%s", got, want)
	}
}

// TestUnmeasuredCells checks that a case that did not run (a consume
// under --produce-only) prints "-" rather than NaN, and that measured
// figures print as before.
func TestUnmeasuredCells(t *testing.T) {
	missing := median(nil, throughput.mbPerSecond)
	if got := cell("%.0f", missing); got != "-" {
		t.Errorf("cell of no runs = %q, want -", got)
	}
	if got := rateCell(missing); got != "-" {
		t.Errorf("rateCell of no runs = %q, want -", got)
	}
	if got := cell("%.2f", 0.5); got != "0.50" {
		t.Errorf("cell(0.5) = %q, want 0.50", got)
	}
	if got := rateCell(1500); got != "2 k" {
		t.Errorf("rateCell(1500) = %q, want 2 k", got)
	}
}

// TestRatioTable checks the replication ratio: printed per case when both
// the broker and the cluster ran, and not at all otherwise.
func TestRatioTable(t *testing.T) {
	runs := func(mb int64) []throughput {
		return []throughput{{valueBytes: mb << 20, elapsed: time.Second}}
	}
	single := &targetResult{name: targetBroker, cases: []*caseResult{{valueBytes: 1024, partitions: 8, produce: runs(200),
		produceCPU: 3 * time.Second, produceElapsed: 4 * time.Second}}}
	cluster := &targetResult{name: targetCluster, cases: []*caseResult{{valueBytes: 1024, partitions: 8, produce: runs(50),
		produceCPU: 6 * time.Second, produceElapsed: 4 * time.Second}}}
	var both strings.Builder
	ratioTable(&both, []*targetResult{single, cluster})
	if !strings.Contains(both.String(), "| 1024 B | 8 | 200 | 50 | 0.25 | 0.75 | 1.50 |") {
		t.Errorf("ratio table:\n%s", both.String())
	}
	var alone strings.Builder
	ratioTable(&alone, []*targetResult{single})
	if alone.Len() != 0 {
		t.Errorf("ratio table without a cluster:\n%s", alone.String())
	}
}

// TestMinimalTableSkipsUnmeasured: a minimal client's table is left out
// when no case ran it (--produce-only, or a cluster alone), and printed
// with the cases that did otherwise.
func TestMinimalTableSkipsUnmeasured(t *testing.T) {
	runs := func(c *caseResult) []throughput { return c.produceRaw }
	unmeasured := []*targetResult{{name: targetCluster, cases: []*caseResult{{valueBytes: 1024, partitions: 1}}}}
	var none strings.Builder
	minimalTable(&none, unmeasured, 1000, "produce", "title", runs)
	if none.Len() != 0 {
		t.Errorf("table of unmeasured cases:\n%s", none.String())
	}
	measured := append(unmeasured, &targetResult{name: targetBroker, cases: []*caseResult{{valueBytes: 1024, partitions: 1,
		produceRaw: []throughput{{records: 1000, valueBytes: 500 << 20, elapsed: time.Second}}}}})
	var some strings.Builder
	minimalTable(&some, measured, 1000, "produce", "title", runs)
	if got := some.String(); !strings.Contains(got, "| broker | 1024 B | 1 | 500 | 0.50 | 1 k |") || strings.Contains(got, "| cluster |") {
		t.Errorf("table:\n%s", got)
	}
}
