package raft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
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
	lastHW   int64  // for the monotonic check, per incarnation
	applied  int64  // offset just past the last entry applied to state
	state    uint64 // the state machine: a hash chain of applied entries
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
	// states holds, per committed offset i, the state machine's state after
	// applying the committed entries below i (states[0] is the initial
	// state): what a snapshot at offset i must contain.
	states []uint64
	// observe, when set, sees every message sent.
	observe func(Message)
	// rewrite, when set, replaces every message sent by what it returns (to
	// drop, duplicate, delay or corrupt chosen messages).
	rewrite func(Message) []Message
	// tolerateStepErrors counts errors from Step in stepErrors instead of
	// failing: for scenarios that feed a node corrupt input on purpose.
	tolerateStepErrors bool
	stepErrors         int
	// compactions and installs count snapshots taken by hosts and fetched
	// snapshots installed, so that tests can require the paths to run.
	compactions, installs int
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
	c := &cluster{t: t, cut: map[[2]int32]bool{}, seed: seed, leaders: map[int32]int32{}, preVotes: map[[3]int32]bool{}, states: []uint64{initialState}}
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
	restored := Restored{HardState: tn.disk.HardState, Entries: slices.Clone(tn.disk.Entries), Snapshot: tn.disk.Snapshot}
	n, err := New(config, restored)
	if err != nil {
		c.t.Fatalf("start node %d: %v", tn.id, err)
	}
	// The host loads its state machine from its snapshot, then applies
	// what the node hands out from the snapshot's offset on.
	tn.node, tn.lastHW, tn.applied, tn.state = n, 0, tn.disk.Snapshot.Offset, stateOf(tn.disk.Snapshot)
}

// initialState is the test state machine's state before any entry.
const initialState uint64 = 14695981039346656037

// nextState applies one entry to the test state machine: a hash chain, so
// that any entry missing, extra, reordered or changed changes every state
// after it.
func nextState(state uint64, e Entry) uint64 {
	h := fnv.New64a()
	var header [20]byte
	binary.BigEndian.PutUint64(header[:8], state)
	binary.BigEndian.PutUint64(header[8:16], uint64(e.Offset))
	binary.BigEndian.PutUint32(header[16:], uint32(e.Epoch))
	h.Write(header[:])
	h.Write(e.Data)
	return h.Sum64()
}

// stateOf decodes a snapshot of the test state machine (8 bytes).
func stateOf(s Snapshot) uint64 {
	if s.Offset == 0 {
		return initialState
	}
	return binary.BigEndian.Uint64(s.Data)
}

// snapshotData encodes the test state machine's state.
func snapshotData(state uint64) []byte { return binary.BigEndian.AppendUint64(nil, state) }

// diskEnd returns the offset just past the last entry on tn's disk.
func diskEnd(tn *testNode) int64 {
	if len(tn.disk.Entries) == 0 {
		return tn.disk.Snapshot.Offset
	}
	return tn.disk.Entries[len(tn.disk.Entries)-1].Offset + 1
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
	c.persist(tn, r, math.MaxInt)
	for _, m := range r.Messages {
		c.checkDurableBeforeSend(tn, m)
		c.sendOne(m)
	}
	if r.Snapshot != nil {
		c.installSnapshot(tn, *r.Snapshot)
	}
	c.checkApplied(tn, r.CommittedEntries)
	tn.node.Advance()
	c.check()
}

