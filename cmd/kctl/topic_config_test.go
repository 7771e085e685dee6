package main

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTopicConfigShow creates a topic with one override and checks that
// topic config lists every setting sorted by name with its value and
// source: the override from the topic, the rest from defaults.
func TestTopicConfigShow(t *testing.T) {
	n := startNode(t, nil)
	mustKctl(t, n.addr, "", "topic", "create", "orders", "-c", "retention.ms=60000")
	r := mustKctl(t, n.addr, "", "topic", "config", "orders")
	rows := fields(r.stdout)
	if len(rows) < 3 || !equalRows(rows[:1], [][]string{{"NAME", "VALUE", "SOURCE"}}) {
		t.Fatalf("topic config output:\n%s", r.stdout)
	}
	if !containsRow(rows, []string{"retention.ms", "60000", "dynamic-topic"}) {
		t.Fatalf("the override is not shown as a topic setting:\n%s", r.stdout)
	}
	for i := 2; i < len(rows); i++ {
		if rows[i-1][0] >= rows[i][0] {
			t.Fatalf("settings not sorted by name (%s before %s):\n%s", rows[i-1][0], rows[i][0], r.stdout)
		}
	}
	missing := kctl(t, n.addr, "", "topic", "config", "absent")
	if missing.status != exitFailure || !strings.HasPrefix(missing.stderr, "kctl: describe configs of absent: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("config of a missing topic: status %d stderr %q", missing.status, missing.stderr)
	}
}

// TestTopicConfigAlter sets one setting and deletes another with one
// command and checks the printed settings after the change: the new value
// as a topic setting, the deleted one back at its default. It needs the
// broker's IncrementalAlterConfigs and skips only when ApiVersions does
// not list it.
func TestTopicConfigAlter(t *testing.T) {
	n := startNode(t, nil)
	if !supportsAPI(t, n.addr, kmsg.IncrementalAlterConfigs.Int16()) {
		t.Skip("the broker does not implement IncrementalAlterConfigs yet (ApiVersions)")
	}
	mustKctl(t, n.addr, "", "topic", "create", "orders", "-c", "max.message.bytes=2000000")
	r := mustKctl(t, n.addr, "", "topic", "config", "orders", "--set", "compression.type=lz4", "--delete", "max.message.bytes")
	rows := fields(r.stdout)
	if !containsRow(rows, []string{"compression.type", "lz4", "dynamic-topic"}) {
		t.Fatalf("--set is not shown as a topic setting:\n%s", r.stdout)
	}
	for _, row := range rows {
		if len(row) == 3 && row[0] == "max.message.bytes" && row[2] == "dynamic-topic" {
			t.Fatalf("--delete left the override:\n%s", r.stdout)
		}
	}
	again := mustKctl(t, n.addr, "", "topic", "config", "orders")
	if again.stdout != r.stdout {
		t.Fatalf("the change did not persist: after it\n%s\nlater\n%s", r.stdout, again.stdout)
	}
	for _, bad := range [][]string{{"--set", "compression.type=brotli"}, {"--set", "no.such.setting=1"}} {
		b := kctl(t, n.addr, "", append([]string{"topic", "config", "orders"}, bad...)...)
		if b.status != exitFailure || !strings.HasPrefix(b.stderr, "kctl: alter configs of orders: ") ||
			strings.Count(b.stderr, "\n") != 1 {
			t.Fatalf("%v: status %d stderr %q, want status 1 and one line", bad, b.status, b.stderr)
		}
	}
}

// supportsAPI asks the broker's ApiVersions whether it implements key.
func supportsAPI(t *testing.T, addr string, key int16) bool {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			return true
		}
	}
	return false
}
