package checker

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"pgregory.net/rapid"
)

// quorumModel is a small, correct controller quorum: voters 1, 2 and 3 and
// observer 4, all brokers. Leaders are elected only with a majority of
// running voters and only among voters that hold the whole committed log;
// a leader commits only with a majority running, and every running node
// then holds the log durably, learns the high watermark and applies up to
// it. Proposals that a crashed leader never committed are lost, as Raft
// allows. The log is real metadata records (script), so the replay runs
// through metadata.Image.
type quorumModel struct {
	r     *QuorumRecorder
	time  int64
	epoch int32
	// leader is the running leader, or NoQuorumNode.
	leader int32
	// committed are the committed entries with their epochs; pending are
	// the leader's entries not yet committed.
	committed, pending             [][]byte
	committedEpochs, pendingEpochs []int32
	// scripted counts the script records in committed and pending.
	scripted int
	nodes    map[int32]*modelNode // only looked up
	clients  int
}

// modelNode is what the model knows of one node.
type modelNode struct {
	id      int32
	voter   bool
	running bool
	// epoch, leader and vote are durable.
	epoch         int32
	leader, vote  int32
	role          QuorumRole
	durableEnd    int64
	highWatermark int64
	next          int64
	snapshotEnd   int64
}

var modelIDs = []int32{1, 2, 3, 4}

func newQuorumModel() *quorumModel {
	m := &quorumModel{r: NewQuorumRecorder([]int32{1, 2, 3}), leader: NoQuorumNode, nodes: map[int32]*modelNode{}}
	for _, id := range modelIDs {
		n := &modelNode{id: id, voter: id != 4, running: true, leader: NoQuorumNode, vote: NoQuorumNode, role: QuorumRoleUnattached}
		m.nodes[id] = n
		m.r.Start(id, 0, true)
		m.r.State(id, 0, 0, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode)
		m.r.LogEnd(id, 0, 0)
	}
	return m
}

// scriptRecord is the i-th record of the metadata script: brokers 1 to 4
// registered and unfenced, topic t and its partition 0 on brokers 1 to 3,
// then forever: a clean leader move within the ISR, broker 4 fenced, broker
// 4 unfenced.
func scriptRecord(i int) metadata.Record {
	switch {
	case i < 4:
		return &metadata.RegisterBrokerRecord{BrokerID: int32(i + 1), BrokerEpoch: 1, Fenced: true}
	case i < 8:
		return &metadata.UnfenceBrokerRecord{BrokerID: int32(i - 3), BrokerEpoch: 1}
	case i == 8:
		return &metadata.TopicRecord{Name: "t", ID: testTopicID}
	case i == 9:
		return &metadata.PartitionRecord{PartitionState: partitionState([]int32{1, 2, 3}, 1, 0, 0, false)}
	}
	cycle, step := (i-10)/3, (i-10)%3
	switch step {
	case 0:
		change := int32(cycle + 1)
		return &metadata.PartitionChangeRecord{PartitionState: partitionState([]int32{1, 2, 3}, change%3+1, change, change, false)}
	case 1:
		return &metadata.FenceBrokerRecord{BrokerID: 4, BrokerEpoch: 1}
	}
	return &metadata.UnfenceBrokerRecord{BrokerID: 4, BrokerEpoch: 1}
}

func (m *quorumModel) tick(t *rapid.T) { m.time += int64(rapid.IntRange(1, 5).Draw(t, "dt")) }

func (m *quorumModel) running(voters bool) []int32 {
	var ids []int32
	for _, id := range modelIDs {
		if n := m.nodes[id]; n.running && (!voters || n.voter) {
			ids = append(ids, id)
		}
	}
	return ids
}

// setState records a node's new durable quorum state.
func (m *quorumModel) setState(n *modelNode, epoch int32, role QuorumRole, leader, vote int32) {
	n.epoch, n.role, n.leader, n.vote = epoch, role, leader, vote
	m.r.State(n.id, m.time, epoch, role, leader, vote)
}

