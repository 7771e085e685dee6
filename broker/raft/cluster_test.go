package raft

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reporter is what the harness needs from *testing.T and *rapid.T alike.
type reporter interface {
	Helper()
	Fatalf(format string, args ...any)
}

// hostOptions let a test run a host that breaks Ready's ordering rule, to
// show that the rule is what keeps a scenario safe.
type hostOptions struct {
	// volatileHardState never makes the quorum state durable: a crash
	// forgets votes and epochs (as if they were sent before the fsync).
	volatileHardState bool
}

// testNode is one voter with its simulated disk: the disk keeps exactly what
// the host made durable, and a crash keeps only the disk.
type testNode struct {
	id       int32
	node     *Node // nil while crashed
	disk     Restored
	lastHW   int64 // for the monotonic check, per incarnation
	applied  int64 // entries applied in this incarnation
	restarts int
}

// cluster is an in-memory quorum with a network that can drop, duplicate,
// reorder and cut messages, and a checker run after every event.
type cluster struct {
	t        reporter
	config   Config
	host     hostOptions
	nodes    []*testNode
	network  []envelope
	cut      map[[2]int32]bool // [from, to] pairs whose messages are lost
	seed     uint64
	leaders  map[int32]int32 // epoch -> the one leader ever seen in it
	commited []Entry         // the longest committed prefix any node reported
	// commitEpochs holds, per committed entry, the epoch of the node that
	// first reported it committed: an upper bound of the epoch in which it
	// was committed (the leader that commits it reports it first).
	commitEpochs []int32
	// preVotes remembers which requests were pre-votes, by (from, to,
	// correlation id), to tell a pre-vote grant (nothing to persist) from a
	// vote in checkDurableBeforeSend.
	preVotes map[[3]int32]bool
	// observe, when set, sees every message sent.
	observe func(Message)
}

// newCluster starts voters 1..count from empty disks.
func newCluster(t reporter, count int, seed uint64, tune func(*Config)) *cluster {
	t.Helper()
	return newClusterWithObservers(t, count, 0, seed, tune)
}

// newClusterWithObservers starts voters 1..voters and observers after them
// (voters+1..voters+observers) from empty disks.
func newClusterWithObservers(t reporter, voters, observers int, seed uint64, tune func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, cut: map[[2]int32]bool{}, seed: seed, leaders: map[int32]int32{}, preVotes: map[[3]int32]bool{}}
	for id := int32(1); id <= int32(voters); id++ {
		c.config.Voters = append(c.config.Voters, id)
	}
	c.config.ClusterID = "raft-test"
	if tune != nil {
		tune(&c.config)
	}
	for id := int32(1); id <= int32(voters+observers); id++ {
		tn := &testNode{id: id}
		c.nodes = append(c.nodes, tn)
		c.start(tn)
	}
	return c
}

// isVoter reports whether id is one of the cluster's voters.
func (c *cluster) isVoter(id int32) bool { return slices.Contains(c.config.Voters, id) }

func (c *cluster) get(id int32) *testNode { return c.nodes[id-1] }

// start (re)creates a node from its disk, with a random source derived from
// the seed and the incarnation so that restarts draw new timeouts.
func (c *cluster) start(tn *testNode) {
	config := c.config
	config.ID = tn.id
	config.Rand = core.NewRand(c.seed*1000 + uint64(tn.id)*31 + uint64(tn.restarts))
	restored := Restored{HardState: tn.disk.HardState, Entries: slices.Clone(tn.disk.Entries)}
	n, err := New(config, restored)
	if err != nil {
		c.t.Fatalf("start node %d: %v", tn.id, err)
	}
	tn.node, tn.lastHW, tn.applied = n, 0, 0
}

// crash loses everything the host had not made durable.
func (c *cluster) crash(id int32) {
	tn := c.get(id)
	tn.node = nil
	if c.host.volatileHardState {
		tn.disk.HardState = HardState{}
	}
}

func (c *cluster) restart(id int32) {
	tn := c.get(id)
	if tn.node != nil {
		return
	}
	tn.restarts++
	c.start(tn)
	c.check()
}

// flush performs a node's Ready as a correct host does: truncate, append,
// write the quorum state, sync, and only then send and apply.
func (c *cluster) flush(id int32) {
	tn := c.get(id)
	if tn.node == nil || !tn.node.HasReady() {
		return
	}
	r := tn.node.Ready()
	c.persist(tn, r, len(r.Entries))
	for _, m := range r.Messages {
		c.checkDurableBeforeSend(tn, m)
		c.sendOne(m)
	}
	c.checkApplied(tn, r.CommittedEntries)
	tn.node.Advance()
	c.check()
}

