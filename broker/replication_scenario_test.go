package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/quorum"
)

// Known Kafka replication failures as scripted simulator scenarios (issue
// 10, item 9). Each drives a cluster of three brokers (replication factor
// 3, min.insync.replicas 2; replication_helpers_test.go) through the
// failure and asserts what clients observe: acknowledged records readable,
// offsets, error codes. Each names the protection it guards and how taking
// that protection out was shown to make it fail: a planted bug, run as
//
//	go test -tags planted -ldflags "-X github.com/kafkasim/kafkasim/core/planted.Bug=<bug>" ./broker/ -run <Test>
//
// or, where no planted bug removes the protection, a hand edit of a copy
// of the tree, with the failure message quoted.

// TestKIP101TruncationToAStaleHighWatermark is KIP-101's first scenario. A
// record acknowledged with acks=all is on every replica, but the followers
// learn the high watermark that covers it one fetch later. The leader dies
// before they do; a follower that, on following the new leader, cut its log
// at its own (stale) high watermark would drop the record, and when the new
// leader dies before that follower fetched the record again, the follower
// becomes leader without it: an acknowledged write is gone.
//
// Protection: a follower truncates only to the divergence point its leader
// names (DivergingEpoch, truncateDiverged), never to its high watermark.
// With the planted bug truncate-to-high-watermark live it fails:
//
//	acknowledged records after two failovers: ["m0" "m1" "m2" "m3" "m4"], want ["m0" "m1" "m2" "m3" "m4" "m5"]
func TestKIP101TruncationToAStaleHighWatermark(t *testing.T) {
	rc := newReplicationCluster(t, 101, nil)
	first := rc.mustState()
	leader := first.Leader
	for i := range 5 {
		rc.mustProduce(leader, -1, fmt.Sprintf("m%d", i))
	}
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(5) })

	// m5 is acknowledged; the leader dies before the answer reaches any
	// follower's next fetch, so both followers' high watermarks are stale.
	acknowledged := false
	rc.send(brokerAddress(leader), produceRaw(t, -1, 5000, "m5"), func(resp kmsg.Response, err error) {
		acknowledged = err == nil && produceCodeOf(resp) == 0
	})
	rc.stepUntil("m5 acknowledged", 10*time.Second, func() bool { return acknowledged })
	rc.broker(leader).crash()
	stale := 0
	for _, id := range others(first, leader) {
		if p := rc.local(id); p.log.LogEndOffset() == 6 && p.repl.highWatermark < 6 {
			stale++
		}
	}
	if stale == 0 {
		t.Fatal("no follower held m5 under a stale high watermark: the scenario did not happen")
	}

	// The controller fences the dead leader and elects a follower; the
	// moment the other follower starts following it, the new leader dies
	// too, before that follower could fetch anything from it.
	var last, next int32
	rc.stepUntil("a follower follows a new leader", 30*time.Second, func() bool {
		for _, id := range others(first, leader) {
			p := rc.local(id)
			if p.repl.role == roleFollower && p.repl.state.Leader != leader && p.repl.state.Leader != metadata.NoLeader {
				last, next = id, p.repl.state.Leader
				return true
			}
		}
		return false
	})
	rc.broker(next).crash()
	rc.runUntil("the last replica standing elected", 30*time.Second, func() bool {
		state, ok := rc.state()
		return ok && state.Leader == last
	})

	// Both dead brokers come back and follow it; once the ISR is large
	// enough again the high watermark moves, and every acknowledged record
	// must be readable.
	rc.restart(rc.broker(leader))
	rc.restart(rc.broker(next))
	rc.runUntil("the ISR whole and the high watermark at the log end", 60*time.Second, func() bool {
		p := rc.local(last)
		state, ok := rc.state()
		return ok && len(state.ISR) == 3 && p.repl.role == roleLeader && p.repl.highWatermark == p.log.LogEndOffset()
	})
	got := rc.consume(last)
	requireValues(t, "acknowledged records after two failovers", got.values, []string{"m0", "m1", "m2", "m3", "m4", "m5"})
	rc.requireReplicasAgree(last)
}