// elect makes an up-to-date running voter leader of a new epoch, when a
// majority of voters runs.
func (m *quorumModel) elect(t *rapid.T) {
	voters := m.running(true)
	var eligible []int32
	for _, id := range voters {
		if m.nodes[id].durableEnd == int64(len(m.committed)) {
			eligible = append(eligible, id)
		}
	}
	if len(voters) < 2 || len(eligible) == 0 {
		return
	}
	m.dropPending()
	candidate := m.nodes[rapid.SampledFrom(eligible).Draw(t, "candidate")]
	m.epoch++
	m.setState(candidate, m.epoch, QuorumRoleCandidate, NoQuorumNode, candidate.id)
	for _, id := range voters {
		if id != candidate.id {
			m.setState(m.nodes[id], m.epoch, QuorumRoleUnattached, NoQuorumNode, candidate.id)
		}
	}
	m.time++
	m.setState(candidate, m.epoch, QuorumRoleLeader, candidate.id, candidate.id)
	for _, id := range m.running(false) {
		if n := m.nodes[id]; id != candidate.id {
			vote := NoQuorumNode
			if n.voter {
				vote = candidate.id
			}
			m.setState(n, m.epoch, QuorumRoleFollower, candidate.id, vote)
		}
	}
	m.leader = candidate.id
	m.pending, m.pendingEpochs = append(m.pending, nil), append(m.pendingEpochs, m.epoch)
	if rapid.Bool().Draw(t, "observe") {
		m.clients++
		m.r.Observe(fmt.Sprintf("client-%d", m.clients), m.time+1, candidate.id, m.epoch)
	}
}

// dropPending loses what the leader proposed and did not commit.
func (m *quorumModel) dropPending() {
	for _, data := range m.pending {
		if data != nil {
			m.scripted--
		}
	}
	m.pending, m.pendingEpochs = nil, nil
}

func (m *quorumModel) propose(count int) {
	if m.leader == NoQuorumNode {
		return
	}
	for range count {
		m.pending = append(m.pending, metadata.Encode(scriptRecord(m.scripted)))
		m.pendingEpochs = append(m.pendingEpochs, m.epoch)
		m.scripted++
	}
}

// commit makes the pending entries durable on every running node and
// committed, when a majority of voters runs; then every running node
// learns the high watermark and applies up to it.
func (m *quorumModel) commit(t *rapid.T) {
	if m.leader == NoQuorumNode || len(m.running(true)) < 2 {
		return
	}
	m.committed = append(m.committed, m.pending...)
	m.committedEpochs = append(m.committedEpochs, m.pendingEpochs...)
	m.pending, m.pendingEpochs = nil, nil
	end := int64(len(m.committed))
	running := m.running(false)
	for _, id := range running {
		n := m.nodes[id]
		if n.epoch < m.epoch || n.leader != m.leader {
			// A node that missed the election learns the epoch from the
			// leader; it cast no vote in it.
			vote := n.vote
			if n.epoch < m.epoch {
				vote = NoQuorumNode
			}
			m.setState(n, m.epoch, QuorumRoleFollower, m.leader, vote)
		}
		if n.durableEnd != end {
			n.durableEnd = end
			m.r.LogEnd(id, m.time, end)
		}
	}
	m.time++
	// The leader learns the high watermark first, then the others.
	slices.SortStableFunc(running, func(a, b int32) int {
		switch {
		case a == m.leader:
			return -1
		case b == m.leader:
			return 1
		}
		return 0
	})
	for _, id := range running {
		n := m.nodes[id]
		if n.highWatermark != end {
			n.highWatermark = end
			m.r.HighWatermark(id, m.time, end)
		}
		for ; n.next < end; n.next++ {
			digest := ""
			if n.next == end-1 && rapid.Bool().Draw(t, "digest") {
				digest = m.digest(end)
			}
			m.r.Applied(id, m.time, n.next, m.committedEpochs[n.next], m.committed[n.next], digest)
		}
	}
}