// persist performs steps 1 to 3 of Ready, appending only the first
// entryCount entries (a crash part way through keeps a prefix).
func (c *cluster) persist(tn *testNode, r Ready, entryCount int) {
	if r.HardStateChanged && !c.host.volatileHardState {
		tn.disk.HardState = r.HardState
	}
	if r.TruncateToOffset >= 0 {
		tn.disk.Entries = tn.disk.Entries[:min(int64(len(tn.disk.Entries)), r.TruncateToOffset)]
	}
	for _, e := range r.Entries[:entryCount] {
		if e.Offset != int64(len(tn.disk.Entries)) {
			c.t.Fatalf("node %d: Ready appends offset %d to a disk log of %d entries", tn.id, e.Offset, len(tn.disk.Entries))
		}
		tn.disk.Entries = append(tn.disk.Entries, e)
	}
}

// crashDuringFlush takes a node's Ready and crashes part way through it:
// with steps drawn by the caller, it keeps the quorum state (or not), the
// truncation (or not) and a prefix of the entries, and sends nothing.
func (c *cluster) crashDuringFlush(id int32, steps int) {
	tn := c.get(id)
	if tn.node == nil || !tn.node.HasReady() {
		c.crash(id)
		return
	}
	r := tn.node.Ready()
	partial := r
	if steps < 1 {
		partial.HardStateChanged = false
	}
	if steps < 2 {
		partial.TruncateToOffset = -1
	}
	c.persist(tn, partial, min(max(steps-2, 0), len(r.Entries)))
	c.crash(id)
}

// checkDurableBeforeSend verifies, at the moment a message leaves, that what
// it reports is on the disk: a granted vote and a Fetch's offset.
func (c *cluster) checkDurableBeforeSend(tn *testNode, m Message) {
	c.t.Helper()
	switch body := m.Body.(type) {
	case *kmsg.VoteResponse:
		p := body.Topics[0].Partitions[0]
		preVote := c.preVotes[[3]int32{m.To, m.From, m.CorrelationID}]
		// The disk must hold this vote, or a later epoch (the node moved on
		// within the same Ready; a later epoch forbids voting in this one).
		disk := tn.disk.HardState
		voteHeld := disk.Epoch > p.LeaderEpoch || (disk.Epoch == p.LeaderEpoch && disk.VotedFor == m.To)
		if p.VoteGranted && !c.host.volatileHardState && !preVote && !voteHeld {
			c.t.Fatalf("node %d sends a vote for %d (%v, %+v) that its disk does not hold (%+v); memory %+v", tn.id, m.To, m, p, tn.disk.HardState, tn.node.HardState())
		}
	case *kmsg.FetchRequest:
		p := body.Topics[0].Partitions[0]
		if p.FetchOffset > int64(len(tn.disk.Entries)) {
			c.t.Fatalf("node %d fetches from offset %d with only %d entries durable", tn.id, p.FetchOffset, len(tn.disk.Entries))
		}
	}
}

func (c *cluster) sendOne(m Message) {
	c.t.Helper()
	if c.observe != nil {
		c.observe(m)
	}
	c.checkObserverMessage(m)
	if request, ok := m.Body.(*kmsg.VoteRequest); ok && request.Topics[0].Partitions[0].PreVote {
		c.preVotes[[3]int32{m.From, m.To, m.CorrelationID}] = true
	}
	if c.cut[[2]int32{m.From, m.To}] {
		return
	}
	c.network = append(c.network, envelope{Message: m, incarnation: c.get(m.To).restarts})
}

// envelope is a message in flight with the incarnation of its target when it
// was sent. A restarted node gets new connections, so answers meant for its
// previous life are lost, as they are over TCP; requests that its previous
// life sent may still arrive at others.
type envelope struct {
	Message
	incarnation int
}

// deliver hands the message at index i to its target and removes it.
func (c *cluster) deliver(i int) {
	m := c.network[i]
	c.network = slices.Delete(c.network, i, i+1)
	c.deliverCopy(m)
}

// deliverCopy hands m to its target without removing anything (duplication).
func (c *cluster) deliverCopy(e envelope) {
	m := e.Message
	tn := c.get(m.To)
	if tn.node == nil || tn.restarts != e.incarnation || c.cut[[2]int32{m.From, m.To}] {
		return
	}
	// Errors are for malformed input; the harness sends none, so any is a bug.
	if err := tn.node.Step(m); err != nil {
		c.t.Fatalf("node %d step %v: %v", m.To, m, err)
	}
	c.check()
}

