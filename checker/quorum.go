package checker

import (
	"errors"
	"fmt"
	"slices"
)

// This file defines the quorum history: what each node of the controller
// quorum recorded about itself, in the simulation's true virtual time, for
// CheckQuorum (quorum_check.go) to judge. docs/checker.md ("The controller
// quorum") states the recording contract with a recipe for each event.

// Limits on a quorum history. They keep a malformed or runaway history from
// making the checker allocate without bound; a real simulation stays far
// below them.
const (
	// quorumNodesMax bounds the nodes of one history (voters and observers).
	quorumNodesMax = 1024
	// quorumEventsMax bounds the events of one history, over all nodes.
	quorumEventsMax = 50_000_000
	// quorumEntryBytesMax bounds the data of one applied entry.
	quorumEntryBytesMax = 1 << 24
	// quorumDigestBytesMax bounds a recorded digest. A digest is meant to be
	// a short hash, such as a hexadecimal SHA-256 (64 bytes).
	quorumDigestBytesMax = 1024
)

// NoQuorumNode stands for "no node" in a leader or vote: Kafka's -1.
const NoQuorumNode int32 = -1

// QuorumHistory is everything the nodes of a controller quorum recorded, each
// about itself, plus what clients saw of the controller. Each node's events
// are in the order the node recorded them, with times that never decrease.
type QuorumHistory struct {
	// Voters are the node ids of controller.quorum.voters. Every other node
	// is an observer: it counts for no majority.
	Voters []int32 `json:"voters"`
	// Nodes are every node that ran, voters and observers, each once.
	Nodes []QuorumNode `json:"nodes"`
	// Observations are what clients learned about the active controller
	// (optional).
	Observations []ControllerObservation `json:"observations,omitempty"`
}

// QuorumNode is one node (by node.id) and what it recorded, over all its
// process incarnations.
type QuorumNode struct {
	ID int32 `json:"id"`
	// Broker is set when process.roles includes broker: the liveness check
	// requires such a node, when it runs, to be registered and unfenced
	// after healing.
	Broker bool `json:"broker,omitempty"`
	// Events are the node's records in order. The first is a
	// QuorumEventStart, and each restart opens with another.
	Events []QuorumEvent `json:"events"`
}

// QuorumEventKind says what a node recorded.
type QuorumEventKind string

// The quorum event kinds. Each names the fields of QuorumEvent it uses;
// the others stay zero.
const (
	// QuorumEventStart opens a process incarnation: the node started, or
	// restarted after a crash or a stop, with what its disk held. Every
	// event up to the next start belongs to this incarnation.
	QuorumEventStart QuorumEventKind = "start"
	// QuorumEventStop closes an incarnation: the process crashed, lost
	// power or stopped. Until the next start the node is not running.
	QuorumEventStop QuorumEventKind = "stop"
	// QuorumEventState: the node's quorum state as it now stands, with
	// its epoch durable (Epoch, Role, Leader, Vote).
	QuorumEventState QuorumEventKind = "state"
	// QuorumEventHighWatermark: the node's high watermark changed (Offset:
	// the offset just past the last entry it knows committed).
	QuorumEventHighWatermark QuorumEventKind = "high-watermark"
	// QuorumEventLogEnd: the node's durable log end changed (Offset: one
	// past the last entry its disk holds durably), after a sync, a
	// truncation, or at a start.
	QuorumEventLogEnd QuorumEventKind = "log-end"
	// QuorumEventLogStart: the node's log start changed (Offset: its first
	// entry; everything below lives only in a snapshot).
	QuorumEventLogStart QuorumEventKind = "log-start"
	// QuorumEventApplied: the node applied a committed entry to its state
	// machine (Offset, Epoch, Data; Digest optionally, the digest of the
	// state machine after applying it).
	QuorumEventApplied QuorumEventKind = "applied"
	// QuorumEventSnapshot: the node took, installed or loaded a snapshot
	// (Offset: the snapshot's end offset, the first entry it does not
	// contain; Epoch: the epoch of the last entry it contains; Digest: the
	// digest of the state it holds; Source).
	QuorumEventSnapshot QuorumEventKind = "snapshot"
)

// QuorumRole is what a node does in the quorum, with KRaft's names.
type QuorumRole string

