package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKafkajs drives the broker with kafkajs (Node.js), a third
// independent client with its own protocol versions: topic administration,
// an idempotent producer with and without gzip, a consumer group reading
// every record, and the group's committed offsets (testdata/kafkajs). .ci/run
// installs Node's dependencies; without them the test fails, it is not
// skipped.
func TestKafkajs(t *testing.T) {
	dir, err := filepath.Abs("testdata/kafkajs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not on PATH: install Node.js (.ci/run does) — this is the kafkajs compatibility check")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		t.Fatalf("kafkajs is not installed: run (cd %s && npm ci) — .ci/run does this", dir)
	}
	b := startBroker(t, t.TempDir(), "num.partitions=3")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "check.js"), b.addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafkajs check: %v (hang guard hit: %v)\nstdout:\n%s\nstderr:\n%s", err, ctx.Err() != nil, stdout.String(), stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "ok 40" {
		t.Fatalf("kafkajs check printed %q, want %q", got, "ok 40")
	}
}