// persist performs steps 1 to 4 of Ready, stopping after the first steps
// of them (a crash part way through): 1 writes the quorum state, 2 the
// snapshot, 3 removes the log a snapshot replaces, 4 truncates, and each
// further step appends one entry (a torn append keeps a prefix).
func (c *cluster) persist(tn *testNode, r Ready, steps int) {
	if steps < 1 {
		return
	}
	if r.HardStateChanged && !c.host.volatileHardState {
		tn.disk.HardState = r.HardState
	}
	if steps < 2 {
		return
	}
	if r.Snapshot != nil {
		tn.disk.Snapshot = *r.Snapshot
	}
	if steps < 3 {
		return
	}
	if r.Snapshot != nil {
		tn.disk.Entries = nil
	}
	if steps < 4 {
		return
	}
	if r.TruncateToOffset >= 0 {
		tn.disk.Entries = slices.DeleteFunc(tn.disk.Entries, func(e Entry) bool { return e.Offset >= r.TruncateToOffset })
	}
	for _, e := range r.Entries[:min(steps-4, len(r.Entries))] {
		if e.Offset != diskEnd(tn) {
			c.t.Fatalf("node %d: Ready appends offset %d to a disk log ending at %d", tn.id, e.Offset, diskEnd(tn))
		}
		tn.disk.Entries = append(tn.disk.Entries, e)
	}
}

// crashDuringFlush takes a node's Ready and crashes part way through it,
// after the number of persist steps drawn by the caller; it sends nothing.
func (c *cluster) crashDuringFlush(id int32, steps int) {
	tn := c.get(id)
	if tn.node == nil || !tn.node.HasReady() {
		c.crash(id)
		return
	}
	c.persist(tn, tn.node.Ready(), steps)
	c.crash(id)
}

// installSnapshot performs step 7 of a Ready that carries a snapshot: the
// state machine takes the snapshot's state, which must be the state of the
// committed log at the snapshot's offset.
func (c *cluster) installSnapshot(tn *testNode, s Snapshot) {
	c.t.Helper()
	if s.Offset <= tn.applied || s.Offset >= int64(len(c.states)) || stateOf(s) != c.states[s.Offset] {
		c.t.Fatalf("node %d installs snapshot %d-%d (state %x) after applying up to %d; the committed state there is not that", tn.id, s.Offset, s.Epoch, s.Data, tn.applied)
	}
	tn.applied, tn.state = s.Offset, stateOf(s)
	c.installs++
}

// compact takes a snapshot of id's state machine as a host does: after
// performing its Ready (so between Advance and the next Ready), at the end
// of what it applied, written to disk before Compact is called. With
// deleteEntries the host then deletes the entries the snapshot covers.
func (c *cluster) compact(id int32, deleteEntries bool) {
	c.t.Helper()
	tn := c.get(id)
	if tn.node == nil {
		return
	}
	c.flush(id)
	offset := tn.applied
	if offset <= tn.node.LogStartOffset() {
		return
	}
	if tn.state != c.states[offset] {
		c.t.Fatalf("node %d state machine at %d is %x, the committed log's state there is %x", tn.id, offset, tn.state, c.states[offset])
	}
	snapshot := Snapshot{Offset: offset, Epoch: c.commited[offset-1].Epoch, Data: snapshotData(tn.state)}
	tn.disk.Snapshot = snapshot
	if err := tn.node.Compact(snapshot.Offset, snapshot.Epoch, snapshot.Data); err != nil {
		c.t.Fatalf("node %d: %v", tn.id, err)
	}
	if deleteEntries {
		tn.disk.Entries = slices.DeleteFunc(tn.disk.Entries, func(e Entry) bool { return e.Offset < offset })
	}
	c.compactions++
	c.check()
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
		if p.FetchOffset > diskEnd(tn) {
			c.t.Fatalf("node %d fetches from offset %d with its disk log ending at %d", tn.id, p.FetchOffset, diskEnd(tn))
		}
	}
}

func (c *cluster) sendOne(m Message) {
	c.t.Helper()
	if c.observe != nil {
		c.observe(m)
	}
	c.checkObserverMessage(m)
	if c.rewrite != nil {
		for _, rewritten := range c.rewrite(m) {
			c.queue(rewritten)
		}
		return
	}
	c.queue(m)
}

