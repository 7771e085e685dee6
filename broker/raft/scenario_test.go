package raft

import (
	"fmt"
	"hash/fnv"
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// failureRecorder is a reporter that records a failure and unwinds, so that
// a test can require a scenario to fail once its protection is removed.
type failureRecorder struct{ message string }

// errRecordedFailure unwinds the scenario after the recorder saw a failure.
var errRecordedFailure = fmt.Errorf("recorded failure")

func (r *failureRecorder) Helper() {}

func (r *failureRecorder) Fatalf(format string, args ...any) {
	r.message = fmt.Sprintf(format, args...)
	panic(errRecordedFailure)
}

// mustFail runs scenario against a recorder and fails t unless the scenario
// failed: by a check of the harness or an assertion of the node.
func mustFail(t *testing.T, scenario func(reporter)) {
	t.Helper()
	recorder := &failureRecorder{}
	func() {
		defer func() {
			if v := recover(); v != nil && v != errRecordedFailure {
				recorder.message = fmt.Sprint(v)
			}
		}()
		scenario(recorder)
	}()
	if recorder.message == "" {
		t.Fatalf("the scenario passed without its protection; it proves nothing")
	}
	t.Logf("without the protection: %s", recorder.message)
}

// protects runs scenario as it is, then with the protection switched off
// by unsafe, which must make it fail (named by what): a scripted
// regression proves something only if it fails without what it protects.
func protects(t *testing.T, scenario func(reporter, func(*Config)), what string, unsafe func(*Config)) {
	t.Helper()
	scenario(t, nil)
	t.Run(what, func(t *testing.T) {
		mustFail(t, func(r reporter) { scenario(r, unsafe) })
	})
}

// TestReplicatesAndCommits elects a leader in a fresh 3-voter quorum and
// checks that proposals reach every node's committed log in order.
func TestReplicatesAndCommits(t *testing.T) {
	c := newCluster(t, 3, 1, nil)
	leader := c.waitLeader()
	for i := range 5 {
		c.propose(leader, fmt.Sprintf("record-%d", i))
	}
	c.tickAll(3)
	for _, tn := range c.nodes {
		if tn.node.HighWatermark() != c.get(leader).node.EndOffset() {
			t.Fatalf("node %d high watermark %d, leader's log ends at %d", tn.id, tn.node.HighWatermark(), c.get(leader).node.EndOffset())
		}
		if tn.applied != tn.node.HighWatermark() {
			t.Fatalf("node %d applied %d of %d committed entries", tn.id, tn.applied, tn.node.HighWatermark())
		}
	}
	if got := len(c.commited); got != 6 {
		t.Fatalf("committed %d entries, want 6 (a leader-change entry and 5 records)", got)
	}
}

// scenarioOldLeaderRejoins isolates the leader until the others elect a new
// one, keeps it isolated long enough to time out many times, heals, and
// requires the new leader to keep its epoch: the old leader's pre-votes are
// refused by followers that hear from the new leader, and it learns the new
// epoch from their answers.
func scenarioOldLeaderRejoins(t reporter, tune func(*Config)) {
	c := newCluster(t, 3, 7, tune)
	old := c.waitLeader()
	c.propose(old, "before")
	c.tickAll(2)
	c.isolate(old)
	var next int32 = NoNode
	for range 200 {
		c.tickAll(1)
		if id := c.leader(); id != NoNode && id != old {
			next = id
			break
		}
	}
	if next == NoNode {
		t.Fatalf("no new leader while %d is isolated", old)
	}
	epoch := c.get(next).node.HardState().Epoch
	c.propose(next, "after")
	c.tickAll(100)
	c.heal()
	c.tickAll(100)
	if c.leader() != next || c.get(next).node.HardState().Epoch != epoch {
		t.Fatalf("the rejoining old leader %d disrupted leader %d of epoch %d: leader now %d", old, next, epoch, c.leader())
	}
	if role := c.get(old).node.Role(); role != RoleFollower {
		t.Fatalf("old leader %d is %s after rejoining, want Follower", old, role)
	}
}

// TestPartitionedOldLeaderRejoinsWithoutDisruption is item 8's first
// scenario; without pre-vote the isolated node bumps its epoch on every
// timeout and deposes the new leader when it returns.
func TestPartitionedOldLeaderRejoinsWithoutDisruption(t *testing.T) {
	protects(t, scenarioOldLeaderRejoins, "fails without pre-vote", func(c *Config) { c.unsafe.noPreVote = true })
}

// scenarioIsolatedLeaderResigns requires a leader cut off from every voter to
// stop leading within the check-quorum window (1.5 fetch timeouts, plus a
// tick), while the others elect a new leader.
func scenarioIsolatedLeaderResigns(t reporter, tune func(*Config)) {
	c := newCluster(t, 3, 11, tune)
	old := c.waitLeader()
	c.isolate(old)
	window := c.get(old).node.config.FetchTimeoutTicks*3/2 + 1
	c.tickAll(window)
	if role := c.get(old).node.Role(); role == RoleLeader {
		t.Fatalf("leader %d still leads after %d ticks without a quorum", old, window)
	}
}

// TestIsolatedLeaderResigns shows check-quorum: without it, a leader cut off
// from the majority keeps leading its stale epoch indefinitely.
func TestIsolatedLeaderResigns(t *testing.T) {
	protects(t, scenarioIsolatedLeaderResigns, "fails without check-quorum", func(c *Config) { c.unsafe.noCheckQuorum = true })
}

// scenarioFollowerCutFromLeader cuts only the link between the leader and one
// follower. That follower times out and asks for pre-votes; the other
// follower still hears from the leader and refuses, so the healthy leader
// keeps its epoch (the split of KAFKA-15489 starts this way).
func scenarioFollowerCutFromLeader(t reporter, tune func(*Config)) {
	c := newCluster(t, 3, 5, tune)
	leader := c.waitLeader()
	epoch := c.get(leader).node.HardState().Epoch
	cutOff := leader%3 + 1
	c.cut[[2]int32{leader, cutOff}] = true
	c.cut[[2]int32{cutOff, leader}] = true
	c.tickAll(200)
	if c.leader() != leader || c.get(leader).node.HardState().Epoch != epoch {
		t.Fatalf("follower %d, cut from leader %d only, changed the leader to %d", cutOff, leader, c.leader())
	}
}

// TestFollowerCutFromLeaderCannotDepose shows the follower's lease: without
// it, the other follower grants the pre-vote and the healthy leader loses its
// epoch.
func TestFollowerCutFromLeaderCannotDepose(t *testing.T) {
	protects(t, scenarioFollowerCutFromLeader, "fails without the leader lease", func(c *Config) { c.unsafe.noLeaderLease = true })
}

// scenarioLongerUncommittedLog gives the old leader a longer log of
// uncommitted entries from its old epoch, lets the others commit a shorter
// log in a newer epoch, takes one of them down and lets the old leader and
// the survivor compete: the survivor must win, and the committed entry stay.
func scenarioLongerUncommittedLog(t reporter, tune func(*Config)) {
	c := newCluster(t, 3, 3, tune)
	old := c.waitLeader()
	c.propose(old, "a")
	c.tickAll(2)
	c.isolate(old)
	for i := range 4 {
		c.propose(old, fmt.Sprintf("uncommitted-%d", i))
	}
	c.stabilize()
	var next int32 = NoNode
	for range 200 {
		c.tickAll(1)
		if id := c.leader(); id != NoNode && id != old {
			next = id
			break
		}
	}
	if next == NoNode {
		t.Fatalf("no new leader while %d is isolated", old)
	}
	committed := c.propose(next, "b")
	c.tickAll(2)
	if c.get(next).node.HighWatermark() <= committed {
		t.Fatalf("%q was not committed", "b")
	}
	if c.get(old).node.EndOffset() <= c.get(next).node.EndOffset() {
		t.Fatalf("the scenario needs the old leader's log to be longer")
	}
	c.crash(next)
	c.heal()
	for range 300 {
		c.tickAll(1)
		if id := c.leader(); id != NoNode {
			break
		}
	}
	c.tickAll(5)
	survivor := 6 - old - next
	if c.leader() != survivor {
		t.Fatalf("leader is %d, want %d (the voter with the committed entry)", c.leader(), survivor)
	}
}

// TestLongerUncommittedLogLosesElection is item 8's second scenario; with
// logs compared by length alone, the old leader wins and its DivergingEpoch
// answers would truncate the committed entry (the harness's leader
// completeness check catches it first).
func TestLongerUncommittedLogLosesElection(t *testing.T) {
	protects(t, scenarioLongerUncommittedLog, "fails with length-only comparison", func(c *Config) { c.unsafe.lengthOnlyElection = true })
}

// scenarioVoterLosesPower has node 3 vote for node 1 in epoch 1 and lose
// power right after the answer left. Node 1 wins with that vote. Node 2,
// which heard nothing, then campaigns for epoch 1 too; node 3 must refuse,
// because its vote was durable before it was sent.
func scenarioVoterLosesPower(t reporter, host hostOptions) {
	c := newCluster(t, 3, 9, func(config *Config) { config.ElectionTimeoutTicks = 10 })
	c.host = host
	c.cut[[2]int32{1, 2}], c.cut[[2]int32{2, 1}] = true, true
	for range 20 {
		c.tick(1) // node 1 times out and asks for pre-votes
	}
	c.flush(1)
	c.deliverAllTo(3) // pre-vote granted
	c.deliverAllTo(1) // node 1 becomes candidate for epoch 1
	c.deliverAllTo(3) // node 3 votes for node 1 and sends the grant
	c.crash(3)
	c.restart(3)
	c.deliverAllTo(1)
	if c.get(1).node.Role() != RoleLeader || c.get(1).node.HardState().Epoch != 1 {
		t.Fatalf("node 1 is %s in epoch %d, want leader of epoch 1", c.get(1).node.Role(), c.get(1).node.HardState().Epoch)
	}
	c.isolate(1)
	for range 20 {
		c.tick(2)
	}
	for range 10 {
		c.flush(2)
		c.deliverAllTo(3)
		c.deliverAllTo(2)
	}
}

// TestVoteSurvivesPowerLoss is item 8's third scenario; a host that does not
// make the quorum state durable before sending lets node 3 vote twice in
// epoch 1, and the harness sees two leaders of epoch 1.
func TestVoteSurvivesPowerLoss(t *testing.T) {
	scenarioVoterLosesPower(t, hostOptions{})
	t.Run("fails when the vote is not durable", func(t *testing.T) {
		mustFail(t, func(r reporter) { scenarioVoterLosesPower(r, hostOptions{volatileHardState: true}) })
	})
}

// TestVoterStrandedInLaterEpochRejoins puts a follower into a later epoch
// than the leader's, as a candidate that lost would be: it never fetches
// from the older epoch's leader and refuses its BeginQuorumEpoch. The leader
// must learn the later epoch from that refusal so that an election brings
// the voter back, and the quorum then commits on every node. The random
// schedules found the stranded voter; the leader used to ignore the refusal.
func TestVoterStrandedInLaterEpochRejoins(t *testing.T) {
	c := newCluster(t, 3, 13, nil)
	leader := c.waitLeader()
	c.propose(leader, "x")
	c.tickAll(2)
	stranded := leader%3 + 1
	epoch := c.get(leader).node.HardState().Epoch
	c.crash(stranded)
	c.get(stranded).disk.HardState = HardState{Epoch: epoch + 1, VotedFor: stranded, LeaderID: NoNode}
	c.restart(stranded)
	var target int64 = -1
	proposer := NoNode
	for range 200 {
		c.tickAll(1)
		if id := c.leader(); id != NoNode && id != proposer {
			target, proposer = c.propose(id, "y"), id
		}
		if target >= 0 && c.allCommitted(target) {
			return
		}
	}
	t.Fatalf("the quorum did not commit on every node: %s", c.describe())
}

// campaign ticks only node id and delivers one message at a time until it
// leads. It returns before the new leader's first Ready is performed, and
// drops whatever else is in flight: the other nodes never time out and
// learn nothing more, so the script decides what happens next.
func (c *cluster) campaign(id int32) {
	c.t.Helper()
	for range 100 {
		c.tick(id)
		for range 1000 {
			if c.get(id).node.Role() == RoleLeader {
				c.network = nil
				return
			}
			for _, tn := range c.nodes {
				c.flush(tn.id)
			}
			if len(c.network) == 0 {
				break
			}
			c.deliver(0)
		}
	}
	c.t.Fatalf("node %d did not win an election: %s", id, c.describe())
}

// bounce crashes and restarts a node, which keeps its disk and loses its
// lease on the leader (a lease needs a Fetch in this life).
func (c *cluster) bounce(id int32) {
	c.crash(id)
	c.restart(id)
}

// scenarioFigure8 is Raft's Figure 8 in KRaft's terms, with one entry per
// Fetch so that a leader's own first entry can lag the entries before it.
// Node 1 (epoch 1) leaves entry x on nodes 1 and 2 only. Node 5 wins epoch 2
// and dies before anyone fetches its leader-change entry. Node 1 wins epoch
// 3 and replicates x to node 3: x is now on a majority, but the epoch-3
// entry is not. If node 1 counted replicas and committed x, node 5 could
// still win epoch 4 (its last epoch 2 beats the others' 1) and erase x.
func scenarioFigure8(t reporter, tune func(*Config)) {
	c := newCluster(t, 5, 17, func(config *Config) {
		config.FetchEntriesMax = 1
		if tune != nil {
			tune(config)
		}
	})
	c.campaign(1)
	c.tickAll(1)
	for _, id := range []int32{3, 4, 5} {
		c.cut[[2]int32{1, id}], c.cut[[2]int32{id, 1}] = true, true
	}
	c.propose(1, "x")
	c.tick(2)
	c.stabilize() // x reaches node 2 only
	c.crash(1)
	c.heal()
	// Node 5 wins epoch 2 with votes from 3 and 4, then dies at once.
	c.bounce(3)
	c.bounce(4)
	c.cut[[2]int32{5, 2}], c.cut[[2]int32{2, 5}] = true, true
	c.campaign(5)
	c.isolate(5)
	c.flush(5) // its leader-change entry is durable, its BeginQuorumEpoch lost
	c.crash(5)
	c.heal()
	// Node 1 wins epoch 3 and hands x to node 3; node 2 reports holding x
	// but never receives the epoch-3 entry; node 4 hears nothing.
	c.restart(1)
	c.bounce(2)
	c.bounce(3)
	c.bounce(4)
	c.campaign(1)
	c.cut[[2]int32{1, 4}], c.cut[[2]int32{4, 1}] = true, true
	c.flush(1)        // BeginQuorumEpoch to 2 and 3
	c.deliverAllTo(2) // node 2 follows and fetches at offset 2
	c.deliverAllTo(3) // node 3 follows and fetches at offset 1
	c.deliverAllTo(1) // node 1 records both and answers
	c.flush(1)
	c.dropMessagesTo(2)
	c.deliverAllTo(3) // node 3 appends x and fetches at offset 2
	c.deliverAllTo(1) // x is now durable on nodes 1, 2 and 3
	holders := 0
	for _, tn := range c.nodes {
		if len(tn.disk.Entries) > 1 && string(tn.disk.Entries[1].Data) == "x" {
			holders++
		}
	}
	if holders != 3 {
		t.Fatalf("x is on %d disks, the scenario needs a majority of 3: %s", holders, c.describe())
	}
	c.crash(1)
	c.network = nil
	c.heal()
	// Node 5 (last epoch 2) now beats nodes 2, 3 and 4 (last epoch 1).
	c.restart(5)
	c.bounce(2)
	c.bounce(3)
	c.bounce(4)
	for range 200 {
		c.tick(5)
		c.stabilize()
		if c.get(5).node.Role() == RoleLeader && c.get(5).node.HardState().Epoch == 4 {
			return
		}
	}
	t.Fatalf("node 5 did not win epoch 4: %s", c.describe())
}

// dropMessagesTo loses every message in flight to id.
func (c *cluster) dropMessagesTo(id int32) {
	c.network = slices.DeleteFunc(c.network, func(e envelope) bool { return e.To == id })
}

// TestFigure8 shows the commit rule at the cluster level: with it, x is never
// committed and its loss is allowed; counting replicas instead commits x and
// the next leader erases a committed entry (leader completeness fails).
func TestFigure8(t *testing.T) {
	protects(t, scenarioFigure8, "fails when a leader counts replicas of earlier epochs", func(c *Config) { c.unsafe.countReplicasOnly = true })
}

// scenarioResign has the leader resign (as at controlled shutdown) and
// requires a successor within half a fetch timeout: EndQuorumEpoch lets the
// followers start at once instead of waiting for the leader to go silent.
func scenarioResign(t reporter, tune func(*Config)) {
	c := newCluster(t, 3, 19, tune)
	old := c.waitLeader()
	c.propose(old, "x")
	c.tickAll(2)
	c.get(old).node.Resign()
	c.stabilize()
	bound := c.get(old).node.config.FetchTimeoutTicks / 2
	for range bound {
		c.tickAll(1)
		if id := c.leader(); id != NoNode && id != old {
			return
		}
	}
	t.Fatalf("no successor within %d ticks of the resignation: %s", bound, c.describe())
}

// TestResignHandsOverQuickly shows EndQuorumEpoch at work; a follower that
// ignores it waits the whole fetch timeout.
func TestResignHandsOverQuickly(t *testing.T) {
	protects(t, scenarioResign, "fails when followers ignore EndQuorumEpoch", func(c *Config) { c.unsafe.ignoreEndQuorumEpoch = true })
}

// TestSameSeedSameTrace runs one seeded schedule of ticks, partitions,
// proposals, crashes and restarts twice and compares a hash of every message
// sent: the node draws nothing from outside its seed. A third run with
// another seed must differ, or the hash would prove nothing.
func TestSameSeedSameTrace(t *testing.T) {
	first, second, other := seededTrace(t, 5), seededTrace(t, 5), seededTrace(t, 6)
	if first != second {
		t.Fatalf("the same seed gave traces %x and %x", first, second)
	}
	if first == other {
		t.Fatalf("seeds 5 and 6 gave the same trace %x", first)
	}
}

// seededTrace runs a schedule drawn from seed and hashes the messages sent.
func seededTrace(t *testing.T, seed uint64) uint64 {
	c := newCluster(t, 3, seed, nil)
	hash := fnv.New64a()
	c.observe = func(m Message) {
		fmt.Fprintf(hash, "%d>%d#%d:", m.From, m.To, m.CorrelationID)
		hash.Write(m.Body.AppendTo(nil))
	}
	rand := core.NewRand(seed)
	for step := range 300 {
		id := int32(rand.IntN(3) + 1)
		switch rand.IntN(10) {
		case 0:
			c.isolate(id)
		case 1:
			c.heal()
		case 2:
			c.crash(id)
		case 3:
			c.restart(id)
		case 4, 5:
			if leader := c.leader(); leader != NoNode {
				c.propose(leader, fmt.Sprint(step))
			}
		default:
			c.tickAll(1)
		}
	}
	return hash.Sum64()
}