// TestKIP966LastReplicaStanding loses both followers of a partition with
// min.insync.replicas 2, so that the ISR shrinks to the leader alone. Then
// acks=all must be refused with NOT_ENOUGH_REPLICAS, and acks=1 writes,
// which the leader alone takes, must stay invisible to consumers: the high
// watermark does not move while the ISR is smaller than
// min.insync.replicas (KIP-966), since the last replica standing may be
// lost too and nothing it alone holds may have been read. Once a follower
// is back in the ISR they commit and become readable.
//
// Protection: advanceHighWatermark stands still below min.insync.replicas.
// With the planted bug high-watermark-below-min-isr live it fails:
//
//	consumers of the last replica standing: high watermark 5, records ["m0" "m1" "m2" "y0" "y1"]; want 3 and ["m0" "m1" "m2"] (error <nil>)
//
// (The NOT_ENOUGH_REPLICAS before the append is producePartition's ISR
// check; without it the write would wait for a high watermark that cannot
// move and time out instead, which the test reports too.)
func TestKIP966LastReplicaStanding(t *testing.T) {
	rc := newReplicationCluster(t, 966, nil)
	state := rc.mustState()
	leader := state.Leader
	rc.mustProduce(leader, -1, "m0", "m1", "m2")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(3) })
	for _, id := range others(state, leader) {
		rc.powerOff(rc.broker(id))
	}
	rc.runUntil("the ISR shrunk to the leader", 60*time.Second, func() bool {
		p := rc.local(leader)
		return len(p.repl.state.ISR) == 1 && p.repl.state.ISR[0] == leader
	})

	if code, _ := rc.produce(leader, -1, "x"); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with the leader alone in the ISR: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if offset := rc.mustProduce(leader, 1, "y0", "y1"); offset != 3 {
		t.Fatalf("acks=1 with the leader alone in the ISR: offset %d, want 3", offset)
	}
	// The leader has synced y0 and y1 long before this, alone.
	rc.runFor(5 * time.Second)
	if got := rc.consume(leader); got.code != 0 || got.highWatermark != 3 || len(got.values) != 3 {
		t.Fatalf("consumers of the last replica standing: high watermark %d, records %q; want 3 and [\"m0\" \"m1\" \"m2\"] (error %v)",
			got.highWatermark, got.values, kerr.ErrorForCode(got.code))
	}

	// A follower returns, catches up and rejoins the ISR: now two replicas
	// hold y0 and y1, which commit.
	back := others(state, leader)[0]
	rc.restart(rc.broker(back))
	rc.runUntil("the high watermark past y1", 60*time.Second, func() bool { return rc.local(leader).repl.highWatermark == 5 })
	requireValues(t, "consumers once a follower is back", rc.consume(leader).values, []string{"m0", "m1", "m2", "y0", "y1"})
	rc.requireReplicasAgree(leader)
}

// TestReplicationZombieLeaderTakesNoCommittedWrites cuts a partition's
// leader off from every other node while clients can still reach it.
// Produce carries no leader epoch, so the deposed leader, which has not
// heard of its successor, keeps taking acks=1 writes. None of them may
// ever be visible: not to consumers of the new leader, not to consumers of
// the zombie (its high watermark waits for followers that no longer fetch
// from it), and they are truncated when it returns. An acks=all write to
// it is never acknowledged, since no follower copies it.
//
// Protection: the high watermark is the smallest offset over the maximal
// ISR (advanceHighWatermark), so a leader alone cannot commit. With the
// planted bug high-watermark-ignores-followers live it fails:
//
//	an acks=all write to the zombie leader was acknowledged
func TestReplicationZombieLeaderTakesNoCommittedWrites(t *testing.T) {
	rc := newReplicationCluster(t, 320, nil)
	state := rc.mustState()
	zombie := state.Leader
	rc.mustProduce(zombie, -1, "m0", "m1", "m2")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(3) })

	rc.cutOff(rc.broker(zombie))
	if offset := rc.mustProduce(zombie, 1, "z0", "z1"); offset != 3 {
		t.Fatalf("acks=1 to the zombie: offset %d, want 3", offset)
	}
	allAnswered, allCode := false, int16(0)
	rc.send(brokerAddress(zombie), produceRaw(t, -1, 5000, "z-all"), func(resp kmsg.Response, err error) {
		allAnswered = true
		if err == nil {
			allCode = produceCodeOf(resp)
		} else {
			allCode = -1
		}
	})
	var successor int32
	rc.runUntil("a successor elected", 60*time.Second, func() bool {
		state, ok := rc.state()
		successor = state.Leader
		return ok && successor != zombie && successor != metadata.NoLeader && rc.local(successor).repl.role == roleLeader
	})
	if offset := rc.mustProduce(successor, -1, "n0", "n1"); offset != 3 {
		t.Fatalf("acks=all to the new leader: offset %d, want 3", offset)
	}
	rc.runUntil("the zombie's acks=all write answered", 30*time.Second, func() bool { return allAnswered })
	if allCode == 0 {
		t.Fatal("an acks=all write to the zombie leader was acknowledged")
	}
	requireValues(t, "consumers of the new leader", rc.consume(successor).values, []string{"m0", "m1", "m2", "n0", "n1"})
	requireValues(t, "consumers of the zombie", rc.consume(zombie).values, []string{"m0", "m1", "m2"})

	// Healed, the zombie learns of its successor, truncates what it took
	// alone and copies the new leader's records.
	rc.sched.Network().HealAll()
	rc.runUntil("the zombie back in the ISR", 60*time.Second, func() bool {
		state, ok := rc.state()
		return ok && len(state.ISR) == 3 && rc.local(zombie).repl.role == roleFollower &&
			rc.local(zombie).log.LogEndOffset() == rc.local(successor).log.LogEndOffset()
	})
	values, _ := rc.logValues(zombie)
	requireValues(t, "the zombie's log after it returned", values, []string{"m0", "m1", "m2", "n0", "n1"})
	rc.requireReplicasAgree(successor)
	requireValues(t, "consumers of the new leader after the heal", rc.consume(successor).values, []string{"m0", "m1", "m2", "n0", "n1"})
}

