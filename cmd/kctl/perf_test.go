package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker"
)

// TestPerfProduceAndConsume runs perf produce with a small count (creating
// the topic with three partitions) and perf consume over what it wrote, and
// checks the shape of their summaries: the record counts are exact, the
// rates and latencies are numbers (their values are never asserted: speed
// is not tested with the wall clock).
func TestPerfProduceAndConsume(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.AutoCreateTopics = false })
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"produce", []string{"perf", "produce", "bench", "-n", "500", "-s", "64", "--partitions", "3"},
			`^500 records sent, 64 bytes each, in \d+\.\d\d s: \d+\.\d records/s, \d+\.\d\d MB/s\n` +
				`latency ms: avg \d+\.\d\d, p50 \d+\.\d\d, p99 \d+\.\d\d, p99\.9 \d+\.\d\d, max \d+\.\d\d\n$`},
		{"produce with options", []string{"perf", "produce", "bench", "-n", "300", "-s", "10", "--acks", "1", "-z", "lz4",
			"--linger", "2ms", "--batch-bytes", "16384"},
			`^300 records sent, 10 bytes each, in `},
		{"consume everything", []string{"perf", "consume", "bench"},
			`^800 records read, 35000 bytes, in \d+\.\d\d s after \d+\.\d\d s to the first record: \d+\.\d records/s, \d+\.\d\d MB/s\n$`},
		{"consume some in a group", []string{"perf", "consume", "bench", "-n", "100", "-g", "perf"},
			`^100 records read, `},
	}
	for _, c := range cases {
		r := mustKctl(t, n.addr, "", c.args...)
		if !regexp.MustCompile(c.want).MatchString(r.stdout) || r.stderr != "" {
			t.Fatalf("%s: stdout %q stderr %q; want stdout matching %s", c.name, r.stdout, r.stderr, c.want)
		}
	}
	if rows := fields(mustKctl(t, n.addr, "", "topic", "list").stdout); !containsRow(rows, []string{"bench", "3", "1"}) {
		t.Fatalf("perf produce did not create bench with 3 partitions: %v", rows)
	}
}

// TestLatencyHistogramPercentiles feeds known latencies and checks that
// each percentile is within the histogram's 1% bucket width of the exact
// value and never above the maximum.
func TestLatencyHistogramPercentiles(t *testing.T) {
	h := &latencyHistogram{}
	for us := int64(1); us <= 10_000; us++ {
		h.add(time.Duration(us) * time.Microsecond)
	}
	for _, c := range []struct{ q, exactMs float64 }{{0.5, 5}, {0.99, 9.9}, {0.999, 9.99}, {1, 10}} {
		got := h.percentileMs(c.q)
		if got < c.exactMs || got > c.exactMs*histogramGrowth+0.001 || got > 10 {
			t.Errorf("p%v = %v ms, want within 1%% above %v ms and at most the max", c.q*100, got, c.exactMs)
		}
	}
}
