package checker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"pgregory.net/rapid"
)

// This file records real broker/raft nodes by the recording contract of
// docs/checker.md and requires CheckQuorum to pass them: it shows that the
// contract can be kept from a host's Ready loop and that correct Raft runs
// raise no false alarm. The hosts are minimal: a Ready is performed
// (persisted whole, then its messages sent) as a separate step, so that a
// crash in between loses it, and the network drops, delays and reorders
// messages until the heal.

// raftHost is one node's process and disk.
type raftHost struct {
	id     int32
	config raft.Config
	node   *raft.Node // nil while the process is down
	// hard, log and snapshot are what the disk holds durably.
	hard     raft.HardState
	log      []raft.Entry
	snapshot raft.Snapshot
	// pending is the Ready taken and not yet performed; a crash loses it.
	pending *raft.Ready
	// chain is the state machine: a hash chain of the applied entries.
	chain string
	// What was last recorded, so that only changes are recorded.
	recordedHard                       raft.HardState
	recordedRole                       raft.Role
	recordedState                      bool
	recordedHighWatermark, recordedEnd int64
}

type raftHarness struct {
	t         *rapid.T
	rec       *QuorumRecorder
	hosts     []*raftHost
	network   []raft.Message
	time      int64
	proposals int
}

var raftVoters = []int32{1, 2, 3}

func newRaftHarness(t *rapid.T) *raftHarness {
	h := &raftHarness{t: t, rec: NewQuorumRecorder(raftVoters)}
	seed := rapid.Uint64().Draw(t, "seed")
	for _, id := range []int32{1, 2, 3, 4} { // node 4 is an observer
		host := &raftHost{id: id, hard: raft.HardState{VotedFor: raft.NoNode, LeaderID: raft.NoNode},
			config: raft.Config{ID: id, Voters: raftVoters, ClusterID: "c", Rand: core.NewRand(seed + uint64(id)),
				// Short timeouts let elections, check-quorum and retries
				// happen within a few hundred random steps.
				ElectionTimeoutTicks: 4, FetchTimeoutTicks: 8, RequestTimeoutTicks: 4}}
		h.hosts = append(h.hosts, host)
		h.start(host)
	}
	return h
}

// nextChain is the state machine's digest after applying data.
func nextChain(chain string, data []byte) string {
	sum := sha256.Sum256(append([]byte(chain), data...))
	return hex.EncodeToString(sum[:8])
}

// start restarts the process from its disk and records what it restored.
func (h *raftHarness) start(host *raftHost) {
	node, err := raft.New(host.config, raft.Restored{HardState: host.hard, Entries: slices.Clone(host.log), Snapshot: host.snapshot})
	if err != nil {
		h.t.Fatalf("restart node %d: %v", host.id, err)
	}
	host.node, host.recordedState, host.recordedHighWatermark = node, false, 0
	h.rec.Start(host.id, h.time, false)
	host.chain = ""
	if host.snapshot.Offset > 0 {
		host.chain = string(host.snapshot.Data)
		h.rec.Snapshot(host.id, h.time, host.snapshot.Offset, host.snapshot.Epoch, host.chain, SnapshotLoaded)
		h.rec.LogStart(host.id, h.time, host.snapshot.Offset)
	}
	host.recordedEnd = -1
	h.recordLogEnd(host)
	h.recordState(host)
	h.pump(host)
}

func (h *raftHarness) crash(host *raftHost) {
	if host.node == nil {
		return
	}
	host.node, host.pending = nil, nil
	h.rec.Stop(host.id, h.time)
}

// durableEnd is one past the last entry the disk holds.
func (host *raftHost) durableEnd() int64 {
	if len(host.log) == 0 {
		return host.snapshot.Offset
	}
	return host.log[len(host.log)-1].Offset + 1
}

func (h *raftHarness) recordLogEnd(host *raftHost) {
	if end := host.durableEnd(); end != host.recordedEnd {
		host.recordedEnd = end
		h.rec.LogEnd(host.id, h.time, end)
	}
}

// recordState records the node's quorum state when it changed and its
// HardState is the durable one (the contract's rule 2).
func (h *raftHarness) recordState(host *raftHost) {
	hard, role := host.node.HardState(), host.node.Role()
	if hard != host.hard || (host.recordedState && hard == host.recordedHard && role == host.recordedRole) {
		return
	}
	host.recordedState, host.recordedHard, host.recordedRole = true, hard, role
	h.rec.State(host.id, h.time, hard.Epoch, quorumRoleOf(role), hard.LeaderID, hard.VotedFor)
}

// recordPassedState records a durable HardState that the node's memory has
// already moved past (the contract's rule 2): it was durable, so the node
// may have acted in it. Its role then is gone; the one recorded follows from
// the HardState, and the node's next durable state follows soon.
func (h *raftHarness) recordPassedState(host *raftHost) {
	hard := host.hard
	if host.node.HardState() == hard || (host.recordedState && hard == host.recordedHard) {
		return
	}
	role := raft.RoleUnattached
	switch hard.LeaderID {
	case raft.NoNode:
	case host.id:
		role = raft.RoleResigned
	default:
		role = raft.RoleFollower
	}
	host.recordedState, host.recordedHard, host.recordedRole = true, hard, role
	h.rec.State(host.id, h.time, hard.Epoch, quorumRoleOf(role), hard.LeaderID, hard.VotedFor)
}

