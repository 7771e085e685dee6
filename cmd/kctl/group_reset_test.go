package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkasim/kafkasim/broker"
)

// TestResetOffsetsModes commits offsets 5 and 5 on a two-partition topic
// with a group consume, then walks every reset mode: each prints its plan
// (topic, partition, current, new) and, only with --execute, commits it,
// which the next plan's CURRENT-OFFSET column shows. Offsets beyond the
// log are kept within it, as Kafka's tool keeps them.
func TestResetOffsetsModes(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.NumPartitions = 2 })
	if missing := missingGroupAPIs(t, n.addr); len(missing) > 0 {
		t.Skipf("the broker does not implement %s yet (ApiVersions)", strings.Join(missing, ", "))
	}
	mustKctl(t, n.addr, "a\nb\nc\nd\ne\n", "produce", "orders", "-p", "0")
	mustKctl(t, n.addr, "f\ng\nh\ni\nj\n", "produce", "orders", "-p", "1")
	mustKctl(t, n.addr, "", "consume", "orders", "-g", "billing", "-e")

	cases := []struct {
		name string
		args []string
		want [][]string // plan rows after the header
	}{
		{"dry run changes nothing", []string{"--to-earliest"}, [][]string{{"orders", "0", "5", "0"}, {"orders", "1", "5", "0"}}},
		{"earliest", []string{"--to-earliest", "--execute"}, [][]string{{"orders", "0", "5", "0"}, {"orders", "1", "5", "0"}}},
		{"shift forward", []string{"--shift-by", "2", "--execute"}, [][]string{{"orders", "0", "0", "2"}, {"orders", "1", "0", "2"}}},
		{"shift back beyond the start", []string{"--shift-by", "-7", "--execute"}, [][]string{{"orders", "0", "2", "0"}, {"orders", "1", "2", "0"}}},
		{"offset on one partition", []string{"--to-offset", "3", "--execute"}, [][]string{{"orders", "1", "0", "3"}}},
		{"offset beyond the end", []string{"--to-offset", "99", "--execute"}, [][]string{{"orders", "0", "0", "5"}, {"orders", "1", "3", "5"}}},
		{"latest", []string{"--to-latest", "--execute"}, [][]string{{"orders", "0", "5", "5"}, {"orders", "1", "5", "5"}}},
	}
	for _, c := range cases {
		topic := "orders"
		if c.name == "offset on one partition" {
			topic = "orders:1"
		}
		args := append([]string{"group", "reset-offsets", "billing", "--topic", topic}, c.args...)
		r := mustKctl(t, n.addr, "", args...)
		want := append([][]string{{"TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"}}, c.want...)
		if got := fields(r.stdout); !equalRows(got, want) {
			t.Fatalf("%s: plan\n%s\nwant %v", c.name, r.stdout, want)
		}
		executed := strings.Contains(strings.Join(c.args, " "), "--execute")
		if executed != strings.HasPrefix(r.stderr, "committed new offsets of group billing") ||
			!executed != strings.HasPrefix(r.stderr, "dry run: group billing is unchanged") {
			t.Fatalf("%s: stderr %q", c.name, r.stderr)
		}
	}
	// The last reset committed the end offsets: a group consume now has
	// nothing to print.
	if r := mustKctl(t, n.addr, "", "consume", "orders", "-g", "billing", "-e"); r.stdout != "" {
		t.Fatalf("consume after --to-latest printed %q", r.stdout)
	}
}

// TestResetOffsetsToDatetime writes records on both sides of a moment and
// checks that --to-datetime picks the first record at or after it
// (ListOffsets by timestamp), the end offset when no record is that late,
// and the log start for a time before every record.
func TestResetOffsetsToDatetime(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.NumPartitions = 2 })
	mustKctl(t, n.addr, "a\nb\nc\n", "produce", "events", "-p", "0")
	mustKctl(t, n.addr, "x\ny\n", "produce", "events", "-p", "1")
	time.Sleep(20 * time.Millisecond) // record timestamps are milliseconds; keep the moment between them
	moment := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	mustKctl(t, n.addr, "d\ne\n", "produce", "events", "-p", "0")

	cases := []struct {
		at   string
		want [][]string
	}{
		{moment.Format(time.RFC3339Nano), [][]string{{"events", "0", "-", "3"}, {"events", "1", "-", "2"}}},
		{"2000-01-01T00:00:00Z", [][]string{{"events", "0", "-", "0"}, {"events", "1", "-", "0"}}},
		{moment.Add(time.Hour).Format(time.RFC3339), [][]string{{"events", "0", "-", "5"}, {"events", "1", "-", "2"}}},
	}
	for _, c := range cases {
		r := mustKctl(t, n.addr, "", "group", "reset-offsets", "fresh", "--topic", "events", "--to-datetime", c.at)
		want := append([][]string{{"TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"}}, c.want...)
		if got := fields(r.stdout); !equalRows(got, want) {
			t.Fatalf("--to-datetime %s: plan\n%s\nwant %v", c.at, r.stdout, want)
		}
	}
}

// TestResetOffsetsRefusals checks the one-line failures: a shift without a
// committed offset, a partition or topic that does not exist, and a group
// with a live member (a kgo consumer joined to it), which Kafka's tool
// refuses too because the member would overwrite the reset.
func TestResetOffsetsRefusals(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.NumPartitions = 2 })
	if missing := missingGroupAPIs(t, n.addr); len(missing) > 0 {
		t.Skipf("the broker does not implement %s yet (ApiVersions)", strings.Join(missing, ", "))
	}
	mustKctl(t, n.addr, "a\n", "produce", "jobs")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic", "jobs", "--shift-by", "-1"}, "kctl: --shift-by: group idle has no committed offset for jobs partition 0 to shift"},
		{[]string{"--topic", "jobs:7", "--to-earliest"}, "kctl: reset-offsets --topic jobs: partition 7 does not exist (the topic has 2)"},
		{[]string{"--topic", "nope", "--to-earliest"}, "kctl: reset-offsets --topic nope: UNKNOWN_TOPIC_OR_PARTITION"},
	} {
		r := kctl(t, n.addr, "", append([]string{"group", "reset-offsets", "idle"}, c.args...)...)
		if r.status != exitFailure || !strings.HasPrefix(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: status %d stderr %q, want status 1 and %q", c.args, r.status, r.stderr, c.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	assigned := make(chan struct{}, 1)
	member, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.ConsumerGroup("busy"), kgo.ConsumeTopics("jobs"),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	go member.PollFetches(ctx)
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("the kgo member was never assigned partitions")
	}
	r := kctl(t, n.addr, "", "group", "reset-offsets", "busy", "--topic", "jobs", "--to-earliest", "--execute")
	want := "kctl: group busy has 1 live member (state Stable); offsets can only be reset while the group is inactive: stop its consumers first\n"
	if r.status != exitFailure || r.stderr != want || r.stdout != "" {
		t.Fatalf("reset with a live member: status %d stdout %q stderr %q, want %q", r.status, r.stdout, r.stderr, want)
	}
}