// digest is the digest of the image after the first end committed entries,
// each applied in its own epoch.
func (m *quorumModel) digest(end int64) string {
	image := metadata.NewImage()
	for offset, data := range m.committed[:end] {
		_ = image.Apply(int64(offset), m.committedEpochs[offset], data) // the property test fails on refusals
	}
	return imageDigest(image)
}

func (m *quorumModel) crash(id int32) {
	n := m.nodes[id]
	if !n.running {
		return
	}
	n.running = false
	m.r.Stop(id, m.time)
	if id == m.leader {
		m.leader = NoQuorumNode
		m.dropPending()
	}
}

// restart brings a node back with its durable state: its quorum state, its
// log and its latest snapshot; its high watermark starts afresh.
func (m *quorumModel) restart(id int32) {
	n := m.nodes[id]
	if n.running {
		return
	}
	n.running = true
	m.r.Start(id, m.time, true)
	role := QuorumRoleUnattached
	switch n.leader {
	case NoQuorumNode:
	case id:
		role = QuorumRoleResigned
	default:
		role = QuorumRoleFollower
	}
	m.setState(n, n.epoch, role, n.leader, n.vote)
	m.r.LogEnd(id, m.time, n.durableEnd)
	n.highWatermark, n.next = 0, 0
	if n.snapshotEnd > 0 {
		m.r.Snapshot(id, m.time, n.snapshotEnd, m.committedEpochs[n.snapshotEnd-1], m.digest(n.snapshotEnd), SnapshotLoaded)
		m.r.LogStart(id, m.time, n.snapshotEnd)
		n.next = n.snapshotEnd
	}
}

// snapshot has a node snapshot what it applied and drop its log below.
func (m *quorumModel) snapshot(id int32) {
	n := m.nodes[id]
	if !n.running || n.next == 0 || n.next == n.snapshotEnd {
		return
	}
	n.snapshotEnd = n.next
	m.r.Snapshot(id, m.time, n.next, m.committedEpochs[n.next-1], m.digest(n.next), SnapshotTaken)
	m.r.LogStart(id, m.time, n.next)
}

// heal restarts every node, elects a leader if none runs, and commits the
// script up to a point where broker 4 is unfenced.
func (m *quorumModel) heal(t *rapid.T) *QuorumLiveness {
	m.tick(t)
	heal := m.time
	for _, id := range modelIDs {
		m.restart(id)
	}
	m.tick(t)
	if m.leader == NoQuorumNode {
		m.elect(t)
	}
	for m.scripted < 10 || (m.scripted-10)%3 == 2 {
		m.propose(1)
	}
	m.tick(t)
	m.commit(t)
	return &QuorumLiveness{HealTime: heal, BoundNanos: m.time - heal}
}

// genQuorumRun records a random correct run, then heals.
func genQuorumRun(t *rapid.T) (*QuorumHistory, *QuorumLiveness) {
	m := newQuorumModel()
	steps := rapid.IntRange(1, 40).Draw(t, "steps")
	for range steps {
		m.tick(t)
		id := rapid.SampledFrom(modelIDs).Draw(t, "node")
		switch rapid.IntRange(0, 6).Draw(t, "step") {
		case 0:
			m.elect(t)
		case 1:
			m.propose(rapid.IntRange(1, 4).Draw(t, "count"))
		case 2, 3:
			m.commit(t)
		case 4:
			m.crash(id)
		case 5:
			m.restart(id)
		case 6:
			m.snapshot(id)
		}
	}
	liveness := m.heal(t)
	return m.r.History(), liveness
}

