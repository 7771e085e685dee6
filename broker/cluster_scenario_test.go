package broker

import (
	"fmt"
	"testing"
	"time"
)

// Scripted cluster scenarios (issue 9, item 8). Each protects one rule and
// fails when that rule's code is taken out; the Raft-level ones (a
// partitioned old leader rejoining, a longer uncommitted log losing the
// election, a power loss right after a vote) are in broker/raft.

// TestRestartedBrokerDoesNotLeadOnAStaleView restarts a broker that led
// partitions and was fenced while it was down. Replaying the metadata log
// from the start, its image names it leader of those partitions again for
// a while (the old records come before the fence). It must serve none of
// them until the controller has unfenced its new incarnation, which happens
// only once it has applied its own registration, after the fence.
// Protection: cluster.leads refuses while the lifecycle is fenced.
func TestRestartedBrokerDoesNotLeadOnAStaleView(t *testing.T) {
	// A session long enough for the filler entries to commit before the
	// fence.
	sc := newSimClusterOfRoles(t, 5, 3, 3, false, func(c *Config) { c.BrokerSessionTimeoutMs = 60_000 })
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	if err := sc.createTopic("orders", 6); err != "" {
		t.Fatalf("create: %s", err)
	}
	var restarted *simClusterNode
	for _, n := range sc.nodes {
		if n != sc.activeController() {
			restarted = n
			break
		}
	}
	// Lengthen the log between the broker's crash and its fence, so that
	// its catch-up after the restart spans several Fetch answers and the
	// stale view (everything up to the crash, read back from its own disk,
	// without the fence) lasts across events.
	restarted.crash()
	crashedAt := sc.sched.Now()
	for i := range 150 {
		if err := sc.createTopicRetrying(fmt.Sprintf("filler-%d", i), 1); err != "" {
			t.Fatalf("create filler: %s", err)
		}
	}
	if b, _ := sc.activeController().node.cluster.image.Broker(restarted.id); b.Fenced {
		t.Fatalf("the broker was fenced %v after its crash, before the filler entries", sc.sched.Now()-crashedAt)
	}
	sc.runUntil("the crashed broker fenced", 90*time.Second, func() bool {
		b, _ := sc.activeController().node.cluster.image.Broker(restarted.id)
		return b.Fenced
	})
	restarted.restart()
	staleSteps := 0
	for !sc.unfenced() {
		if !sc.sched.Step() {
			t.Fatal("the simulation ran out of events")
		}
		n := restarted.node
		topic, ok := n.cluster.image.TopicByName("orders")
		if !ok {
			continue
		}
		for i, p := range topic.Partitions {
			if p.Leader != restarted.id {
				continue
			}
			if n.cluster.lifecycle.fenced {
				staleSteps++
			}
			if n.cluster.lifecycle.fenced && n.catalog.partition("orders", int32(i)) != nil {
				t.Fatalf("the restarted broker serves orders-%d as leader before it is unfenced", i)
			}
		}
	}
	if staleSteps == 0 {
		t.Fatal("the replay never showed the stale view this test is about")
	}
}

// TestControllerDiesWhileFencingABroker crashes the active controller at
// the moment it has proposed fencing a broker whose session expired, before
// the fence commits. The next controller decides from what committed: it
// gives every registered broker a fresh session when it activates, so it
// fences the dead broker once that session runs out again, and no live
// broker, whose heartbeats it has not heard yet. Protection: a fresh
// session for every registered broker (Controller.Activate, and
// expireSessions for a broker it has no session for); taking both out
// fences a live broker at once.
func TestControllerDiesWhileFencingABroker(t *testing.T) {
	// Three voters and two broker-only nodes, so that the quorum survives
	// losing a broker and the active controller.
	sc := newSimClusterWithVoters(t, 6, 5, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	if err := sc.createTopic("orders", 10); err != "" {
		t.Fatalf("create: %s", err)
	}
	active, dead := sc.activeController(), sc.nodes[4]
	dead.crash()
	crashedAt := sc.sched.Now()
	sessionTimeout := time.Duration(dead.cfg.BrokerSessionTimeoutMs) * time.Millisecond
	// Step until the controller has proposed the fence but not committed it.
	for {
		if !sc.sched.Step() {
			t.Fatal("the simulation ran out of events")
		}
		proposals, _ := active.node.cluster.controller.Pending()
		b, _ := active.node.cluster.image.Broker(dead.id)
		if b.Fenced {
			t.Fatal("the fence committed before the controller could be crashed")
		}
		// No other proposal is made once the heartbeat before the crash is
		// a few intervals old: this one is the fence.
		if proposals > 0 && sc.sched.Now()-crashedAt >= sessionTimeout/2 {
			break
		}
	}
	active.crash()
	sc.runUntil("a new active controller", 20*time.Second, func() bool {
		a := sc.activeController()
		return a != nil && a != active
	})
	// The new controller fences the dead broker once its fresh session
	// runs out, and never a live one: those heartbeat to it.
	sc.runUntil("the dead broker fenced by the new controller", 30*time.Second, func() bool {
		image := sc.activeController().node.cluster.image
		for _, n := range sc.nodes {
			if b, _ := image.Broker(n.id); n.node != nil && b.Fenced {
				t.Fatalf("the new controller fenced live broker %d", n.id)
			}
		}
		b, _ := image.Broker(dead.id)
		return b.Fenced
	})
	topic, _ := sc.activeController().node.cluster.image.TopicByName("orders")
	for i, p := range topic.Partitions {
		if p.Leader == dead.id {
			t.Fatalf("orders-%d still led by the fenced broker %d", i, p.Leader)
		}
	}
}

// TestRestartKeepsTheQuorumState restarts a voter and checks that it comes
// back with the epoch, vote and log it had: the metadata log's directory
// lives beside the partitions' and must never be taken for a leftover
// partition directory (it once was, and every restart forgot its votes).
func TestRestartKeepsTheQuorumState(t *testing.T) {
	sc := newSimCluster(t, 7, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	n := sc.nodes[0]
	epoch, end := n.node.cluster.host.Epoch(), n.node.cluster.host.EndOffset()
	if epoch == 0 || end == 0 {
		t.Fatalf("node 1 has epoch %d and log end %d before the restart", epoch, end)
	}
	n.crash()
	n.restart()
	if got := n.node.cluster.host.Epoch(); got < epoch {
		t.Fatalf("restarted in epoch %d, before the crash it was %d", got, epoch)
	}
	if got := n.node.cluster.host.EndOffset(); got < end {
		t.Fatalf("restarted with log end %d, before the crash it was %d (committed entries were lost)", got, end)
	}
}