// The roles. Observers (brokers that are not voters) record Follower or
// Unattached, like a voter that never campaigns.
const (
	QuorumRoleUnattached  QuorumRole = "unattached"
	QuorumRoleProspective QuorumRole = "prospective"
	QuorumRoleCandidate   QuorumRole = "candidate"
	QuorumRoleLeader      QuorumRole = "leader"
	QuorumRoleFollower    QuorumRole = "follower"
	QuorumRoleResigned    QuorumRole = "resigned"
)

// quorumRoles lists the valid roles.
var quorumRoles = []QuorumRole{
	QuorumRoleUnattached, QuorumRoleProspective, QuorumRoleCandidate,
	QuorumRoleLeader, QuorumRoleFollower, QuorumRoleResigned,
}

// SnapshotSource says where a node's snapshot came from.
type SnapshotSource string

// The snapshot sources.
const (
	// SnapshotTaken: the node wrote it from its own state machine. Its
	// state machine is unchanged.
	SnapshotTaken SnapshotSource = "taken"
	// SnapshotInstalled: the node fetched it from the leader
	// (FetchSnapshot) and replaced its state machine with it.
	SnapshotInstalled SnapshotSource = "installed"
	// SnapshotLoaded: the node read it from its own disk at a start and
	// rebuilt its state machine from it.
	SnapshotLoaded SnapshotSource = "loaded"
)

// QuorumEvent is one record of a node. Kind says which fields it uses (see
// the QuorumEvent* constants); the others are zero.
type QuorumEvent struct {
	// Time is the simulation's true virtual time, in nanoseconds, at which
	// the node recorded the event: never the node's own (possibly drifting)
	// clock, so that events of different nodes compare.
	Time int64           `json:"time"`
	Kind QuorumEventKind `json:"kind"`
	// Epoch is the quorum epoch of a state, or the Raft epoch of an
	// applied entry or of a snapshot's last entry.
	Epoch int32 `json:"epoch,omitempty"`
	// Role, Leader and Vote complete a state: Leader and Vote are node ids
	// or NoQuorumNode. A leader's Leader is its own id.
	Role   QuorumRole `json:"role,omitempty"`
	Leader int32      `json:"leader,omitempty"`
	Vote   int32      `json:"vote,omitempty"`
	// Offset is the high watermark, log end or log start, an applied
	// entry's offset or a snapshot's end offset.
	Offset int64 `json:"offset,omitempty"`
	// Data is an applied entry's bytes; nil for Raft's leader-change
	// entry.
	Data []byte `json:"data,omitempty"`
	// Digest identifies a state machine's state: of a snapshot, or after an
	// applied entry (optional there). Nodes and the checker's replay
	// (MetadataMachine.Digest) must compute it the same way.
	Digest string         `json:"digest,omitempty"`
	Source SnapshotSource `json:"source,omitempty"`
}

// ControllerObservation is what a client (a broker, or an admin client
// through Metadata or DescribeQuorum) learned about the active controller.
type ControllerObservation struct {
	// Client names the observer, for explanations only.
	Client string `json:"client"`
	// Time is when the answer arrived, in virtual nanoseconds.
	Time int64 `json:"time"`
	// Controller is the node id the answer named as active controller, and
	// Epoch the quorum epoch it named it in.
	Controller int32 `json:"controller"`
	Epoch      int32 `json:"epoch"`
}

// ErrInvalidQuorumHistory is wrapped by every error QuorumHistory.Validate
// returns.
var ErrInvalidQuorumHistory = errors.New("invalid quorum history")

// Validate reports the first violation of the recording contract that can be
// seen without judging the nodes: unknown kinds and roles, events out of time
// order, a node whose first event is not a start, fields out of range.
func (h *QuorumHistory) Validate() error {
	if err := h.validateMembers(); err != nil {
		return err
	}
	events := 0
	for i := range h.Nodes {
		node := &h.Nodes[i]
		events += len(node.Events)
		if events > quorumEventsMax {
			return fmt.Errorf("%w: more than %d events", ErrInvalidQuorumHistory, quorumEventsMax)
		}
		if err := validateQuorumNode(node); err != nil {
			return err
		}
	}
	for i, o := range h.Observations {
		if o.Time < 0 || o.Epoch < 0 || o.Controller < 0 {
			return fmt.Errorf("%w: observation %d by %q has a negative time, epoch or controller", ErrInvalidQuorumHistory, i, o.Client)
		}
	}
	return nil
}