// TestReplicationStaleBrokerEpochDoesNotRejoinTheISR restarts a follower
// (a new broker epoch) while it is cut off from its leader, so that it is
// out of the ISR, and sends the leader a follower's Fetch in its name with
// its old broker epoch from the offset that would let it rejoin: a Fetch
// of the incarnation before the restart, delayed in the network (KIP-903:
// that incarnation may have lost data it fetched). Both layers must refuse
// it: the leader proposes no ISR change, and the controller, sent the same
// change directly in an AlterPartition, answers INELIGIBLE_REPLICA. The
// same Fetch with the current broker epoch does bring it back, so the
// refusal is the epoch's doing.
//
// Protection: maybeExpandISR requires the broker epoch the image has, and
// the controller checks every new member's epoch (alterOnePartition). With
// the planted bug isr-join-stale-broker-epoch live (the leader's check
// gone) it fails:
//
//	the leader proposed ISR [4 5 6] on a Fetch carrying broker 6's old epoch
//
// The controller's layer is asserted directly below, as TestAlterPartition
// does for the controller alone.
func TestReplicationStaleBrokerEpochDoesNotRejoinTheISR(t *testing.T) {
	rc := newReplicationCluster(t, 903, nil)
	state := rc.mustState()
	leader := state.Leader
	rc.mustProduce(leader, -1, "m0", "m1", "m2")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(3) })
	follower := others(state, leader)[1]
	oldEpoch := rc.broker(follower).node.cluster.lifecycle.brokerEpoch

	rc.cutBetween(rc.broker(follower), rc.broker(leader))
	rc.broker(follower).crash()
	rc.runUntil("the follower out of the ISR", 60*time.Second, func() bool {
		state, ok := rc.state()
		return ok && !slices.Contains(state.ISR, follower)
	})
	rc.restart(rc.broker(follower))
	rc.runUntil("the follower's new incarnation unfenced", 60*time.Second, func() bool {
		b, ok := rc.activeController().node.cluster.image.Broker(follower)
		return ok && !b.Fenced && b.Epoch != oldEpoch && rc.local(leader).repl.state.PartitionEpoch == rc.mustState().PartitionEpoch
	})

	// The leader layer: Fetches with the old epoch, at the log end.
	p := rc.local(leader)
	for range 5 {
		answered := false
		rc.send(brokerAddress(leader), replicaFetchAtEnd(p, follower, oldEpoch), func(kmsg.Response, error) { answered = true })
		rc.stepUntil("the stale Fetch answered", 30*time.Second, func() bool {
			if isr := p.repl.proposedISR; slices.Contains(isr, follower) {
				t.Fatalf("the leader proposed ISR %v on a Fetch carrying broker %d's old epoch", isr, follower)
			}
			return answered
		})
	}
	rc.runFor(2 * time.Second)
	if state := rc.mustState(); slices.Contains(state.ISR, follower) {
		t.Fatalf("broker %d rejoined the ISR %v on Fetches with its old epoch", follower, state.ISR)
	}

	// The controller layer: the same change sent directly.
	change := alterPartitionAdding(rc, follower, oldEpoch)
	active := rc.activeController()
	answered := false
	var code int16
	rc.send(active.cfg.ControllerListeners[0], change, func(resp kmsg.Response, err error) {
		answered = true
		if err != nil {
			t.Fatalf("AlterPartition: %v", err)
		}
		r := resp.(*kmsg.AlterPartitionResponse)
		code = r.ErrorCode
		if code == 0 {
			code = r.Topics[0].Partitions[0].ErrorCode
		}
	})
	rc.runUntil("the AlterPartition answered", 30*time.Second, func() bool { return answered })
	if code != kerr.IneligibleReplica.Code {
		t.Fatalf("the controller answered an ISR change adding broker %d at its old epoch with %v, want INELIGIBLE_REPLICA",
			follower, kerr.ErrorForCode(code))
	}

	// The current epoch is accepted: the refusals above were the epoch's.
	newEpoch := rc.broker(follower).node.cluster.lifecycle.brokerEpoch
	rc.send(brokerAddress(leader), replicaFetchAtEnd(p, follower, newEpoch), func(kmsg.Response, error) {})
	rc.runUntil("the follower back in the ISR at its current epoch", 30*time.Second, func() bool {
		state, ok := rc.state()
		return ok && slices.Contains(state.ISR, follower)
	})
}