// observe records what a client learns from a running node about the
// controller: what the node's answer carries, its durable state, since an
// answer leaves only after the state it reports is durable.
func (h *raftHarness) observe(host *raftHost) {
	if host.node != nil && host.hard.LeaderID != raft.NoNode {
		h.rec.Observe(fmt.Sprintf("client-of-%d", host.id), h.time, host.hard.LeaderID, host.hard.Epoch)
	}
}

func quorumRoleOf(role raft.Role) QuorumRole {
	return map[raft.Role]QuorumRole{
		raft.RoleUnattached: QuorumRoleUnattached, raft.RoleProspective: QuorumRoleProspective,
		raft.RoleCandidate: QuorumRoleCandidate, raft.RoleLeader: QuorumRoleLeader,
		raft.RoleFollower: QuorumRoleFollower, raft.RoleResigned: QuorumRoleResigned,
	}[role]
}

// pump takes the node's next Ready when none is pending.
func (h *raftHarness) pump(host *raftHost) {
	if host.node != nil && host.pending == nil && host.node.HasReady() {
		ready := host.node.Ready()
		host.pending = &ready
	}
}

// perform makes the pending Ready durable, sends its messages, advances
// the node and records what changed, then applies the committed entries.
func (h *raftHarness) perform(host *raftHost) {
	ready := host.pending
	if ready == nil {
		return
	}
	host.pending = nil
	if ready.HardStateChanged {
		host.hard = ready.HardState
		h.recordPassedState(host)
	}
	if ready.Snapshot != nil {
		host.snapshot = raft.Snapshot{Offset: ready.Snapshot.Offset, Epoch: ready.Snapshot.Epoch, Data: slices.Clone(ready.Snapshot.Data)}
		host.log = nil
		h.rec.Snapshot(host.id, h.time, host.snapshot.Offset, host.snapshot.Epoch, string(host.snapshot.Data), SnapshotInstalled)
		h.rec.LogStart(host.id, h.time, host.snapshot.Offset)
		host.chain = string(host.snapshot.Data)
	}
	if ready.TruncateToOffset >= 0 {
		host.log = slices.DeleteFunc(host.log, func(e raft.Entry) bool { return e.Offset >= ready.TruncateToOffset })
	}
	for _, e := range ready.Entries {
		host.log = append(host.log, raft.Entry{Offset: e.Offset, Epoch: e.Epoch, Data: slices.Clone(e.Data)})
	}
	h.recordLogEnd(host)
	h.network = append(h.network, ready.Messages...)
	host.node.Advance()
	h.recordState(host)
	if hw := host.node.HighWatermark(); hw != host.recordedHighWatermark {
		host.recordedHighWatermark = hw
		h.rec.HighWatermark(host.id, h.time, hw)
	}
	for _, e := range ready.CommittedEntries {
		host.chain = nextChain(host.chain, e.Data)
		h.rec.Applied(host.id, h.time, e.Offset, e.Epoch, e.Data, host.chain)
	}
	h.pump(host)
}

// compact snapshots the node at what it applied, as a host may between an
// Advance and the next Ready.
func (h *raftHarness) compact(host *raftHost) {
	if host.node == nil || host.pending != nil {
		return
	}
	applied := host.appliedEnd(h)
	i := slices.IndexFunc(host.log, func(e raft.Entry) bool { return e.Offset == applied-1 })
	if i < 0 || applied <= host.node.LogStartOffset() {
		return
	}
	data := []byte(host.chain)
	if err := host.node.Compact(applied, host.log[i].Epoch, data); err != nil {
		return // not allowed now; the node is unchanged
	}
	host.snapshot = raft.Snapshot{Offset: applied, Epoch: host.log[i].Epoch, Data: data}
	host.log = slices.DeleteFunc(host.log, func(e raft.Entry) bool { return e.Offset < applied })
	h.rec.Snapshot(host.id, h.time, applied, host.snapshot.Epoch, host.chain, SnapshotTaken)
	h.rec.LogStart(host.id, h.time, applied)
}

// appliedEnd is one past the last entry the node applied in this
// incarnation, from the recorder's own history.
func (host *raftHost) appliedEnd(h *raftHarness) int64 {
	node := h.rec.History().Nodes[slices.IndexFunc(h.rec.History().Nodes, func(n QuorumNode) bool { return n.ID == host.id })]
	for j := len(node.Events) - 1; j >= 0; j-- {
		switch e := node.Events[j]; e.Kind {
		case QuorumEventApplied:
			return e.Offset + 1
		case QuorumEventSnapshot:
			if e.Source != SnapshotTaken {
				return e.Offset
			}
		case QuorumEventStart:
			return 0
		}
	}
	return 0
}

