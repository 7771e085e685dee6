package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestGroupConsumeSurvivesBrokerRestart starts an endless group consume,
// stops the broker (as a clean shutdown does) and starts it again on the
// same data directory and port two seconds later, then produces more
// records and checks that the same kctl process prints them too, reported
// the outage and the recovery on stderr, exits 0 when interrupted, and
// committed everything it printed. Before the fix the consume exited with
// "unable to join group session: ... connection refused".
func TestGroupConsumeSurvivesBrokerRestart(t *testing.T) {
	consumeAcrossRestart(t, "tail")
}

// TestConsumeSurvivesBrokerRestart is the same without a group: the
// client keeps its positions in memory and continues after the restart.
func TestConsumeSurvivesBrokerRestart(t *testing.T) {
	consumeAcrossRestart(t, "")
}

// consumeAcrossRestart runs the restart scenario, in group when it is not
// empty.
func consumeAcrossRestart(t *testing.T, group string) {
	t.Helper()
	dir := t.TempDir()
	first := startNodeAt(t, nodeSetup{dir: dir, listener: "127.0.0.1:0"})
	if missing := missingGroupAPIs(t, first.addr); len(missing) > 0 {
		t.Skipf("the broker does not implement %s yet (ApiVersions)", strings.Join(missing, ", "))
	}
	addr := first.addr
	mustKctl(t, addr, "a\nb\n", "produce", "feed")

	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var stdout, stderr syncBuffer
	status := make(chan int, 1)
	go func() {
		args := []string{"-b", addr, "consume", "feed"}
		if group != "" {
			args = append(args, "-g", group)
		}
		status <- runContext(ctx, args, strings.NewReader(""), &stdout, &stderr)
	}()
	waitForOutput(t, &stdout, "a\nb\n")
	if group != "" {
		// Commits are periodic; a restart before one would print a and b
		// again (at least once, as Kafka's consumers promise), which is
		// not what this test is about.
		waitForCommit(t, addr, group, "feed", 2)
	}

	first.stop()
	select {
	case s := <-status:
		t.Fatalf("consume exited with status %d when the broker stopped; stderr %q", s, stderr.String())
	case <-time.After(2 * time.Second): // the broker stays away while the client retries
	}
	second := startNodeAt(t, nodeSetup{dir: dir, listener: addr})
	mustKctl(t, second.addr, "c\nd\n", "produce", "feed")
	waitForOutput(t, &stdout, "a\nb\nc\nd\n")

	interrupt()
	select {
	case s := <-status:
		if s != exitOK {
			t.Fatalf("interrupted consume: status %d stderr %q", s, stderr.String())
		}
	case <-time.After(hangGuard):
		t.Fatal("hang guard: consume did not exit after the interrupt")
	}
	// Whether kgo surfaces the outage depends on whether it tried to
	// rejoin while the broker was away; if it did, the outage is one line
	// and the recovery another.
	if outage := strings.Count(stderr.String(), "; retrying until it is back (Ctrl-C to stop)\n"); outage > 1 ||
		stderr.String() != "" && !strings.HasSuffix(stderr.String(), "kctl: consume feed: receiving records again\n") {
		t.Fatalf("stderr %q; want nothing, or the outage once and the recovery", stderr.String())
	}
	if group == "" {
		return
	}
	rows := fields(mustKctl(t, addr, "", "group", "describe", group).stdout)
	if !containsRow(rows, []string{"feed", "0", "4", "4", "0", "-"}) {
		t.Fatalf("committed offsets after the restart: %v", rows)
	}
}

// waitForOutput polls out until it equals want; the hang guard fails a
// test that waits forever.
func waitForOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: output %q, want %q", out.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForCommit polls group describe until the group's committed offset of
// partition 0 of topic is want.
func waitForCommit(t *testing.T, addr, group, topic string, want int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		rows := fields(mustKctl(t, addr, "", "group", "describe", group).stdout)
		for _, row := range rows {
			if len(row) >= 3 && row[0] == topic && row[1] == "0" && row[2] == fmt.Sprint(want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: group %s never committed %d: %v", group, want, rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