// replicaFetchAtEnd is a follower's Fetch (version 15) in broker id's name
// at brokerEpoch, from the leader partition p's log end.
func replicaFetchAtEnd(p *partition, id int32, brokerEpoch int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(fetchVersion)
	req.ReplicaID = -1
	req.ReplicaState.ID, req.ReplicaState.Epoch = id, brokerEpoch
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = p.topic.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rp.CurrentLeaderEpoch = p.leaderEpoch
	rp.FetchOffset = p.log.LogEndOffset()
	rp.LastFetchedEpoch = p.log.LatestEpoch()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// alterPartitionAdding is the leader's AlterPartition adding broker id at
// brokerEpoch to the committed ISR, every other member at its current
// epoch.
func alterPartitionAdding(rc *replicationCluster, id int32, brokerEpoch int64) *kmsg.AlterPartitionRequest {
	image := rc.activeController().node.cluster.image
	state := rc.mustState()
	leader, _ := image.Broker(state.Leader)
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID, req.BrokerEpoch = state.Leader, leader.Epoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = rc.local(state.Leader).topic.id
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch = state.LeaderEpoch, state.PartitionEpoch
	for _, member := range append(slices.Clone(state.ISR), id) {
		m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		b, _ := image.Broker(member)
		m.BrokerID, m.BrokerEpoch = member, b.Epoch
		if member == id {
			m.BrokerEpoch = brokerEpoch
		}
		rp.NewEpochISR = append(rp.NewEpochISR, m)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestKIP497RemovalCountsUntilCommitted lets a follower fall behind so
// that its leader proposes removing it from the ISR, while the leader is
// cut off from the controllers and the removal cannot commit. Until it
// commits, the removed follower still counts (the maximal ISR, KIP-497):
// the high watermark must not pass what it holds, even though the other
// follower has everything. Were the removal counted at once, a leader
// whose proposal then fails (it was deposed meanwhile, say) would have
// committed records that the ISR the controller knows does not hold, and a
// leader elected from that ISR would lose them. Once the removal commits,
// the records commit.
//
// Protection: the high watermark is taken over maximalISR, the committed
// ISR plus pending additions. No planted bug removes it; with maximalISR
// changed by hand to return the proposed ISR while one is pending, it
// fails:
//
//	the high watermark moved to 6 while the removal of broker 5 was not committed
//
// The planted bug high-watermark-ignores-followers, which drops every
// follower from the high watermark, fails it with the same message.
func TestKIP497RemovalCountsUntilCommitted(t *testing.T) {
	rc := newReplicationCluster(t, 497, func(c *Config) {
		// A follower leaves the ISR fast, and the leader cut off from
		// the controllers keeps its session meanwhile.
		c.ReplicaLagTimeMaxMs = 2000
		c.BrokerSessionTimeoutMs = 60_000
	})
	state := rc.mustState()
	leader := state.Leader
	removed, kept := others(state, leader)[0], others(state, leader)[1]
	rc.mustProduce(leader, -1, "m0", "m1", "m2")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(3) })

	for _, c := range rc.controllers() {
		rc.cutBetween(rc.broker(leader), c)
	}
	rc.cutBetween(rc.broker(leader), rc.broker(removed))
	if offset := rc.mustProduce(leader, 1, "x0", "x1", "x2"); offset != 3 {
		t.Fatalf("acks=1: offset %d, want 3", offset)
	}
	p := rc.local(leader)
	pending := false
	deadline := rc.sched.Now() + 8*time.Second
	rc.stepUntil("eight seconds", 10*time.Second, func() bool {
		if isr := p.repl.proposedISR; isr != nil && !slices.Contains(isr, removed) {
			pending = true
		}
		if p.repl.highWatermark > 3 {
			t.Fatalf("the high watermark moved to %d while the removal of broker %d was not committed", p.repl.highWatermark, removed)
		}
		return rc.sched.Now() >= deadline
	})
	if !pending || rc.local(kept).log.LogEndOffset() != 6 {
		t.Fatalf("the scenario did not happen: removal pending %v, the kept follower's log end %d (want 6)",
			pending, rc.local(kept).log.LogEndOffset())
	}
	if got := rc.consume(leader); got.highWatermark != 3 || len(got.values) != 3 {
		t.Fatalf("consumers while the removal is pending: high watermark %d, records %q; want 3 and 3 records", got.highWatermark, got.values)
	}

	// The leader reaches the controllers again: the removal commits and
	// the two remaining members, enough for min.insync.replicas, commit
	// x0 to x2.
	for _, c := range rc.controllers() {
		rc.healBetween(rc.broker(leader), c)
	}
	rc.runUntil("the removal committed and the records with it", 30*time.Second, func() bool {
		state, ok := rc.state()
		return ok && !slices.Contains(state.ISR, removed) && p.repl.highWatermark == 6
	})
	requireValues(t, "consumers once the removal committed", rc.consume(leader).values, []string{"m0", "m1", "m2", "x0", "x1", "x2"})
}

// TestKIP101PowerLossOfEveryReplica is KIP-101's second scenario in
// durable mode: every replica loses power right after a record was
// acknowledged with acks=all. Whichever replica the controller can elect
// afterwards (here a follower: the leader was cut off from the controllers
// a few seconds before, so its session expired first and it left the ISR
// first), the record must be there, and the replicas, which restart with
// whatever their disks kept, must not diverge.
//
// Protection: a follower sends its next Fetch, whose offset the leader
// counts in the high watermark, only once what it fetched is durable
// (replicaFetcher.ready); the leader's own part is committedEnd. No
// planted bug removes the follower's part; with ready changed by hand to
// send the next Fetch while a sync is in flight or the log is not durable
// to its end, it fails:
//
//	acknowledged records after every replica lost power: ["m0" "m1" "m2" "m3" "m4"], want ["m0" "m1" "m2" "m3" "m4" "p"]
//
// The planted bug high-watermark-ignores-followers (the leader does not
// wait for its followers' durable offsets at all) fails it with the same
// message.
//
// (In write-caching mode acks=all promises no such thing: see
// docs/durability.md.)
func TestKIP101PowerLossOfEveryReplica(t *testing.T) {
	rc := newReplicationCluster(t, 102, nil)
	state := rc.mustState()
	leader := state.Leader
	rc.mustProduce(leader, -1, "m0", "m1", "m2", "m3", "m4")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(5) })
	for _, c := range rc.controllers() {
		rc.cutBetween(rc.broker(leader), c)
	}
	rc.runFor(4 * time.Second)

	acknowledged := false
	rc.send(brokerAddress(leader), produceRaw(t, -1, 5000, "p"), func(resp kmsg.Response, err error) {
		acknowledged = err == nil && produceCodeOf(resp) == 0
	})
	rc.stepUntil("p acknowledged", 10*time.Second, func() bool { return acknowledged })
	for _, id := range state.Replicas {
		rc.powerOff(rc.broker(id))
	}
	rc.runUntil("every broker fenced", 60*time.Second, func() bool {
		for _, id := range state.Replicas {
			if b, _ := rc.activeController().node.cluster.image.Broker(id); !b.Fenced {
				return false
			}
		}
		return true
	})
	rc.sched.Network().HealAll()
	for _, id := range state.Replicas {
		rc.restart(rc.broker(id))
	}
	var elected int32
	rc.runUntil("a leader with a whole ISR and the high watermark at its log end", 60*time.Second, func() bool {
		state, ok := rc.state()
		elected = state.Leader
		if !ok || elected == metadata.NoLeader || len(state.ISR) != 3 || rc.local(elected) == nil {
			return false
		}
		p := rc.local(elected)
		return p.repl.role == roleLeader && p.repl.highWatermark == p.log.LogEndOffset()
	})
	if elected == leader {
		t.Fatalf("the old leader %d leads again: the scenario needs a follower elected after the power loss", leader)
	}
	requireValues(t, "acknowledged records after every replica lost power", rc.consume(elected).values,
		[]string{"m0", "m1", "m2", "m3", "m4", "p"})
	rc.requireReplicasAgree(elected)
}