// validateMembers checks the voters and node ids: distinct, non-negative,
// and every voter present among the nodes.
func (h *QuorumHistory) validateMembers() error {
	if len(h.Voters) == 0 {
		return fmt.Errorf("%w: no voters", ErrInvalidQuorumHistory)
	}
	if len(h.Nodes) > quorumNodesMax {
		return fmt.Errorf("%w: %d nodes, at most %d", ErrInvalidQuorumHistory, len(h.Nodes), quorumNodesMax)
	}
	ids := make([]int32, 0, len(h.Nodes))
	for _, node := range h.Nodes {
		ids = append(ids, node.ID)
	}
	if err := distinctNodeIDs("node", ids); err != nil {
		return err
	}
	if err := distinctNodeIDs("voter", h.Voters); err != nil {
		return err
	}
	for _, voter := range h.Voters {
		if !slices.Contains(ids, voter) {
			return fmt.Errorf("%w: voter %d has no node", ErrInvalidQuorumHistory, voter)
		}
	}
	return nil
}

func distinctNodeIDs(what string, ids []int32) error {
	sorted := slices.Sorted(slices.Values(ids))
	for i, id := range sorted {
		if id < 0 {
			return fmt.Errorf("%w: %s id %d is negative", ErrInvalidQuorumHistory, what, id)
		}
		if i > 0 && sorted[i-1] == id {
			return fmt.Errorf("%w: %s id %d appears twice", ErrInvalidQuorumHistory, what, id)
		}
	}
	return nil
}

// validateQuorumNode checks one node's events on their own.
func validateQuorumNode(node *QuorumNode) error {
	for i := range node.Events {
		e := &node.Events[i]
		if i == 0 && e.Kind != QuorumEventStart {
			return fmt.Errorf("%w: node %d: first event is %q, not %q", ErrInvalidQuorumHistory, node.ID, e.Kind, QuorumEventStart)
		}
		if e.Time < 0 || (i > 0 && e.Time < node.Events[i-1].Time) {
			return fmt.Errorf("%w: node %d event %d: time %d is negative or before the previous event's", ErrInvalidQuorumHistory, node.ID, i, e.Time)
		}
		if err := validateQuorumEvent(node.ID, e); err != nil {
			return fmt.Errorf("%w: node %d event %d (%s): %w", ErrInvalidQuorumHistory, node.ID, i, e.Kind, err)
		}
	}
	return nil
}

// validateQuorumEvent checks the fields one event's kind uses.
func validateQuorumEvent(id int32, e *QuorumEvent) error {
	switch e.Kind {
	case QuorumEventStart, QuorumEventStop:
		return nil
	case QuorumEventState:
		return validateQuorumState(id, e)
	case QuorumEventHighWatermark, QuorumEventLogEnd, QuorumEventLogStart:
		if e.Offset < 0 {
			return fmt.Errorf("negative offset %d", e.Offset)
		}
		return nil
	case QuorumEventApplied, QuorumEventSnapshot:
		return validateQuorumEntry(e)
	}
	return fmt.Errorf("unknown kind")
}

func validateQuorumState(id int32, e *QuorumEvent) error {
	switch {
	case e.Epoch < 0:
		return fmt.Errorf("negative epoch %d", e.Epoch)
	case !slices.Contains(quorumRoles, e.Role):
		return fmt.Errorf("unknown role %q", e.Role)
	case e.Leader < NoQuorumNode || e.Vote < NoQuorumNode:
		return fmt.Errorf("leader %d or vote %d below %d", e.Leader, e.Vote, NoQuorumNode)
	case e.Role == QuorumRoleLeader && e.Leader != id:
		return fmt.Errorf("a leader names %d as leader, not itself", e.Leader)
	case e.Role == QuorumRoleFollower && e.Leader == NoQuorumNode:
		return fmt.Errorf("a follower names no leader")
	}
	return nil
}

