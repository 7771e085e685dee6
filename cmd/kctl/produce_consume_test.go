package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
)

// TestProduceConsumeEveryCodecAndAcks produces keyed lines with each
// codec and acks setting, then consumes them back with -e and a format
// naming every field, and checks that exactly the produced records come
// back, each once, with keys split at the separator, offsets dense per
// partition, and the same key always in the same partition.
func TestProduceConsumeEveryCodecAndAcks(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.NumPartitions = 3 })
	settings := []struct{ codec, acks string }{
		{"none", "all"}, {"gzip", "all"}, {"snappy", "1"}, {"lz4", "all"}, {"zstd", "all"},
	}
	const linesPerSetting = 40
	want := map[string]string{} // value -> key
	for _, s := range settings {
		var input strings.Builder
		for i := range linesPerSetting {
			key, value := fmt.Sprintf("key%d", i%5), fmt.Sprintf("%s-%s-%d", s.codec, s.acks, i)
			fmt.Fprintf(&input, "%s=>%s\n", key, value)
			want[value] = key
		}
		r := mustKctl(t, n.addr, input.String(), "produce", "events", "-k", "=>", "-z", s.codec, "--acks", s.acks)
		if r.stdout != "" || r.stderr != fmt.Sprintf("produced %d records to events\n", linesPerSetting) {
			t.Fatalf("produce -z %s: stdout %q stderr %q", s.codec, r.stdout, r.stderr)
		}
	}

	r := mustKctl(t, n.addr, "", "consume", "events", "-e", "-f", `%t|%p|%o|%k|%v`)
	nextOffset := map[string]int{}
	partitionOf := map[string]string{}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		var topic, partition, key, value string
		var offset int
		parts := strings.Split(line, "|")
		if len(parts) != 5 {
			t.Fatalf("line %q does not have 5 fields", line)
		}
		topic, partition, key, value = parts[0], parts[1], parts[3], parts[4]
		fmt.Sscan(parts[2], &offset)
		if topic != "events" || offset != nextOffset[partition] || want[value] != key || seen[value] {
			t.Fatalf("unexpected line %q (next offset of partition %s is %d)", line, partition, nextOffset[partition])
		}
		if p, ok := partitionOf[key]; ok && p != partition {
			t.Fatalf("key %s in partitions %s and %s", key, p, partition)
		}
		partitionOf[key], seen[value] = partition, true
		nextOffset[partition]++
	}
	if len(seen) != len(want) {
		t.Fatalf("consumed %d distinct records, produced %d", len(seen), len(want))
	}
}

// TestConsumeStartOffsetsAndCount checks -o (start, end, an exact offset,
// -N before the end, an offset past the end) with -e, and -n stopping after
// that many records, on one partition whose contents are known.
func TestConsumeStartOffsetsAndCount(t *testing.T) {
	n := startNode(t, nil)
	mustKctl(t, n.addr, "v0\nv1\nv2\nv3\nv4\n", "produce", "five")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-e"}, "v0 v1 v2 v3 v4"},
		{[]string{"-e", "-o", "start"}, "v0 v1 v2 v3 v4"},
		{[]string{"-e", "-o", "3"}, "v3 v4"},
		{[]string{"-e", "-o", "-2"}, "v3 v4"},
		{[]string{"-e", "-o", "end"}, ""},
		{[]string{"-e", "-o", "99"}, ""},
		{[]string{"-n", "2"}, "v0 v1"},
		{[]string{"-n", "2", "-o", "2"}, "v2 v3"},
		{[]string{"-n", "1", "-o", "-1", "-f", `%o:%v\n`}, "4:v4"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := mustKctl(t, n.addr, "", append([]string{"consume", "five"}, c.args...)...)
			if got := strings.Join(strings.Fields(r.stdout), " "); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestProduceEmptyLinesAndPartition checks that an empty line is an empty
// record (not skipped), a line without the separator has no key, and -p
// writes to the named partition.
func TestProduceEmptyLinesAndPartition(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.NumPartitions = 2 })
	mustKctl(t, n.addr, "k:v\n\nnokey\n", "produce", "mixed", "-k", ":", "-p", "1")
	r := mustKctl(t, n.addr, "", "consume", "mixed", "-e", "-f", `%p/%o/[%k]/[%v]`)
	want := "1/0/[k]/[v]\n1/1/[]/[]\n1/2/[]/[nokey]\n"
	if r.stdout != want {
		t.Fatalf("got %q, want %q", r.stdout, want)
	}
}

