package group

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is the state of a group (see the package documentation).
type State int8

// The group states, named as Kafka names them in DescribeGroups and
// ListGroups.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

// String returns Kafka's name of the state.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// groupType is what ListGroups v5+ reports for every group we hold: we
// implement only the classic protocol.
const groupType = "classic"

type topicPartition struct {
	topic     string
	partition int32
}

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
}

type protocol struct {
	name     string
	metadata []byte
}

// parkedJoin is a JoinGroup waiting for the join phase to end.
type parkedJoin struct {
	req     *kmsg.JoinGroupRequest
	respond func(*kmsg.JoinGroupResponse)
}

// parkedSync is a SyncGroup waiting for the leader's assignment.
type parkedSync struct {
	req     *kmsg.SyncGroupRequest
	respond func(*kmsg.SyncGroupResponse)
}

type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	// protocols are in the member's order of preference.
	protocols []protocol

	// assignment is what the leader of the current generation assigned;
	// assigned says whether it has been set in this generation.
	assignment []byte
	assigned   bool
	// synced says the member sent SyncGroup in this generation.
	synced bool

	join *parkedJoin
	sync *parkedSync

	session    core.Timer
	sessionSeq uint64
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

// sameProtocols reports whether a rejoin offers exactly the protocols the
// member offered before, so that no rebalance is needed.
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].name || !bytes.Equal(ps[i].Metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

// pendingMember is a member id handed out with MEMBER_ID_REQUIRED (KIP-394)
// whose owner has not joined with it yet.
type pendingMember struct {
	id      string
	session core.Timer
}

type group struct {
	name         string
	state        State
	generation   int32
	protocolType string
	protocol     string
	leader       string

	// members are in join order; byID and byInstance index them.
	members    []*member
	byID       map[string]*member
	byInstance map[string]*member
	pending    map[string]*pendingMember
	// joined counts members with a parked JoinGroup.
	joined int

	// joinTimer is the join deadline or the initial delay of the join phase.
	joinTimer core.Timer
	// initialDelay is set while the initial rebalance delay runs; the
	// fields below track its extension (Kafka's InitialDelayedJoin).
	initialDelay          bool
	initialDelayRemaining time.Duration
	newMemberJoined       bool
	// syncTimer removes members that have not sent SyncGroup in time.
	syncTimer core.Timer
	// timerSeq invalidates join and sync timer callbacks that were stopped.
	timerSeq uint64
	// assignmentWriting is set while the leader's assignment is being
	// stored; the group stays in CompletingRebalance meanwhile.
	assignmentWriting bool

	offsets map[topicPartition]offset
	// committing counts, per partition, the commits being stored, so that
	// deleting a topic's offsets also tombstones a commit that completes
	// after the deletion started.
	committing map[topicPartition]int

	// writesPending counts Store appends not yet completed; appendSeq and
	// doneSeq check that they complete in order.
	writesPending      int
	appendSeq, doneSeq uint64
	// unloaded is set when the group left the coordinator (Close, or
	// removal after deletion) so late Store completions change nothing.
	unloaded bool
}

func newGroup(name string) *group {
	return &group{
		name:       name,
		byID:       make(map[string]*member),
		byInstance: make(map[string]*member),
		pending:    make(map[string]*pendingMember),
		offsets:    make(map[topicPartition]offset),
		committing: make(map[topicPartition]int),
	}
}

// size counts members and outstanding pending member ids against
// MembersPerGroupMax.
func (g *group) size() int { return len(g.members) + len(g.pending) }

func (g *group) addMember(m *member) {
	if g.byID[m.id] != nil {
		panic(fmt.Sprintf("group %q: member %q added twice", g.name, m.id))
	}
	g.members = append(g.members, m)
	g.byID[m.id] = m
	if m.instanceID != nil {
		g.byInstance[*m.instanceID] = m
	}
}

// dropMember takes m out of the member list and indexes.
func (g *group) dropMember(m *member) {
	i := slices.Index(g.members, m)
	if i < 0 {
		panic(fmt.Sprintf("group %q: removing unknown member %q", g.name, m.id))
	}
	g.members = slices.Delete(g.members, i, i+1)
	delete(g.byID, m.id)
	if m.instanceID != nil && g.byInstance[*m.instanceID] == m {
		delete(g.byInstance, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// allJoined reports whether the join phase has nothing left to wait for.
func (g *group) allJoined() bool {
	return g.joined == len(g.members) && len(g.pending) == 0
}

func (g *group) allSynced() bool {
	for _, m := range g.members {
		if !m.synced {
			return false
		}
	}
	return true
}

func (g *group) hasParked() bool {
	for _, m := range g.members {
		if m.join != nil || m.sync != nil {
			return true
		}
	}
	return false
}

// rebalanceTimeout is the longest rebalance timeout of the members: the join
// phase waits that long for everyone to rejoin, as in Kafka.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// checkInvariants panics when the group's state is inconsistent. It runs
// after every event that changes a group.
func (g *group) checkInvariants(cfg Config) {
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("group %q in %v: invariant broken: ", g.name, g.state) + fmt.Sprintf(format, args...))
	}
	if g.size() > cfg.MembersPerGroupMax {
		fail("%d members and %d pending exceed %d", len(g.members), len(g.pending), cfg.MembersPerGroupMax)
	}
	if len(g.byID) != len(g.members) {
		fail("index holds %d members, list %d", len(g.byID), len(g.members))
	}
	joined, instances := 0, 0
	for _, m := range g.members {
		if g.byID[m.id] != m {
			fail("member %q is not indexed", m.id)
		}
		if m.instanceID != nil {
			instances++
			if g.byInstance[*m.instanceID] != m {
				fail("instance %q is not indexed", *m.instanceID)
			}
		}
		if m.join != nil {
			joined++
		}
		if m.sync != nil && g.state != CompletingRebalance {
			fail("member %q has a parked SyncGroup", m.id)
		}
		if m.session == nil {
			fail("member %q has no session timer", m.id)
		}
	}
	if joined != g.joined || instances != len(g.byInstance) {
		fail("parked joins %d (counted %d), instances %d (indexed %d)", joined, g.joined, instances, len(g.byInstance))
	}
	if g.generation < 0 {
		fail("negative generation %d", g.generation)
	}
	if len(g.committing) > 0 && g.writesPending == 0 {
		fail("%d partitions counted as committing with no write in flight", len(g.committing))
	}
	g.checkStateInvariants(fail)
}

func (g *group) checkStateInvariants(fail func(string, ...any)) {
	switch g.state {
	case Empty, Dead:
		if len(g.members) > 0 || g.joinTimer != nil || g.syncTimer != nil || g.assignmentWriting {
			fail("%d members, timers or an assignment write", len(g.members))
		}
		if g.state == Dead && (g.writesPending == 0 || len(g.pending) > 0) {
			fail("no tombstone write in flight, or pending members")
		}
	case PreparingRebalance:
		if g.joinTimer == nil || g.syncTimer != nil || g.assignmentWriting {
			fail("join timer %v, sync timer %v, assignment write %v", g.joinTimer != nil, g.syncTimer != nil, g.assignmentWriting)
		}
		if g.allJoined() && !g.initialDelay {
			fail("everyone joined but the phase did not end")
		}
	case CompletingRebalance, Stable:
		if g.joined > 0 || g.joinTimer != nil || g.byID[g.leader] == nil || g.protocol == "" {
			fail("parked joins %d, join timer %v, leader %q, protocol %q", g.joined, g.joinTimer != nil, g.leader, g.protocol)
		}
		for _, m := range g.members {
			if !m.supports(g.protocol) {
				fail("member %q does not support protocol %q", m.id, g.protocol)
			}
			if g.state == Stable && !m.assigned {
				fail("member %q has no assignment", m.id)
			}
		}
		if (g.syncTimer == nil) != g.allSynced() {
			fail("sync timer armed %v while all synced %v", g.syncTimer != nil, g.allSynced())
		}
		if g.state == Stable && g.assignmentWriting {
			fail("assignment write in flight")
		}
	default:
		fail("unknown state")
	}
}