// TestPropertyQuorumRunsPassMutantsFail generates correct runs of the model
// and requires CheckQuorum, with the real metadata image and liveness, to
// pass them. It then breaks each run with one edit that must produce a
// named anomaly, and requires that anomaly.
func TestPropertyQuorumRunsPassMutantsFail(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h, liveness := genQuorumRun(t)
		cfg := QuorumCheckConfig{NewMetadataMachine: newImageMachine, Liveness: liveness}
		if r := CheckQuorum(h, cfg); r.Status != StatusOK || len(r.Findings) != 0 {
			t.Fatalf("a correct run fails:\n%s\n%s", r.Report(), h.Text())
		}
		mutant := cloneQuorumHistory(t, h)
		kind, what := mutateQuorum(t, mutant)
		if kind == "" {
			return // nothing of that kind to break in this run
		}
		r := CheckQuorum(mutant, cfg)
		if r.Err != nil {
			t.Fatalf("mutant (%s) is invalid: %v", what, r.Err)
		}
		if !slices.Contains(quorumKinds(r), kind) {
			t.Fatalf("mutant (%s) lacks %s:\n%s\n%s", what, kind, r.Report(), mutant.Text())
		}
	})
}

// cloneQuorumHistory deep-copies h through its JSON encoding, which must
// keep everything CheckQuorum judges.
func cloneQuorumHistory(t *rapid.T, h *QuorumHistory) *QuorumHistory {
	var buf bytes.Buffer
	if err := EncodeQuorumJSON(&buf, h); err != nil {
		t.Fatal(err)
	}
	clone, err := DecodeQuorumJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return &clone
}

// quorumMutation is one way to break a correct run: it picks an event it
// can change (pick returns false when the run has none) and changes it.
type quorumMutation struct {
	kind QuorumAnomalyKind
	// pick reports whether node n's event j can be changed so as to
	// produce kind.
	pick   func(h *QuorumHistory, n, j int) bool
	change func(h *QuorumHistory, n, j int)
}

var quorumMutations = []quorumMutation{
	// Only a voter's epoch must survive a restart; node 4 is an observer.
	{kind: QuorumAnomalyEpochWentBack,
		pick: func(h *QuorumHistory, n, j int) bool {
			return h.Nodes[n].ID != 4 && h.Nodes[n].Events[j].Kind == QuorumEventState && maxEpochBefore(h, n, j) >= 1
		},
		change: func(h *QuorumHistory, n, j int) { h.Nodes[n].Events[j].Epoch = maxEpochBefore(h, n, j) - 1 }},
	{kind: QuorumAnomalyTwoVotesOneEpoch,
		pick: func(h *QuorumHistory, n, j int) bool { return earlierVote(h, n, j) >= 0 },
		change: func(h *QuorumHistory, n, j int) {
			h.Nodes[n].Events[j].Vote = h.Nodes[n].Events[earlierVote(h, n, j)].Vote%3 + 1
		}},
	{kind: QuorumAnomalyTwoLeadersOneEpoch,
		pick: func(h *QuorumHistory, n, j int) bool { return h.Nodes[n].Events[j].Role == QuorumRoleFollower },
		change: func(h *QuorumHistory, n, j int) {
			e := &h.Nodes[n].Events[j]
			e.Leader = e.Leader%3 + 1
		}},
	{kind: QuorumAnomalyHighWatermarkWentBack,
		pick: func(h *QuorumHistory, n, j int) bool { return previousHighWatermark(h, n, j) >= 1 },
		change: func(h *QuorumHistory, n, j int) {
			h.Nodes[n].Events[j].Offset = h.Nodes[n].Events[previousHighWatermark(h, n, j)].Offset - 1
		}},
	// Without their durable log ends, no two voters hold anything.
	{kind: QuorumAnomalyHighWatermarkWithoutMajority,
		pick: func(h *QuorumHistory, n, j int) bool {
			return h.Nodes[n].ID <= 2 && h.Nodes[n].Events[j].Kind == QuorumEventHighWatermark && h.Nodes[n].Events[j].Offset > 0
		},
		change: func(h *QuorumHistory, _, _ int) {
			for i := range h.Nodes[:2] {
				h.Nodes[i].Events = slices.DeleteFunc(h.Nodes[i].Events, func(e QuorumEvent) bool { return e.Kind == QuorumEventLogEnd })
			}
		}},
	{kind: QuorumAnomalyAppliedNotDense,
		pick: func(h *QuorumHistory, n, j int) bool {
			events := h.Nodes[n].Events
			return events[j].Kind == QuorumEventApplied && j+1 < len(events) && events[j+1].Kind == QuorumEventApplied
		},
		change: func(h *QuorumHistory, n, j int) { h.Nodes[n].Events = slices.Delete(h.Nodes[n].Events, j, j+1) }},
	{kind: QuorumAnomalyCommittedDataDiffers,
		pick: func(h *QuorumHistory, n, j int) bool {
			return n > 0 && h.Nodes[n].Events[j].Kind == QuorumEventApplied && appliedElsewhere(h, n, h.Nodes[n].Events[j].Offset)
		},
		change: func(h *QuorumHistory, n, j int) {
			e := &h.Nodes[n].Events[j]
			e.Data = append(slices.Clone(e.Data), 'x')
		}},
	{kind: QuorumAnomalySnapshotDiffers,
		pick:   func(h *QuorumHistory, n, j int) bool { return h.Nodes[n].Events[j].Kind == QuorumEventSnapshot },
		change: func(h *QuorumHistory, n, j int) { h.Nodes[n].Events[j].Digest = "broken" }},
}