// TestProduceReportsFailedRecords checks that records the broker refuses
// are summarized in one line with their count, first line number and Kafka
// error, that the final count says how many failed, and that the exit
// status is 1: the topic does not exist and auto-creation is off.
func TestProduceReportsFailedRecords(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.AutoCreateTopics = false })
	r := kctl(t, n.addr, "a\nb\n", "produce", "missing", "--timeout", "2s")
	if r.status != exitFailure {
		t.Fatalf("exit status %d, stderr %q", r.status, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 || lines[1] != "produced 0 records to missing (2 failed)" ||
		!strings.HasPrefix(lines[0], "kctl: produce missing: 2 records failed (first: line 1): ") ||
		!strings.Contains(lines[0], "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// TestProduceFloodIsOneLine produces 2,000 records that are each larger
// than the topic's max.message.bytes and checks that stderr holds one line
// for all of them (count, first line, MESSAGE_TOO_LARGE) and the final
// count, not 2,000 lines.
func TestProduceFloodIsOneLine(t *testing.T) {
	n := startNode(t, nil)
	mustKctl(t, n.addr, "", "topic", "create", "small", "-c", "max.message.bytes=200")
	const records = 2000
	input := strings.Repeat(strings.Repeat("x", 300)+"\n", records)
	r := kctl(t, n.addr, input, "produce", "small")
	want := fmt.Sprintf("kctl: produce small: %d records failed (first: line 1): MESSAGE_TOO_LARGE (code 10): ", records)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.status != exitFailure || len(lines) != 2 || !strings.HasPrefix(lines[0], want) ||
		lines[1] != fmt.Sprintf("produced 0 records to small (%d failed)", records) {
		t.Fatalf("status %d, stderr %q; want a line starting %q and the count", r.status, r.stderr, want)
	}
}

// TestProduceOneRecordIsSingular checks the count line's grammar for one
// record.
func TestProduceOneRecordIsSingular(t *testing.T) {
	n := startNode(t, nil)
	if r := mustKctl(t, n.addr, "only\n", "produce", "single"); r.stderr != "produced 1 record to single\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// TestProduceFullDiskNamesTheCause fills the broker's disk (every write to
// a segment fails with "no space left on device") after the topic exists,
// and checks that the records that time out are summarized with the
// broker's own error, KAFKA_STORAGE_ERROR and "no space left", rather than
// only "timed out".
func TestProduceFullDiskNamesTheCause(t *testing.T) {
	var full atomic.Bool
	noSpace := disk.InjectorFunc(func(op disk.Op, name string) error {
		if full.Load() && op == disk.OpWrite && strings.HasSuffix(name, ".log") {
			return core.ErrNoSpace
		}
		return nil
	})
	n := startNodeAt(t, nodeSetup{dir: t.TempDir(), listener: "127.0.0.1:0",
		wrapFS: func(fsys core.FS) core.FS { return disk.WithFaults(fsys, noSpace) }})
	mustKctl(t, n.addr, "", "topic", "create", "events", "-p", "1")
	full.Store(true)
	r := kctl(t, n.addr, "a\nb\nc\n", "produce", "events", "--timeout", "2s")
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.status != exitFailure || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "kctl: produce events: 3 records failed (first: line 1): not delivered within 2s (--timeout); the broker's last error: KAFKA_STORAGE_ERROR") ||
		!strings.Contains(lines[0], "no space left on device") {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
}
