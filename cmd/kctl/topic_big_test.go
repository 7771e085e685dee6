package main

import (
	"strings"
	"testing"
)

// TestTopicCreateOutlastingTheTimeout creates a topic of 1,000 partitions
// with a --timeout far shorter than the creation (the broker creates a
// chunk of partitions per loop turn and answers REQUEST_TIMED_OUT at the
// request's timeout, going on). kctl must report success once the topic
// is complete, as it then is. Before, it reported a failure although the
// topic was created. On a machine fast enough to create them all within
// the timeout, the plain success path runs instead and the test checks
// the same outcome.
func TestTopicCreateOutlastingTheTimeout(t *testing.T) {
	n := startNode(t, nil)
	r := mustKctl(t, n.addr, "", "--timeout", "500ms", "topic", "create", "big", "-p", "1000")
	t.Logf("kctl said: %q", r.stdout)
	if !strings.HasPrefix(r.stdout, "created topic big") {
		t.Fatalf("create output %q, stderr %q", r.stdout, r.stderr)
	}
	d := mustKctl(t, n.addr, "", "topic", "describe", "big")
	if !strings.Contains(d.stdout, "PARTITIONS  1000") {
		t.Fatalf("describe after the create:\n%s", d.stdout)
	}
}