func (c *cluster) tick(id int32) {
	tn := c.get(id)
	if tn.node == nil {
		return
	}
	tn.node.Tick()
	c.check()
}

// isolate cuts every link to and from id; heal restores all links.
func (c *cluster) isolate(id int32) {
	for _, tn := range c.nodes {
		if other := tn.id; other != id {
			c.cut[[2]int32{id, other}] = true
			c.cut[[2]int32{other, id}] = true
		}
	}
}

func (c *cluster) heal() { clear(c.cut) }

// stabilize flushes every node and delivers every message in order until
// nothing is left, within a bound.
func (c *cluster) stabilize() {
	c.t.Helper()
	for range 10000 {
		for _, tn := range c.nodes {
			c.flush(tn.id)
		}
		if len(c.network) == 0 {
			return
		}
		c.deliver(0)
	}
	c.t.Fatalf("the cluster did not stabilize")
}

// tickAll ticks every running node count times, stabilizing after each.
func (c *cluster) tickAll(count int) {
	for range count {
		for _, tn := range c.nodes {
			c.tick(tn.id)
		}
		c.stabilize()
	}
}

// leader returns the running leader of the highest epoch, or NoNode.
func (c *cluster) leader() int32 {
	best, epoch := NoNode, int32(-1)
	for _, tn := range c.nodes {
		if tn.node != nil && tn.node.Role() == RoleLeader && tn.node.HardState().Epoch > epoch {
			best, epoch = tn.id, tn.node.HardState().Epoch
		}
	}
	return best
}

// waitLeader ticks until a leader exists, within a bound.
func (c *cluster) waitLeader() int32 {
	c.t.Helper()
	for range 500 {
		if id := c.leader(); id != NoNode {
			return id
		}
		c.tickAll(1)
	}
	c.t.Fatalf("no leader elected")
	return NoNode
}

// propose appends data at the leader and returns its offset.
func (c *cluster) propose(leader int32, data string) int64 {
	c.t.Helper()
	offset, err := c.get(leader).node.Propose([]byte(data))
	if err != nil {
		c.t.Fatalf("propose on %d: %v", leader, err)
	}
	c.check()
	return offset
}

// check verifies the cross-node safety properties after every event.
func (c *cluster) check() {
	c.t.Helper()
	for _, tn := range c.nodes {
		if tn.node == nil {
			continue
		}
		c.checkObserver(tn)
		c.checkOneLeaderPerEpoch(tn)
		c.checkCommittedPrefix(tn)
		hw := tn.node.HighWatermark()
		if hw < tn.lastHW {
			c.t.Fatalf("node %d high watermark moved back from %d to %d", tn.id, tn.lastHW, hw)
		}
		tn.lastHW = hw
	}
	c.checkCommittedDurable()
}

func (c *cluster) checkOneLeaderPerEpoch(tn *testNode) {
	c.t.Helper()
	if tn.node.Role() != RoleLeader {
		return
	}
	epoch := tn.node.HardState().Epoch
	if other, ok := c.leaders[epoch]; ok && other != tn.id {
		c.t.Fatalf("two leaders in epoch %d: %d and %d", epoch, other, tn.id)
	}
	c.leaders[epoch] = tn.id
	// Leader completeness: a leader of epoch E holds every entry committed
	// in an epoch before E. A stale leader of an older epoch (one that has
	// not yet noticed it lost its quorum) may lack later ones.
	required := 0
	for required < len(c.commitEpochs) && c.commitEpochs[required] < epoch {
		required++
	}
	if tn.node.EndOffset() < int64(required) {
		c.t.Fatalf("leader %d of epoch %d lacks committed entries: log ends at %d, %d were committed before its epoch",
			tn.id, epoch, tn.node.EndOffset(), required)
	}
	for i, e := range tn.node.log.slice(0, int64(required)) {
		if !sameEntry(c.commited[i], e) {
			c.t.Fatalf("leader %d of epoch %d holds %v at committed offset %d, committed was %v", tn.id, epoch, e, i, c.commited[i])
		}
	}
}