func validateQuorumEntry(e *QuorumEvent) error {
	switch {
	case e.Offset < 0 || e.Epoch < 0:
		return fmt.Errorf("negative offset %d or epoch %d", e.Offset, e.Epoch)
	case len(e.Data) > quorumEntryBytesMax:
		return fmt.Errorf("%d bytes of data, at most %d", len(e.Data), quorumEntryBytesMax)
	case len(e.Digest) > quorumDigestBytesMax:
		return fmt.Errorf("a digest of %d bytes, at most %d", len(e.Digest), quorumDigestBytesMax)
	case e.Kind == QuorumEventSnapshot && !slices.Contains([]SnapshotSource{SnapshotTaken, SnapshotInstalled, SnapshotLoaded}, e.Source):
		return fmt.Errorf("unknown snapshot source %q", e.Source)
	case e.Kind == QuorumEventSnapshot && e.Digest == "":
		return fmt.Errorf("a snapshot without a digest")
	}
	return nil
}

// QuorumRecorder builds a QuorumHistory from the nodes' callbacks: one
// method per event kind, each taking the node id and the true virtual time.
// It holds no clock and checks nothing; QuorumHistory.Validate and
// CheckQuorum do. Nodes appear in the history in the order of their first
// event.
type QuorumRecorder struct {
	history QuorumHistory
	// index maps a node id to its position in history.Nodes; it is only
	// looked up, never ranged over.
	index map[int32]int
}

// NewQuorumRecorder returns a recorder for a quorum with the given voters.
func NewQuorumRecorder(voters []int32) *QuorumRecorder {
	return &QuorumRecorder{history: QuorumHistory{Voters: slices.Clone(voters)}, index: map[int32]int{}}
}

// History returns the history recorded so far. The recorder keeps sharing
// it: record nothing more once it is handed to CheckQuorum.
func (r *QuorumRecorder) History() *QuorumHistory { return &r.history }

func (r *QuorumRecorder) add(id int32, e QuorumEvent) {
	i, ok := r.index[id]
	if !ok {
		i = len(r.history.Nodes)
		r.index[id] = i
		r.history.Nodes = append(r.history.Nodes, QuorumNode{ID: id})
	}
	r.history.Nodes[i].Events = append(r.history.Nodes[i].Events, e)
}

// Start records that node id's process started; broker says whether its
// process.roles includes broker.
func (r *QuorumRecorder) Start(id int32, time int64, broker bool) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventStart})
	r.history.Nodes[r.index[id]].Broker = broker
}

// Stop records that node id's process crashed, lost power or stopped.
func (r *QuorumRecorder) Stop(id int32, time int64) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventStop})
}

// State records node id's quorum state once its epoch and vote are durable.
func (r *QuorumRecorder) State(id int32, time int64, epoch int32, role QuorumRole, leader, vote int32) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventState, Epoch: epoch, Role: role, Leader: leader, Vote: vote})
}

// HighWatermark records node id's new high watermark.
func (r *QuorumRecorder) HighWatermark(id int32, time, offset int64) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventHighWatermark, Offset: offset})
}

// LogEnd records node id's new durable log end.
func (r *QuorumRecorder) LogEnd(id int32, time, offset int64) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventLogEnd, Offset: offset})
}

// LogStart records node id's new log start.
func (r *QuorumRecorder) LogStart(id int32, time, offset int64) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventLogStart, Offset: offset})
}

// Applied records that node id applied the committed entry (offset, epoch,
// data); digest is the state machine's digest after it, or "".
func (r *QuorumRecorder) Applied(id int32, time, offset int64, epoch int32, data []byte, digest string) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventApplied, Offset: offset, Epoch: epoch, Data: slices.Clone(data), Digest: digest})
}

// Snapshot records that node id took, installed or loaded the snapshot
// ending at endOffset.
func (r *QuorumRecorder) Snapshot(id int32, time, endOffset int64, epoch int32, digest string, source SnapshotSource) {
	r.add(id, QuorumEvent{Time: time, Kind: QuorumEventSnapshot, Offset: endOffset, Epoch: epoch, Digest: digest, Source: source})
}

// Observe records what a client learned about the active controller.
func (r *QuorumRecorder) Observe(client string, time int64, controller, epoch int32) {
	r.history.Observations = append(r.history.Observations, ControllerObservation{Client: client, Time: time, Controller: controller, Epoch: epoch})
}