// queue puts m in flight unless its link is cut.
func (c *cluster) queue(m Message) {
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
	// Errors are for malformed input; the harness sends none unless a
	// scenario corrupts messages on purpose, so any other is a bug.
	if err := tn.node.Step(m); err != nil {
		if !c.tolerateStepErrors {
			c.t.Fatalf("node %d step %v: %v", m.To, m, err)
		}
		c.stepErrors++
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
		c.checkSnapshot(tn)
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
	// Entries below the log start are in the snapshot, which checkSnapshot
	// compares with the committed state.
	from := tn.node.LogStartOffset()
	for _, e := range tn.node.log.slice(from, max(from, int64(required))) {
		if !sameEntry(c.commited[e.Offset], e) {
			c.t.Fatalf("leader %d of epoch %d holds %v at committed offset %d, committed was %v", tn.id, epoch, e, e.Offset, c.commited[e.Offset])
		}
	}
}

// checkCommittedPrefix compares the node's committed entries with the
// longest committed prefix seen, and extends it.
func (c *cluster) checkCommittedPrefix(tn *testNode) {
	c.t.Helper()
	hw := tn.node.HighWatermark()
	start := tn.node.LogStartOffset()
	if start > int64(len(c.commited)) {
		c.t.Fatalf("node %d log starts at %d, beyond the %d entries any node reported committed", tn.id, start, len(c.commited))
	}
	for _, e := range tn.node.log.slice(start, min(hw, tn.node.EndOffset())) {
		if e.Offset < int64(len(c.commited)) {
			if !sameEntry(c.commited[e.Offset], e) {
				c.t.Fatalf("node %d committed %v at offset %d, another node committed %v", tn.id, e, e.Offset, c.commited[e.Offset])
			}
			continue
		}
		c.commited = append(c.commited, e)
		c.commitEpochs = append(c.commitEpochs, tn.node.HardState().Epoch)
		c.states = append(c.states, nextState(c.states[len(c.states)-1], e))
	}
}

// checkSnapshot checks KIP-630's invariants on a running node: the log
// starts at or below the high watermark, and the snapshot the node keeps at
// its log start exists and holds the committed log's state at that offset.
func (c *cluster) checkSnapshot(tn *testNode) {
	c.t.Helper()
	n := tn.node
	start := n.LogStartOffset()
	if start > n.HighWatermark() {
		c.t.Fatalf("node %d log starts at %d beyond its high watermark %d", tn.id, start, n.HighWatermark())
	}
	if start == 0 {
		return
	}
	if n.snapshot.Offset != start || stateOf(n.snapshot) != c.states[start] {
		c.t.Fatalf("node %d log starts at %d; its snapshot %d-%d holds state %x, the committed state there is %x",
			tn.id, start, n.snapshot.Offset, n.snapshot.Epoch, n.snapshot.Data, c.states[start])
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
		if c.diskHoldsCommitted(tn) {
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

// diskHoldsCommitted reports whether tn's disk holds every committed entry:
// in its snapshot (whose state must be the committed one) or its log.
func (c *cluster) diskHoldsCommitted(tn *testNode) bool {
	snapshot := tn.disk.Snapshot
	if snapshot.Offset > int64(len(c.commited)) || stateOf(snapshot) != c.states[snapshot.Offset] {
		return false
	}
	next := snapshot.Offset
	for _, e := range tn.disk.Entries {
		if e.Offset < next {
			continue
		}
		if e.Offset != next || next >= int64(len(c.commited)) {
			break
		}
		if !sameEntry(e, c.commited[next]) {
			return false
		}
		next++
	}
	return next >= int64(len(c.commited))
}

func (c *cluster) checkApplied(tn *testNode, entries []Entry) {
	c.t.Helper()
	for _, e := range entries {
		if e.Offset != tn.applied || e.Offset >= int64(len(c.commited)) || !sameEntry(e, c.commited[e.Offset]) {
			c.t.Fatalf("node %d applies %v, expected offset %d of the committed log", tn.id, e, tn.applied)
		}
		tn.state = nextState(tn.state, e)
		tn.applied++
		if tn.state != c.states[tn.applied] {
			c.t.Fatalf("node %d state after applying %v differs from the committed log's", tn.id, e)
		}
	}
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