// TestKIP279FastDoubleFailover changes a partition's leader twice in
// quick succession, each leader writing records no other replica copied:
// broker L leads in one epoch and takes b5 and b6 that the preferred
// replica P, cut off from it, never fetched; a preferred-replica election
// then hands the leadership to P (still in the ISR), which takes c5 that
// nobody fetched; P dies at once and L leads again. When P returns as
// L's follower its last epoch is one L never had, and the epoch L answers
// with is one P never had: P must cut at the end of its own older epoch,
// where the two logs last agreed, and not at the offset L named, which
// would keep c5 at the offset where every other replica holds b5 and leave
// the logs diverged below the high watermark (KIP-279).
//
// Protection: truncateDiverged looks up the leader's epoch in its own log
// and cuts at its own end of the nearest older epoch when it lacks that
// epoch. No planted bug removes it; with truncateDiverged changed by hand
// to cut at min(the leader's end offset, its log end), as Kafka did before
// KIP-279, it fails:
//
//	broker 4 never rejoined the ISR; its log holds ["m0" "m1" "m2" "m3" "m4" "c5"] in epochs [0 0 0 0 0 2]
//
// Our followers check their last fetched epoch on every Fetch, so the
// pre-KIP-279 cut does not diverge the logs silently as it did in Kafka:
// the follower keeps c5, is told again that it diverged, and never
// catches up. The tree before c810709 (a new leader did not yet assign
// its epoch's start in its epoch cache, so it answered this follower with
// an unknown epoch) fails the same way. (With the planted bug
// truncate-to-high-watermark the first leader drops b5 and b6 on becoming
// a follower, and the test stops at its check that the scenario happened.)
func TestKIP279FastDoubleFailover(t *testing.T) {
	rc := newReplicationCluster(t, 279, nil)
	state := rc.mustState()
	preferred := state.Replicas[0]
	rc.mustProduce(state.Leader, -1, "m0", "m1", "m2", "m3", "m4")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(5) })
	if state.Leader == preferred {
		// Move the leadership off the preferred replica, and let the
		// preferred replica rejoin the ISR as a follower.
		rc.broker(preferred).crash()
		rc.runUntil("another leader", 30*time.Second, func() bool {
			state, ok := rc.state()
			return ok && state.Leader != preferred && state.Leader != metadata.NoLeader
		})
		rc.restart(rc.broker(preferred))
		rc.runUntil("the preferred replica back in the ISR", 60*time.Second, func() bool {
			state, ok := rc.state()
			p := rc.local(preferred)
			return ok && len(state.ISR) == 3 && p != nil && p.repl.role == roleFollower && p.repl.state.LeaderEpoch == state.LeaderEpoch
		})
	}
	state = rc.mustState()
	leader, third := state.Leader, third(state, preferred, state.Leader)

	// The first leader takes records the preferred replica never fetches.
	rc.cutBetween(rc.broker(preferred), rc.broker(leader))
	rc.cutBetween(rc.broker(preferred), rc.broker(third))
	if offset := rc.mustProduce(leader, 1, "b5", "b6"); offset != 5 {
		t.Fatalf("acks=1 to broker %d: offset %d, want 5", leader, offset)
	}
	rc.runUntil("the third replica has b5 and b6", 5*time.Second, func() bool { return rc.local(third).log.LogEndOffset() == 7 })

	// First failover: the preferred replica, still in the ISR, leads.
	elect := kmsg.NewPtrElectLeadersRequest()
	elect.Version, elect.ElectionType, elect.TimeoutMillis = 1, 0, 10_000
	target := kmsg.NewElectLeadersRequestTopic()
	target.Topic, target.Partitions = replicationTopic, []int32{0}
	elect.Topics = append(elect.Topics, target)
	answer := rc.roundTrip(third, elect).(*kmsg.ElectLeadersResponse)
	if code := answer.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("preferred election: %v", kerr.ErrorForCode(code))
	}
	rc.runUntil("the preferred replica leads", 10*time.Second, func() bool { return rc.local(preferred).repl.role == roleLeader })
	if offset := rc.mustProduce(preferred, 1, "c5"); offset != 5 {
		t.Fatalf("acks=1 to broker %d: offset %d, want 5", preferred, offset)
	}
	rc.runUntil("c5 durable", 5*time.Second, func() bool { return rc.local(preferred).log.DurableEndOffset() == 6 })

	// The case KIP-279 is about: the preferred replica's last epoch is
	// one the first leader never had, and the first leader's epoch at
	// offset 5 is one the preferred replica never had.
	own, first := rc.local(preferred).log.EpochEntries(), rc.local(leader).log.EpochEntries()
	if slices.Contains(first, own[len(own)-1]) || slices.Contains(own, first[len(first)-1]) {
		t.Fatalf("the scenario did not happen: epochs %v on broker %d, %v on broker %d", own, preferred, first, leader)
	}

	// Second failover, at once: the preferred replica dies and the first
	// leader leads again.
	rc.broker(preferred).crash()
	rc.runUntil("the first leader leads again", 30*time.Second, func() bool {
		state, ok := rc.state()
		return ok && state.Leader == leader && rc.local(leader).repl.role == roleLeader
	})
	rc.sched.Network().HealAll()
	rc.restart(rc.broker(preferred))
	rejoined := rc.within(60*time.Second, func() bool {
		state, ok := rc.state()
		return ok && len(state.ISR) == 3
	})
	if !rejoined {
		values, epochs := rc.logValues(preferred)
		t.Fatalf("broker %d never rejoined the ISR; its log holds %q in epochs %v", preferred, values, epochs)
	}
	n := rc.mustProduce(leader, -1, "n")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(n + 1) })
	requireValues(t, "consumers of the leader", rc.consume(leader).values, []string{"m0", "m1", "m2", "m3", "m4", "b5", "b6", "n"})
	rc.requireReplicasAgree(leader)
}

