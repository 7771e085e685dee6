package raft

import "fmt"

// Role is what a node currently does in the quorum, after KRaft's
// QuorumState: Kafka names the same states Unattached, Prospective,
// Candidate, Leader, Follower and Resigned.
type Role int8

const (
	// RoleUnattached knows the epoch but no leader; it may have voted in it.
	RoleUnattached Role = iota
	// RoleProspective runs a pre-vote (KIP-996) without changing its epoch.
	RoleProspective
	// RoleCandidate has bumped the epoch, voted for itself and asks for votes.
	RoleCandidate
	// RoleLeader accepts proposals and answers Fetch.
	RoleLeader
	// RoleFollower fetches from the leader of its epoch.
	RoleFollower
	// RoleResigned was the leader of its epoch and gave up (check-quorum or a
	// requested resignation); it waits for a later epoch.
	RoleResigned
)

// String returns Kafka's name for the role.
func (r Role) String() string {
	switch r {
	case RoleUnattached:
		return "Unattached"
	case RoleProspective:
		return "Prospective"
	case RoleCandidate:
		return "Candidate"
	case RoleLeader:
		return "Leader"
	case RoleFollower:
		return "Follower"
	case RoleResigned:
		return "Resigned"
	}
	return fmt.Sprintf("Role(%d)", int8(r))
}

// NoNode stands for "no node": no vote cast, no leader known. It is Kafka's -1.
const NoNode int32 = -1

// HardState is the quorum state that must survive a crash (KRaft's
// quorum-state file): the epoch, the vote cast in it and the leader known in
// it. A node that forgot its vote could vote twice in one epoch, and a node
// that forgot its epoch could accept a deposed leader.
type HardState struct {
	Epoch    int32
	VotedFor int32
	LeaderID int32
}

// emptyHardState is the quorum state of a node that has never run.
var emptyHardState = HardState{Epoch: 0, VotedFor: NoNode, LeaderID: NoNode}

// Ready is the work a node has accumulated since the last Advance, as data.
// The host performs it in this order, then calls Advance:
//
//  1. If HardStateChanged, make HardState durable (KRaft writes its
//     quorum-state file atomically and syncs it). It goes first so that a
//     crash part way never leaves entries of an epoch the quorum state has
//     not reached.
//  2. If TruncateToOffset >= 0, remove every entry at or after it from the
//     durable log.
//  3. Append Entries to the durable log, in order.
//  4. If MustSync, sync the log and wait for it.
//  5. Only then send Messages. A vote granted, an epoch announced or a Fetch
//     sent (whose FetchOffset tells the leader what this node holds) must
//     never reach another node before the state it reports is durable.
//  6. Apply CommittedEntries to the state machine, in order. They are
//     committed by a majority, so they may be applied before step 4.
//
// A crash at any point may lose steps not yet made durable (a torn append
// keeps a prefix of Entries); the node then restarts from what was.
type Ready struct {
	HardState        HardState
	HardStateChanged bool
	TruncateToOffset int64
	Entries          []Entry
	MustSync         bool
	Messages         []Message
	CommittedEntries []Entry
}

// IsEmpty reports whether the Ready asks for nothing.
func (r *Ready) IsEmpty() bool {
	return !r.HardStateChanged && r.TruncateToOffset < 0 && len(r.Entries) == 0 &&
		len(r.Messages) == 0 && len(r.CommittedEntries) == 0
}

// Restored is the durable state a node restarts from: exactly what the host
// made durable by following Ready's steps.
type Restored struct {
	HardState HardState
	Entries   []Entry
}
