package raft

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config describes one node of the quorum: a voter, or an observer (a node
// whose ID is not among the Voters, as a process.roles=broker node is). Times are counted in ticks: the
// host calls Tick at a fixed period of its core.Clock, so a tick of 100 ms and
// FetchTimeoutTicks of 20 mirror quorum.fetch.timeout.ms=2000.
type Config struct {
	// ID is this node's node.id; it must not be negative (Kafka's replica
	// ids are not).
	ID int32
	// Voters lists every voter's node.id (controller.quorum.voters). A node
	// whose ID is not among them is an observer: it replicates the log from
	// the leader like a follower but never votes, never campaigns and is
	// never counted towards the high watermark or check-quorum.
	Voters []int32
	// ClusterID is sent in every request, as KRaft does.
	ClusterID string
	// ElectionTimeoutTicks is quorum.election.timeout.ms in ticks: an
	// unattached voter or a failed election waits a random time in
	// [ElectionTimeoutTicks, 2*ElectionTimeoutTicks) before a pre-vote.
	// Default 10.
	ElectionTimeoutTicks int
	// FetchTimeoutTicks is quorum.fetch.timeout.ms in ticks: a follower that
	// has not had a successful Fetch for this long starts a pre-vote, and
	// grants pre-votes only after it. A leader that has not been fetched from
	// by a majority within 1.5 times this resigns (check-quorum). Default 20.
	FetchTimeoutTicks int
	// RequestTimeoutTicks is how long a request may go unanswered before the
	// node sends it again. Default 4.
	RequestTimeoutTicks int
	// FetchEntriesMax bounds the entries in one Fetch response. Default 64.
	FetchEntriesMax int
	// UncommittedEntriesMax bounds the entries a leader holds beyond its
	// high watermark; Propose refuses more, so a leader that cannot commit
	// does not grow its log without bound. Default 1024.
	UncommittedEntriesMax int
	// SnapshotChunkBytesMax bounds the snapshot bytes a leader sends in one
	// FetchSnapshot response (a request's MaxBytes can lower it further), so
	// that a large snapshot travels in many small answers. Default 1 MiB.
	SnapshotChunkBytesMax int
	// Rand is the node's only source of randomness (election jitter).
	Rand *core.Rand

	// unsafe switches protections off; only tests set it, to show that each
	// protection is what makes its scenario safe.
	unsafe unsafeOptions
}

// unsafeOptions each remove one protection. They exist so that the tests
// proving a protection matters are permanent tests, not one-off experiments.
type unsafeOptions struct {
	// noPreVote makes a timed-out voter bump the epoch at once.
	noPreVote bool
	// noCheckQuorum keeps a leader that no majority fetches from.
	noCheckQuorum bool
	// noLeaderLease makes a follower grant pre-votes while it still hears
	// from its leader.
	noLeaderLease bool
	// lengthOnlyElection compares logs by length alone in elections.
	lengthOnlyElection bool
	// countReplicasOnly lets a leader commit entries of earlier epochs by
	// counting the voters that hold them (Raft's Figure 8 mistake).
	countReplicasOnly bool
	// ignoreEndQuorumEpoch makes followers wait out the fetch timeout after
	// their leader resigned.
	ignoreEndQuorumEpoch bool
	// countObservers makes a leader count observers like voters, in the
	// high watermark and in check-quorum.
	countObservers bool
	// noSnapshotChecksum installs a fetched snapshot without checking the
	// checksum that travels with it.
	noSnapshotChecksum bool
	// trustSnapshotChunks takes every FetchSnapshot answer of the snapshot
	// being fetched as the next chunk, whatever its correlation id, position
	// and size, and skips the checksum.
	trustSnapshotChunks bool
	// snapshotFetchNotLive keeps FetchSnapshot out of the liveness checks:
	// a leader does not count a voter fetching a snapshot for check-quorum,
	// and a follower does not count the chunks as hearing from its leader.
	snapshotFetchNotLive bool
}

// withDefaults fills unset limits with their documented defaults.
func (c Config) withDefaults() Config {
	if c.ElectionTimeoutTicks == 0 {
		c.ElectionTimeoutTicks = 10
	}
	if c.FetchTimeoutTicks == 0 {
		c.FetchTimeoutTicks = 20
	}
	if c.RequestTimeoutTicks == 0 {
		c.RequestTimeoutTicks = 4
	}
	if c.FetchEntriesMax == 0 {
		c.FetchEntriesMax = 64
	}
	if c.UncommittedEntriesMax == 0 {
		c.UncommittedEntriesMax = 1024
	}
	if c.SnapshotChunkBytesMax == 0 {
		c.SnapshotChunkBytesMax = 1 << 20
	}
	return c
}

// validate rejects a configuration the node cannot run with, in one line.
func (c *Config) validate() error {
	switch {
	case c.Rand == nil:
		return errors.New("raft: Config.Rand is required")
	case c.ElectionTimeoutTicks < 1, c.FetchTimeoutTicks < 1, c.RequestTimeoutTicks < 1, c.FetchEntriesMax < 1, c.UncommittedEntriesMax < 1, c.SnapshotChunkBytesMax < 1:
		return errors.New("raft: tick counts, FetchEntriesMax, UncommittedEntriesMax and SnapshotChunkBytesMax must be positive")
	case c.ID < 0:
		return fmt.Errorf("raft: node id %d is negative", c.ID)
	case len(c.Voters) == 0:
		return errors.New("raft: Config.Voters is empty")
	}
	sorted := slices.Clone(c.Voters)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(c.Voters) {
		return fmt.Errorf("raft: voters %v hold a duplicate", c.Voters)
	}
	return nil
}

// Node is one node's Raft state machine, a voter's or an observer's. It is not safe for concurrent use
// and needs none: the host calls Tick, Step, Propose, Ready and Advance from
// its single event loop.
type Node struct {
	config Config
	voters []int32 // sorted; indexes of the per-voter slices below
	// observer is set when config.ID is not a voter: the node only ever is
	// Unattached or Follower.
	observer bool
	role     Role
	hard     HardState
	log      entryLog

	// snapshot is the snapshot at the log start (the zero Snapshot while the
	// log starts at 0), and snapshotWire its bytes as FetchSnapshot sends
	// them (the data and a checksum).
	snapshot     Snapshot
	snapshotWire []byte

	// highWatermark is the offset just past the last entry known committed;
	// it never moves back while the node runs. A restarted node starts at
	// its snapshot's offset (0 without one) and relearns it from the
	// leader, as KRaft does.
	highWatermark int64
	// appliedOffset is the offset just past the last committed entry handed
	// out in a Ready.
	appliedOffset int64
	// durableEndOffset is the log's end as far as the host has made it
	// durable (acknowledged by Advance). A leader counts itself in the high
	// watermark only up to here.
	durableEndOffset int64

	// Work not yet handed out in a Ready.
	hardChanged      bool
	snapshotChanged  bool  // a fetched snapshot was installed
	truncateToOffset int64 // -1 when nothing durable must be truncated
	unstableOffset   int64 // entries from here on are not yet in a Ready
	messages         []Message
	// readyPending is the Ready handed out and not yet advanced.
	readyPending   bool
	readyEndOffset int64

	nowTicks            int64
	nextCorrelationID   int32
	electionStartTicks  int64 // when the current timeout started
	electionTimeoutTick int64 // randomized timeout for this round

	election election
	leader   leaderState
	follower followerState
}

// election is the state of a pre-vote or vote round.
type election struct {
	correlationID int32
	granted       []bool
}

// leaderState is what a leader knows of each voter (LeaderState in Kafka).
type leaderState struct {
	epochStartOffset int64
	sinceTicks       int64
	endOffsets       []int64 // durable log end reported by each voter's Fetch
	lastFetchTicks   []int64 // when each voter last fetched successfully
	begun            []bool  // whether the voter has fetched in this epoch
	beginSentTicks   int64
	// observers is every observer that fetched in this epoch within the
	// observer session, sorted by id; never counted in any quorum.
	observers []observerState
}

// followerState is a follower's Fetch bookkeeping (FollowerState in Kafka).
type followerState struct {
	fetchInflight      bool
	fetchTarget        int32 // the node the Fetch in flight went to
	fetchCorrelationID int32
	fetchSentTicks     int64
	lastFetchTicks     int64 // last successful Fetch response from the leader
	fetchedFromLeader  bool  // a Fetch succeeded since following this leader
	leaderResigned     bool  // the leader said it ends its epoch
	resignBackoffTicks int64
	// download is the snapshot being fetched from the leader, or nil.
	download *snapshotDownload
}

// New returns a node that resumes from restored, which is what the host made
// durable before the node last stopped (empty for a new node). A node that
// was leader restarts Resigned, since its leader state is gone; one that knew
// a leader restarts following it; others restart Unattached (an observer
// then looks for the leader). Its log, high watermark and applied offset
// start at restored.Snapshot's offset. Restored state that no correct host
// could have written, such as an observer that led, is an error.
func New(config Config, restored Restored) (*Node, error) {
	config = config.withDefaults()
	if err := config.validate(); err != nil {
		return nil, err
	}
	n := &Node{config: config, truncateToOffset: -1}
	n.voters = slices.Clone(config.Voters)
	slices.Sort(n.voters)
	n.observer = n.voterIndex(config.ID) < 0
	n.hard = restored.HardState
	if n.hard == (HardState{}) {
		n.hard = emptyHardState
	}
	if err := validateRestored(n.hard, restored.Snapshot, restored.Entries); err != nil {
		return nil, err
	}
	if n.observer && n.hard.LeaderID == config.ID {
		return nil, fmt.Errorf("raft: observer %d restored as the leader of epoch %d", config.ID, n.hard.Epoch)
	}
	n.restoreLog(restored.Snapshot, restored.Entries)
	n.durableEndOffset = n.log.endOffset()
	n.unstableOffset = n.log.endOffset()
	switch n.hard.LeaderID {
	case config.ID:
		n.role = RoleResigned
		n.resetElectionTimer()
	case NoNode:
		n.role = RoleUnattached
		n.resetElectionTimer()
	default:
		n.role = RoleFollower
		n.follower = followerState{lastFetchTicks: n.nowTicks}
	}
	n.checkInvariants()
	return n, nil
}

// validateRestored rejects durable state that no correct host could have
// written, with an error rather than a crash: it comes from a disk.
func validateRestored(hard HardState, snapshot Snapshot, entries []Entry) error {
	if snapshot.Offset < 0 || snapshot.Epoch < 0 || (snapshot.Offset == 0 && snapshot.Epoch != 0) {
		return fmt.Errorf("raft: restored snapshot has offset %d and epoch %d", snapshot.Offset, snapshot.Epoch)
	}
	if hard.Epoch < snapshot.Epoch {
		return fmt.Errorf("raft: restored quorum state has epoch %d, below the snapshot's epoch %d", hard.Epoch, snapshot.Epoch)
	}
	if len(entries) > 0 && (entries[0].Offset > snapshot.Offset || entries[0].Offset < 0) {
		return fmt.Errorf("raft: restored log starts at %d, not at or below the snapshot's offset %d", entries[0].Offset, snapshot.Offset)
	}
	last := int32(0)
	for i, e := range entries {
		if e.Offset != entries[0].Offset+int64(i) || e.Epoch < last || e.Epoch < 0 {
			return fmt.Errorf("raft: restored entry %d has offset %d and epoch %d after epoch %d", i, e.Offset, e.Epoch, last)
		}
		last = e.Epoch
	}
	if hard.Epoch < last {
		return fmt.Errorf("raft: restored quorum state has epoch %d, below the log's last epoch %d", hard.Epoch, last)
	}
	return nil
}

// restoreLog rebuilds the log from the restored snapshot and entries: the
// entries that continue the snapshot are kept, and if some at or after its
// offset do not (the host crashed while installing a fetched snapshot), the
// first Ready asks the host to truncate them.
func (n *Node) restoreLog(snapshot Snapshot, entries []Entry) {
	if snapshot.Offset > 0 {
		n.snapshot = Snapshot{Offset: snapshot.Offset, Epoch: snapshot.Epoch, Data: slices.Clone(snapshot.Data)}
		n.snapshotWire = encodeSnapshot(n.snapshot)
	}
	n.log.reset(snapshot.Offset, snapshot.Epoch)
	first := snapshot.Offset
	if len(entries) > 0 {
		first = entries[0].Offset
	}
	end := first + int64(len(entries))
	continues := snapshot.Offset == first ||
		(snapshot.Offset <= end && entries[snapshot.Offset-1-first].Epoch == snapshot.Epoch)
	if !continues {
		if end > snapshot.Offset {
			n.truncateToOffset = snapshot.Offset
		}
		entries = nil
	} else {
		entries = entries[snapshot.Offset-first:]
	}
	n.log.append(entries...)
	n.highWatermark = snapshot.Offset
	n.appliedOffset = snapshot.Offset
}

// ID returns the node's id.
func (n *Node) ID() int32 { return n.config.ID }

// IsObserver reports whether the node is an observer (its ID is not among
// the voters): it replicates but never votes or leads.
func (n *Node) IsObserver() bool { return n.observer }

// Role returns what the node does now.
func (n *Node) Role() Role { return n.role }

// HardState returns the node's quorum state (possibly not yet durable).
func (n *Node) HardState() HardState { return n.hard }

// HighWatermark returns the offset just past the last committed entry this
// node knows of.
func (n *Node) HighWatermark() int64 { return n.highWatermark }

// Entries returns a copy of the node's log in [from, to), which must lie at
// or after LogStartOffset: for tests and tools.
func (n *Node) Entries(from, to int64) []Entry { return slices.Clone(n.log.slice(from, to)) }

// LogStartOffset returns the offset of the first entry the node holds: the
// offset of the snapshot at the log start, or 0 without one.
func (n *Node) LogStartOffset() int64 { return n.log.startOffset }

// EndOffset returns the offset the next entry will get.
func (n *Node) EndOffset() int64 { return n.log.endOffset() }

// ErrNotLeader is returned by Propose on a node that is not the leader.
var ErrNotLeader = errors.New("raft: not the leader")

// ErrTooManyUncommitted is returned by Propose when the leader already holds
// UncommittedEntriesMax entries beyond its high watermark; the caller retries
// once some commit.
var ErrTooManyUncommitted = errors.New("raft: too many uncommitted entries")

// Propose appends data to the log if this node is the leader and returns the
// offset it will have. The entry is committed once the high watermark passes
// it; a leader that loses its epoch first may lose it.
func (n *Node) Propose(data []byte) (int64, error) {
	if n.role != RoleLeader {
		return -1, ErrNotLeader
	}
	if len(data) == 0 {
		return -1, errors.New("raft: an empty proposal is not allowed (nil data marks a leader change)")
	}
	if n.log.endOffset()-n.highWatermark >= int64(n.config.UncommittedEntriesMax) {
		return -1, ErrTooManyUncommitted
	}
	offset := n.log.endOffset()
	n.log.append(Entry{Offset: offset, Epoch: n.hard.Epoch, Data: slices.Clone(data)})
	n.checkInvariants()
	return offset, nil
}

// Resign makes a leader give up its epoch, as at controlled shutdown: it
// sends EndQuorumEpoch so that the voters elect a successor without waiting
// for the fetch timeout.
func (n *Node) Resign() {
	if n.role == RoleLeader {
		n.resign()
	}
	n.checkInvariants()
}

// HasReady reports whether Ready would return work.
func (n *Node) HasReady() bool {
	if n.readyPending {
		return false
	}
	return n.hardChanged || n.snapshotChanged || n.truncateToOffset >= 0 || n.unstableOffset < n.log.endOffset() ||
		len(n.messages) > 0 || n.appliedOffset < n.highWatermark
}

// Ready hands out the accumulated work (see Ready for the order in which the
// host must perform it). The host calls Advance once it is done; Ready must
// not be called again before.
func (n *Node) Ready() Ready {
	assert(!n.readyPending, "Ready called before Advance")
	r := Ready{
		HardState:        n.hard,
		HardStateChanged: n.hardChanged,
		TruncateToOffset: n.truncateToOffset,
		Entries:          n.log.slice(n.unstableOffset, n.log.endOffset()),
		Messages:         n.messages,
		CommittedEntries: n.log.slice(n.appliedOffset, n.highWatermark),
	}
	if n.snapshotChanged {
		snapshot := n.snapshot
		r.Snapshot = &snapshot
	}
	r.MustSync = r.HardStateChanged || r.Snapshot != nil || r.TruncateToOffset >= 0 || len(r.Entries) > 0
	n.readyPending = true
	n.readyEndOffset = n.log.endOffset()
	n.hardChanged = false
	n.snapshotChanged = false
	n.truncateToOffset = -1
	n.unstableOffset = n.log.endOffset()
	n.messages = nil
	n.appliedOffset = n.highWatermark
	return r
}

// Advance tells the node that the host performed the last Ready: its state
// is durable and its messages sent. This is the node's I/O completion: a
// leader's own log now counts towards the high watermark.
func (n *Node) Advance() {
	assert(n.readyPending, "Advance without a Ready")
	n.readyPending = false
	// Entries truncated since the Ready was taken are not durable as this
	// log's entries, whatever the host wrote; durableEndOffset already dropped
	// to the truncation point and must not rise past it.
	n.durableEndOffset = max(n.durableEndOffset, min(n.readyEndOffset, n.unstableOffset))
	if n.role == RoleLeader {
		n.updateLeaderHighWatermark()
	}
	n.checkInvariants()
}

// Tick advances the node's logical clock by one tick and fires whichever
// timeout expired.
func (n *Node) Tick() {
	n.nowTicks++
	switch n.role {
	case RoleLeader:
		n.tickLeader()
	case RoleFollower:
		n.tickFollower()
	default:
		if n.observer {
			n.tickObserverUnattached()
			break
		}
		if n.nowTicks-n.electionStartTicks < n.electionTimeoutTick {
			break
		}
		if n.role == RoleProspective && n.hard.LeaderID != NoNode && n.hard.LeaderID != n.config.ID {
			// A failed pre-vote goes back to the leader it knew, which
			// may well be alive (KIP-996): only a Fetch can tell.
			n.becomeFollower(n.hard.Epoch, n.hard.LeaderID)
			break
		}
		n.startPreVote()
	}
	n.checkInvariants()
}

// Step hands the node a message addressed to it. A malformed message is
// answered (when it is a request) or dropped, and reported as an error; it
// never changes the node's state.
func (n *Node) Step(m Message) error {
	if m.To != n.config.ID {
		return fmt.Errorf("raft: node %d got a message for %d", n.config.ID, m.To)
	}
	err := n.step(m)
	n.checkInvariants()
	return err
}

func (n *Node) step(m Message) error {
	switch body := m.Body.(type) {
	case *kmsg.VoteRequest:
		return n.handleVoteRequest(m, body)
	case *kmsg.VoteResponse:
		return n.handleVoteResponse(m, body)
	case *kmsg.BeginQuorumEpochRequest:
		return n.handleBeginQuorumEpoch(m, body)
	case *kmsg.EndQuorumEpochRequest:
		return n.handleEndQuorumEpoch(m, body)
	case *kmsg.FetchRequest:
		return n.handleFetchRequest(m, body)
	case *kmsg.FetchResponse:
		return n.handleFetchResponse(m, body)
	case *kmsg.DescribeQuorumRequest:
		return n.handleDescribeQuorum(m, body)
	case *kmsg.FetchSnapshotRequest:
		return n.handleFetchSnapshotRequest(m, body)
	case *kmsg.FetchSnapshotResponse:
		return n.handleFetchSnapshotResponse(m, body)
	case *kmsg.BeginQuorumEpochResponse:
		return n.handleEpochAnswer(beginQuorumEpochAnswer(body))
	case *kmsg.EndQuorumEpochResponse:
		return n.handleEpochAnswer(endQuorumEpochAnswer(body))
	}
	return fmt.Errorf("raft: node %d cannot handle %T", n.config.ID, m.Body)
}

// send queues a message for the next Ready and returns its correlation id.
func (n *Node) send(to int32, body Body) int32 {
	n.nextCorrelationID++
	n.messages = append(n.messages, Message{From: n.config.ID, To: to, CorrelationID: n.nextCorrelationID, Body: body})
	return n.nextCorrelationID
}

// reply queues the response to request.
func (n *Node) reply(request Message, body Body) {
	n.messages = append(n.messages, Message{From: n.config.ID, To: request.From, CorrelationID: request.CorrelationID, Body: body})
}

// setHardState records a new quorum state to be made durable before any
// message that follows it leaves. Epochs never go back, and within one epoch
// a vote and a leader, once set, never change.
func (n *Node) setHardState(h HardState) {
	assertf(h.Epoch >= n.hard.Epoch, "epoch moves back from %d to %d", n.hard.Epoch, h.Epoch)
	if h.Epoch == n.hard.Epoch {
		assertf(n.hard.VotedFor == NoNode || h.VotedFor == n.hard.VotedFor,
			"node %d changes its vote in epoch %d from %d to %d", n.config.ID, h.Epoch, n.hard.VotedFor, h.VotedFor)
		assertf(n.hard.LeaderID == NoNode || h.LeaderID == n.hard.LeaderID,
			"node %d sees two leaders in epoch %d: %d and %d", n.config.ID, h.Epoch, n.hard.LeaderID, h.LeaderID)
	}
	if h != n.hard {
		n.hard = h
		n.hardChanged = true
	}
}

// voterIndex returns id's index among the sorted voters, or -1.
func (n *Node) voterIndex(id int32) int {
	i, found := slices.BinarySearch(n.voters, id)
	if !found {
		return -1
	}
	return i
}

// majority is the number of voters that make a quorum.
func (n *Node) majority() int { return len(n.voters)/2 + 1 }

// resetElectionTimer starts a new randomized election timeout.
func (n *Node) resetElectionTimer() {
	base := int64(n.config.ElectionTimeoutTicks)
	n.electionStartTicks = n.nowTicks
	n.electionTimeoutTick = base + int64(n.config.Rand.IntN(int(base)))
}

// truncate drops the entries at and after offset, which must all be
// uncommitted, and arranges for the host to drop them from disk.
func (n *Node) truncate(offset int64) {
	assertf(offset >= n.highWatermark, "node %d truncates to %d below its high watermark %d", n.config.ID, offset, n.highWatermark)
	assertf(offset >= n.log.startOffset, "node %d truncates to %d below its log start %d", n.config.ID, offset, n.log.startOffset)
	if offset >= n.log.endOffset() {
		return
	}
	n.log.truncate(offset)
	if offset < n.unstableOffset {
		n.unstableOffset = offset
		if n.truncateToOffset < 0 || offset < n.truncateToOffset {
			n.truncateToOffset = offset
		}
	}
	n.durableEndOffset = min(n.durableEndOffset, offset)
}

// advanceHighWatermark is the only place the high watermark changes: it
// moves forward, never past the log's end, and never back.
func (n *Node) advanceHighWatermark(offset int64) {
	assertf(offset > n.highWatermark, "node %d high watermark would move from %d to %d", n.config.ID, n.highWatermark, offset)
	assertf(offset <= n.log.endOffset(), "node %d high watermark %d beyond its log end %d", n.config.ID, offset, n.log.endOffset())
	n.highWatermark = offset
}

// checkInvariants asserts what must hold between any two events.
func (n *Node) checkInvariants() {
	h := n.hard
	assertf(h.Epoch >= n.log.lastEpoch(), "epoch %d below the log's last epoch %d", h.Epoch, n.log.lastEpoch())
	assertf(n.appliedOffset <= n.highWatermark && n.highWatermark <= n.log.endOffset(),
		"applied %d, high watermark %d, log end %d out of order", n.appliedOffset, n.highWatermark, n.log.endOffset())
	assertf(n.durableEndOffset <= n.log.endOffset(), "durable end %d beyond log end %d", n.durableEndOffset, n.log.endOffset())
	n.checkSnapshotInvariants()
	if n.observer {
		assertf(n.role == RoleUnattached || n.role == RoleFollower, "observer %d is %s", n.config.ID, n.role)
	}
	switch n.role {
	case RoleLeader, RoleResigned:
		assertf(h.LeaderID == n.config.ID && h.VotedFor == n.config.ID, "%s node %d has quorum state %+v", n.role, n.config.ID, h)
	case RoleCandidate:
		assertf(h.VotedFor == n.config.ID && h.LeaderID == NoNode, "candidate %d has quorum state %+v", n.config.ID, h)
	case RoleFollower:
		assertf(h.LeaderID != NoNode && h.LeaderID != n.config.ID, "follower %d has quorum state %+v", n.config.ID, h)
	case RoleUnattached:
		assertf(h.LeaderID == NoNode, "unattached node %d knows leader %d", n.config.ID, h.LeaderID)
	}
	if start := n.leader.epochStartOffset; n.role == RoleLeader && start >= n.log.startOffset {
		assertf(start < n.log.endOffset() && n.log.epochAt(start) == h.Epoch && n.log.entries[start-n.log.startOffset].IsLeaderChange(),
			"leader %d has no leader-change entry of epoch %d at %d", n.config.ID, h.Epoch, start)
	} else if n.role == RoleLeader {
		// The leader-change entry was compacted into a snapshot, which is
		// only taken at or below the high watermark: the epoch committed.
		assertf(n.highWatermark > start, "leader %d compacted its uncommitted leader-change entry at %d", n.config.ID, start)
	}
}