// TestReplicationNotEnoughReplicasAfterAppend parks an acks=all write on
// the leader, then powers both followers off: once the ISR shrinks to the
// leader alone, below min.insync.replicas 2, the write is answered
// NOT_ENOUGH_REPLICAS_AFTER_APPEND at once (indefinite for the producer),
// not left to time out a minute later.
//
// Protection: setRole fails the high watermark's waiters when the ISR
// drops below the minimum. With the planted bug wait-out-a-shrunk-isr live
// it fails:
//
//	not within 1m30s: the parked write answered
func TestReplicationNotEnoughReplicasAfterAppend(t *testing.T) {
	rc := newReplicationCluster(t, 20, nil)
	state := rc.mustState()
	leader := state.Leader
	rc.mustProduce(leader, -1, "m0")
	rc.runUntil("every replica knows the high watermark", 10*time.Second, func() bool { return rc.highWatermarksAt(1) })
	for _, id := range others(state, leader) {
		rc.powerOff(rc.broker(id))
	}
	host := rc.sched.Node("client")
	patient := quorum.NewChannel(host.Env(), host.Env().Log, brokerAddress(leader), "patient-producer", 5*time.Minute)
	var code int16 = -1
	patient.Send(produceRaw(t, -1, 120_000, "x"), func(resp kmsg.Response, err error) {
		if err == nil {
			code = produceCodeOf(resp)
		}
	})
	rc.runUntil("the parked write answered", 90*time.Second, func() bool { return code >= 0 })
	if code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("the parked acks=all write was answered %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", kerr.ErrorForCode(code))
	}
	if isr := rc.local(leader).repl.state.ISR; len(isr) != 1 {
		t.Fatalf("answered with the ISR %v, want the leader alone", isr)
	}
}