// mutateQuorum applies one mutation drawn by t to a random event it fits
// and returns the anomaly it must cause, or "" when none fits.
func mutateQuorum(t *rapid.T, h *QuorumHistory) (QuorumAnomalyKind, string) {
	mutation := rapid.SampledFrom(quorumMutations).Draw(t, "mutation")
	type site struct{ n, j int }
	var sites []site
	for n := range h.Nodes {
		for j := range h.Nodes[n].Events {
			if mutation.pick(h, n, j) {
				sites = append(sites, site{n, j})
			}
		}
	}
	if len(sites) == 0 {
		return "", ""
	}
	s := rapid.SampledFrom(sites).Draw(t, "site")
	mutation.change(h, s.n, s.j)
	return mutation.kind, fmt.Sprintf("%s at node %d event #%d", mutation.kind, h.Nodes[s.n].ID, s.j)
}

func maxEpochBefore(h *QuorumHistory, n, j int) int32 {
	highest := int32(-1)
	for _, e := range h.Nodes[n].Events[:j] {
		if e.Kind == QuorumEventState {
			highest = max(highest, e.Epoch)
		}
	}
	return highest
}

// earlierVote returns the index of an earlier state of node n with a vote
// in the epoch of state j, when j is a state with a vote; else -1.
func earlierVote(h *QuorumHistory, n, j int) int {
	e := h.Nodes[n].Events[j]
	if e.Kind != QuorumEventState || e.Vote == NoQuorumNode {
		return -1
	}
	for i := j - 1; i >= 0; i-- {
		if other := h.Nodes[n].Events[i]; other.Kind == QuorumEventState && other.Epoch == e.Epoch && other.Vote != NoQuorumNode {
			return i
		}
	}
	return -1
}

// previousHighWatermark returns the index of node n's previous high
// watermark in the incarnation of event j, when j is one; else -1.
func previousHighWatermark(h *QuorumHistory, n, j int) int {
	if h.Nodes[n].Events[j].Kind != QuorumEventHighWatermark {
		return -1
	}
	for i := j - 1; i >= 0; i-- {
		switch h.Nodes[n].Events[i].Kind {
		case QuorumEventStart:
			return -1
		case QuorumEventHighWatermark:
			return i
		}
	}
	return -1
}

// appliedElsewhere reports whether a node before node n applied offset.
func appliedElsewhere(h *QuorumHistory, n int, offset int64) bool {
	for _, node := range h.Nodes[:n] {
		for _, e := range node.Events {
			if e.Kind == QuorumEventApplied && e.Offset == offset {
				return true
			}
		}
	}
	return false
}