// checkCommittedPrefix compares the node's committed entries with the
// longest committed prefix seen, and extends it.
func (c *cluster) checkCommittedPrefix(tn *testNode) {
	c.t.Helper()
	hw := tn.node.HighWatermark()
	entries := tn.node.log.slice(0, min(hw, tn.node.EndOffset()))
	for i, e := range entries {
		if i < len(c.commited) {
			if !sameEntry(c.commited[i], e) {
				c.t.Fatalf("node %d committed %v at offset %d, another node committed %v", tn.id, e, i, c.commited[i])
			}
			continue
		}
		c.commited = append(c.commited, e)
		c.commitEpochs = append(c.commitEpochs, tn.node.HardState().Epoch)
	}
}

// checkCommittedDurable requires every committed entry on the disks of a
// majority of voters: no crash of a minority can lose it. Observers' disks
// never count; a quorum that counted them could lose committed entries.
func (c *cluster) checkCommittedDurable() {
	c.t.Helper()
	holders := 0
	for _, tn := range c.nodes {
		if !c.isVoter(tn.id) {
			continue
		}
		if int64(len(tn.disk.Entries)) >= int64(len(c.commited)) && prefixEqual(tn.disk.Entries, c.commited) {
			holders++
		}
	}
	if voters := len(c.config.Voters); holders < voters/2+1 {
		c.t.Fatalf("only %d of %d voters' disks hold the %d committed entries", holders, voters, len(c.commited))
	}
}

// checkObserver requires an observer never to act as a voter: it is only
// ever Unattached or Follower and never records a vote.
func (c *cluster) checkObserver(tn *testNode) {
	c.t.Helper()
	if c.isVoter(tn.id) {
		return
	}
	n := tn.node
	if !n.IsObserver() || (n.Role() != RoleUnattached && n.Role() != RoleFollower) || n.HardState().VotedFor != NoNode {
		c.t.Fatalf("observer %d is %s with quorum state %+v", tn.id, n.Role(), n.HardState())
	}
	if n.Role() == RoleFollower && !c.isVoter(n.HardState().LeaderID) {
		c.t.Fatalf("observer %d follows non-voter %d", tn.id, n.HardState().LeaderID)
	}
}

// checkObserverMessage requires that observers never ask for votes or grant
// one, and that a leader's DescribeQuorum lists them only as observers.
func (c *cluster) checkObserverMessage(m Message) {
	c.t.Helper()
	switch body := m.Body.(type) {
	case *kmsg.VoteRequest:
		if !c.isVoter(m.From) {
			c.t.Fatalf("observer %d asks for a vote: %v", m.From, m)
		}
	case *kmsg.VoteResponse:
		if !c.isVoter(m.From) && body.Topics[0].Partitions[0].VoteGranted {
			c.t.Fatalf("observer %d grants a vote: %v", m.From, m)
		}
	case *kmsg.BeginQuorumEpochRequest, *kmsg.EndQuorumEpochRequest:
		if !c.isVoter(m.To) {
			c.t.Fatalf("the leader sends %v to observer %d", m, m.To)
		}
	case *kmsg.DescribeQuorumResponse:
		for _, voter := range body.Topics[0].Partitions[0].CurrentVoters {
			if !c.isVoter(voter.ReplicaID) {
				c.t.Fatalf("DescribeQuorum lists observer %d as a voter", voter.ReplicaID)
			}
		}
	}
}

func (c *cluster) checkApplied(tn *testNode, entries []Entry) {
	c.t.Helper()
	for _, e := range entries {
		if e.Offset != tn.applied || e.Offset >= int64(len(c.commited)) || !sameEntry(e, c.commited[e.Offset]) {
			c.t.Fatalf("node %d applies %v, expected offset %d of the committed log", tn.id, e, tn.applied)
		}
		tn.applied++
	}
}

func prefixEqual(log, prefix []Entry) bool {
	for i := range prefix {
		if !sameEntry(log[i], prefix[i]) {
			return false
		}
	}
	return true
}

func sameEntry(a, b Entry) bool {
	return a.Offset == b.Offset && a.Epoch == b.Epoch && bytes.Equal(a.Data, b.Data)
}

// String shows an entry as offset@epoch:data.
func (e Entry) String() string { return fmt.Sprintf("%d@%d:%q", e.Offset, e.Epoch, e.Data) }

// deliverAllTo delivers, in order, every message in flight to id, then
// flushes id so that its answers leave.
func (c *cluster) deliverAllTo(id int32) {
	for i := 0; i < len(c.network); {
		if c.network[i].To == id {
			c.deliver(i)
			continue
		}
		i++
	}
	c.flush(id)
}
