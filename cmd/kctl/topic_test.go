package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/broker"
)

// TestTopicLifecycle drives create, list, describe, add-partitions and
// delete against a real node and checks each command's output: the
// created topic's shape, the non-default config in describe, the partition
// table with leader, replicas, ISR and offsets, and that a deleted topic
// is gone.
func TestTopicLifecycle(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.AutoCreateTopics = false })

	created := mustKctl(t, n.addr, "", "topic", "create", "orders", "-p", "3", "-c", "retention.ms=60000")
	if !regexp.MustCompile(`^created topic orders: 3 partitions, replication factor 1, id [A-Za-z0-9_-]{22}\n$`).MatchString(created.stdout) {
		t.Fatalf("create output %q", created.stdout)
	}
	audit := mustKctl(t, n.addr, "", "topic", "create", "audit") // broker defaults: 1 partition
	if !strings.HasPrefix(audit.stdout, "created topic audit: 1 partition, replication factor 1, id ") {
		t.Fatalf("create output %q", audit.stdout)
	}

	list := mustKctl(t, n.addr, "", "topic", "list")
	wantList := [][]string{{"NAME", "PARTITIONS", "REPLICAS"}, {"audit", "1", "1"}, {"orders", "3", "1"}}
	if got := fields(list.stdout); !equalRows(got, wantList) {
		t.Fatalf("topic list:\n%s", list.stdout)
	}
	internal := mustKctl(t, n.addr, "", "topic", "list", "--internal")
	if !strings.Contains(internal.stdout, "__consumer_offsets") {
		t.Fatalf("topic list --internal omits __consumer_offsets:\n%s", internal.stdout)
	}

	mustKctl(t, n.addr, "a\nb\nc\n", "produce", "orders", "-p", "2")
	describe := mustKctl(t, n.addr, "", "topic", "describe", "orders")
	rows := fields(describe.stdout)
	for _, want := range [][]string{
		{"NAME", "orders"}, {"PARTITIONS", "3"}, {"REPLICAS", "1"}, {"CONFIGS", "retention.ms=60000"},
		{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"},
		{"0", "1", "0", "1", "1", "0", "0"},
		{"1", "1", "0", "1", "1", "0", "0"},
		{"2", "1", "0", "1", "1", "0", "3"},
	} {
		if !containsRow(rows, want) {
			t.Fatalf("topic describe lacks row %v:\n%s", want, describe.stdout)
		}
	}
	if strings.Contains(describe.stdout, "segment.bytes") {
		t.Fatalf("topic describe shows a default config:\n%s", describe.stdout)
	}

	added := mustKctl(t, n.addr, "", "topic", "add-partitions", "orders", "-n", "2")
	if added.stdout != "added 2 partitions to topic orders\n" {
		t.Fatalf("add-partitions output %q", added.stdout)
	}
	if !containsRow(fields(mustKctl(t, n.addr, "", "topic", "list").stdout), []string{"orders", "5", "1"}) {
		t.Fatal("orders does not have 5 partitions after add-partitions")
	}

	deleted := mustKctl(t, n.addr, "", "topic", "delete", "orders", "audit")
	if deleted.stdout != "deleted topic orders\ndeleted topic audit\n" {
		t.Fatalf("delete output %q", deleted.stdout)
	}
	if got := fields(mustKctl(t, n.addr, "", "topic", "list").stdout); len(got) != 1 {
		t.Fatalf("topics left after delete: %v", got)
	}
}

// TestTopicErrorsNameKafkaCodes checks that a request the broker refuses
// exits with status 1 and one line per failed topic naming the Kafka error
// code, while the topics that succeeded are still reported on stdout.
func TestTopicErrorsNameKafkaCodes(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.AutoCreateTopics = false })
	mustKctl(t, n.addr, "", "topic", "create", "exists")

	cases := []struct {
		name       string
		args       []string
		wantStdout string
		wantStderr []string // one expected substring per stderr line
	}{
		{"already exists", []string{"topic", "create", "exists", "fresh"},
			"created topic fresh", []string{"topic create exists: TOPIC_ALREADY_EXISTS (code 36)"}},
		{"bad config", []string{"topic", "create", "cfg", "-c", "retention.ms=soon"},
			"", []string{"topic create cfg: INVALID_CONFIG (code 40)"}},
		{"replication factor", []string{"topic", "create", "rf", "-r", "3"},
			"", []string{"topic create rf: INVALID_REPLICATION_FACTOR (code 38)"}},
		{"describe unknown", []string{"topic", "describe", "nope"},
			"", []string{"topic describe nope: UNKNOWN_TOPIC_OR_PARTITION (code 3)"}},
		{"delete unknown", []string{"topic", "delete", "nope", "fresh"},
			"deleted topic fresh", []string{"topic delete nope: UNKNOWN_TOPIC_OR_PARTITION (code 3)"}},
		{"consume unknown", []string{"consume", "nope", "-e"},
			"", []string{"consume nope: UNKNOWN_TOPIC_OR_PARTITION (code 3)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kctl(t, n.addr, "", c.args...)
			if r.status != exitFailure {
				t.Fatalf("exit status %d, want %d; stderr %q", r.status, exitFailure, r.stderr)
			}
			if !strings.Contains(r.stdout, c.wantStdout) || (c.wantStdout == "" && r.stdout != "") {
				t.Fatalf("stdout %q, want %q", r.stdout, c.wantStdout)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != len(c.wantStderr) {
				t.Fatalf("stderr has %d lines, want %d: %q", len(lines), len(c.wantStderr), r.stderr)
			}
			for i, want := range c.wantStderr {
				if !strings.HasPrefix(lines[i], "kctl: ") || !strings.Contains(lines[i], want) {
					t.Fatalf("stderr line %q, want it to contain %q", lines[i], want)
				}
			}
		})
	}
}

// fields splits output into rows of whitespace-separated cells.
func fields(text string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

func equalRows(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
			return false
		}
	}
	return true
}

func containsRow(rows [][]string, want []string) bool {
	for _, row := range rows {
		if strings.Join(row, " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}