func (h *raftHarness) host(id int32) *raftHost { return h.hosts[id-1] }

// deliver hands message i to its target, unless it is dropped or the
// target is down.
func (h *raftHarness) deliver(i int, drop bool) {
	m := h.network[i]
	h.network = slices.Delete(h.network, i, i+1)
	host := h.host(m.To)
	if drop || host.node == nil {
		return
	}
	_ = host.node.Step(m) // a malformed or stale message changes nothing
	h.recordState(host)
	h.pump(host)
}

func (h *raftHarness) tick(host *raftHost) {
	if host.node == nil {
		return
	}
	host.node.Tick()
	h.recordState(host)
	h.pump(host)
}

func (h *raftHarness) propose() {
	for _, host := range h.hosts {
		if host.node != nil && host.node.Role() == raft.RoleLeader {
			h.proposals++
			if _, err := host.node.Propose([]byte(fmt.Sprintf("p%d", h.proposals))); err == nil {
				h.pump(host)
			}
			return
		}
	}
}

// step runs one random action of the fault phase. Most are single steps
// in random order; a round (every node ticks, then Readies and messages
// flow until none is left, some messages dropped) lets a leader commit
// between faults.
func (h *raftHarness) step() {
	h.time++
	host := rapid.SampledFrom(h.hosts).Draw(h.t, "host")
	switch action := rapid.IntRange(0, 19).Draw(h.t, "action"); {
	case action < 4:
		h.tick(host)
	case action < 9 && len(h.network) > 0:
		h.deliver(rapid.IntRange(0, len(h.network)-1).Draw(h.t, "message"), rapid.IntRange(0, 7).Draw(h.t, "drop") == 0)
	case action < 12:
		h.perform(host)
	case action < 15:
		for _, host := range h.hosts {
			h.tick(host)
		}
		h.propose()
		h.settle(rapid.IntRange(0, 15).Draw(h.t, "drop one in"))
	case action < 16:
		h.compact(host)
	case action < 17:
		h.observe(host)
	case action < 18:
		h.crash(host)
	default:
		if host.node == nil {
			h.start(host)
		}
	}
}

// heal restarts every node and runs rounds: every node ticks, then every
// Ready is performed and every message delivered, in order, until none is
// left, so that a request's round trip fits in one tick.
func (h *raftHarness) heal(rounds int) *QuorumLiveness {
	h.time++
	heal := h.time
	for _, host := range h.hosts {
		if host.node == nil {
			h.start(host)
		}
	}
	for round := range rounds {
		h.time++
		for _, host := range h.hosts {
			h.tick(host)
		}
		if round%10 == 0 {
			h.propose()
		}
		if round%25 == 0 {
			h.compact(h.hosts[round/25%len(h.hosts)])
			h.observe(h.hosts[round/25%len(h.hosts)])
		}
		h.settle(0)
	}
	return &QuorumLiveness{HealTime: heal, BoundNanos: h.time - heal}
}

// settle performs every Ready and delivers every message until none is
// left (or a bound on the passes is reached), dropping each message with
// probability 1/dropOneIn (never when it is 0).
func (h *raftHarness) settle(dropOneIn int) {
	const passesMax = 50
	for range passesMax {
		busy := len(h.network) > 0
		for _, host := range h.hosts {
			busy = busy || host.pending != nil
			h.perform(host)
		}
		for len(h.network) > 0 {
			h.deliver(0, dropOneIn > 0 && rapid.IntRange(1, dropOneIn).Draw(h.t, "drop") == 1)
		}
		if !busy {
			return
		}
	}
}

// chainMachine replays the committed history as the hosts' state machine
// does, so that snapshots and state digests are checked against it.
type chainMachine struct{ chain string }

func (m *chainMachine) Apply(_ int64, _ int32, data []byte) error {
	m.chain = nextChain(m.chain, data)
	return nil
}
func (m *chainMachine) Check() error                    { return nil }
func (m *chainMachine) Digest() string                  { return m.chain }
func (m *chainMachine) Brokers() []MetadataBroker       { return nil }
func (m *chainMachine) Partitions() []MetadataPartition { return nil }

// TestPropertyRealRaftRunsPass records random schedules of real Raft nodes
// (three voters and an observer, with message loss and reordering, crashes
// that lose the Ready in flight, restarts, snapshots and FetchSnapshot,
// clients asking nodes for the controller) and a heal, and requires
// CheckQuorum, liveness included, to pass them.
func TestPropertyRealRaftRunsPass(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := newRaftHarness(t)
		for range rapid.IntRange(0, 300).Draw(t, "steps") {
			h.step()
		}
		liveness := h.heal(200)
		history := h.rec.History()
		r := CheckQuorum(history, QuorumCheckConfig{NewMetadataMachine: func() MetadataMachine { return &chainMachine{} }, Liveness: liveness})
		if r.Status != StatusOK {
			t.Fatalf("a real Raft run fails:\n%s\n%s", r.Report(), history.Text())
		}
	})
}
