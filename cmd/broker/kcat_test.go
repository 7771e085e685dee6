package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// kcat runs kcat (librdkafka, an independent client) against addr with
// stdin and returns its stdout; a non-zero exit fails the test.
func kcat(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not on PATH: install it (apt-get install -y kcat; .ci/run does this) — " +
			"this test must not be skipped, since kcat is the librdkafka compatibility check")
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-b", addr, "-q"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v (hang guard hit: %v)\nstderr:\n%s", strings.Join(args, " "), err, ctx.Err() != nil, stderr.String())
	}
	return stdout.String()
}

// TestKcatEveryCodec produces lines with kcat's idempotent producer under
// each compression codec into a one-partition topic, then consumes them
// back with -e and a '%o %k %s' format from the beginning and from an
// explicit offset, and checks every line exactly, offsets included. It also
// checks that kcat -L lists the topic with its partition, leader and ISR.
func TestKcatEveryCodec(t *testing.T) {
	b := startBroker(t, t.TempDir(), "num.partitions=1")
	codecs := []string{"gzip", "snappy", "lz4", "zstd"}
	const perCodec = 5
	var want []string
	for _, codec := range codecs {
		var input strings.Builder
		for i := range perCodec {
			fmt.Fprintf(&input, "key-%s-%d:value-%s-%d\n", codec, i, codec, i)
			want = append(want, fmt.Sprintf("%d key-%s-%d value-%s-%d", len(want), codec, i, codec, i))
		}
		kcat(t, b.addr, input.String(), "-P", "-t", "lines", "-K", ":", "-z", codec, "-X", "enable.idempotence=true")
	}

	all := kcat(t, b.addr, "", "-C", "-t", "lines", "-e", "-o", "beginning", "-f", `%o %k %s\n`)
	if all != strings.Join(want, "\n")+"\n" {
		t.Fatalf("consumed from the beginning:\n%s\nwant:\n%s", all, strings.Join(want, "\n"))
	}
	const explicit = 7
	tail := kcat(t, b.addr, "", "-C", "-t", "lines", "-e", "-o", fmt.Sprint(explicit), "-f", `%o %k %s\n`)
	if tail != strings.Join(want[explicit:], "\n")+"\n" {
		t.Fatalf("consumed from offset %d:\n%s", explicit, tail)
	}
	values := kcat(t, b.addr, "", "-C", "-t", "lines", "-e", "-o", "-3")
	if values != "value-zstd-2\nvalue-zstd-3\nvalue-zstd-4\n" {
		t.Fatalf("the last three values:\n%s", values)
	}

	metadata := kcat(t, b.addr, "", "-L")
	for _, line := range []string{`topic "lines" with 1 partitions:`, "partition 0, leader 1, replicas: 1, isrs: 1"} {
		if !strings.Contains(metadata, line) {
			t.Fatalf("kcat -L lacks %q:\n%s", line, metadata)
		}
	}
}
