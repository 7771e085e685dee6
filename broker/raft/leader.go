package raft

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// becomeLeader takes the epoch this candidate won: it records itself as
// leader (durable before BeginQuorumEpoch leaves) and appends the epoch's
// leader-change entry, the first entry it may commit.
func (n *Node) becomeLeader() {
	assert(n.role == RoleCandidate, "only a candidate becomes leader")
	assert(n.hasQuorumOfGrants(), "leader without a majority of votes")
	n.setHardState(HardState{Epoch: n.hard.Epoch, VotedFor: n.config.ID, LeaderID: n.config.ID})
	n.role = RoleLeader
	count := len(n.voters)
	n.leader = leaderState{
		epochStartOffset: n.log.endOffset(),
		sinceTicks:       n.nowTicks,
		endOffsets:       make([]int64, count),
		lastFetchTicks:   make([]int64, count),
		begun:            make([]bool, count),
	}
	for i := range n.leader.lastFetchTicks {
		n.leader.lastFetchTicks[i] = n.nowTicks
	}
	n.log.append(Entry{Offset: n.log.endOffset(), Epoch: n.hard.Epoch, Data: nil})
	n.sendBeginQuorumEpoch()
}

// sendBeginQuorumEpoch announces the epoch to every voter that has not
// fetched in it yet, or not within a request timeout: a voter that was cut
// off may have moved to a later epoch, and its answer is how the leader
// learns it.
func (n *Node) sendBeginQuorumEpoch() {
	n.leader.beginSentTicks = n.nowTicks
	for i, voter := range n.voters {
		recent := n.nowTicks-n.leader.lastFetchTicks[i] < int64(n.config.RequestTimeoutTicks)
		if voter == n.config.ID || (n.leader.begun[i] && recent) {
			continue
		}
		n.send(voter, newBeginQuorumEpochRequest(n.config.ClusterID, n.config.ID, n.hard.Epoch))
	}
}

// tickLeader runs check-quorum and repeats BeginQuorumEpoch.
func (n *Node) tickLeader() {
	if !n.config.unsafe.noCheckQuorum && n.lostQuorum() {
		n.resign()
		return
	}
	if n.nowTicks-n.leader.beginSentTicks >= int64(n.config.RequestTimeoutTicks) {
		n.sendBeginQuorumEpoch()
	}
}

// lostQuorum reports whether fewer than a majority of voters (the leader
// included) fetched within 1.5 fetch timeouts, Kafka's check-quorum window.
// Such a leader may be cut off from a majority that already elected another,
// and must stop acting as leader.
func (n *Node) lostQuorum() bool {
	windowTicks := int64(n.config.FetchTimeoutTicks) * 3 / 2
	if n.nowTicks-n.leader.sinceTicks < windowTicks {
		return false
	}
	live := 0
	for i, voter := range n.voters {
		if voter == n.config.ID || n.nowTicks-n.leader.lastFetchTicks[i] < windowTicks {
			live++
		}
	}
	if n.config.unsafe.countObservers {
		for _, o := range n.leader.observers {
			if n.nowTicks-o.lastFetchTicks < windowTicks {
				live++
			}
		}
		return live < (len(n.voters)+len(n.leader.observers))/2+1
	}
	return live < n.majority()
}

// resign ends this leader's epoch: it stops serving and tells the voters,
// most up to date first, so that they elect a successor quickly.
func (n *Node) resign() {
	assert(n.role == RoleLeader, "only a leader resigns")
	n.role = RoleResigned
	n.resetElectionTimer()
	successors := make([]int32, 0, len(n.voters)-1)
	for _, voter := range n.voters {
		if voter != n.config.ID {
			successors = append(successors, voter)
		}
	}
	slices.SortStableFunc(successors, func(a, b int32) int {
		return int(n.leader.endOffsets[n.voterIndex(b)] - n.leader.endOffsets[n.voterIndex(a)])
	})
	for _, voter := range successors {
		n.send(voter, newEndQuorumEpochRequest(n.config.ClusterID, n.config.ID, n.hard.Epoch, successors))
	}
}

// handleFetchRequest serves a voter's Fetch: the leader checks that the
// follower's log matches its own up to FetchOffset (by LastFetchedEpoch),
// counts FetchOffset as durable on that follower, and answers with the
// entries that follow. On a mismatch it answers DivergingEpoch instead, the
// end of the largest epoch the two logs may share, and the follower
// truncates there.
func (n *Node) handleFetchRequest(m Message, request *kmsg.FetchRequest) error {
	p, ok := fetchRequestPartition(request)
	if !ok {
		n.reply(m, fetchError(kerr.InvalidRequest, n.hard.LeaderID, n.hard.Epoch))
		return errNoMetadataPartition
	}
	index := n.voterIndex(request.ReplicaID)
	observer := index < 0
	switch {
	case p.CurrentLeaderEpoch < n.hard.Epoch:
		n.reply(m, fetchError(kerr.FencedLeaderEpoch, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case p.CurrentLeaderEpoch > n.hard.Epoch:
		n.reply(m, fetchError(kerr.UnknownLeaderEpoch, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case n.role != RoleLeader:
		n.reply(m, fetchError(kerr.NotLeaderForPartition, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case request.ReplicaID < 0:
		// Kafka's consumers send -1; only replicas fetch the metadata log.
		n.reply(m, fetchError(kerr.InvalidRequest, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case request.ReplicaID != m.From || request.ReplicaID == n.config.ID:
		n.reply(m, fetchError(kerr.InconsistentVoterSet, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case p.FetchOffset < 0 || p.LastFetchedEpoch < 0 || p.LastFetchedEpoch > n.hard.Epoch:
		n.reply(m, fetchError(kerr.InvalidRequest, n.hard.LeaderID, n.hard.Epoch))
		return nil
	}
	response := kmsg.FetchResponseTopicPartition{
		DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: -1, EndOffset: -1},
		CurrentLeader:  kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: n.config.ID, LeaderEpoch: n.hard.Epoch},
		LogStartOffset: n.log.startOffset,
	}
	if n.snapshotIDFor(p.FetchOffset, p.LastFetchedEpoch) {
		response.SnapshotID = kmsg.FetchResponseTopicPartitionSnapshotID{EndOffset: n.snapshot.Offset, Epoch: n.snapshot.Epoch}
		if !observer {
			// The voter is in touch, but its log does not yet count.
			n.leader.lastFetchTicks[index] = n.nowTicks
			n.leader.begun[index] = true
		}
	} else if epoch, endOffset, diverged := n.divergence(p.FetchOffset, p.LastFetchedEpoch); diverged {
		response.DivergingEpoch = kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: epoch, EndOffset: endOffset}
	} else {
		if observer {
			n.recordObserverFetch(request.ReplicaID, p.FetchOffset)
		} else {
			n.leader.endOffsets[index] = p.FetchOffset
			n.leader.lastFetchTicks[index] = n.nowTicks
			n.leader.begun[index] = true
		}
		n.updateLeaderHighWatermark()
		to := min(n.log.endOffset(), p.FetchOffset+int64(n.config.FetchEntriesMax))
		response.RecordBatches = encodeEntries(nil, n.log.slice(p.FetchOffset, to))
	}
	response.HighWatermark = n.highWatermark
	n.reply(m, newFetchResponse(response))
	return nil
}

// divergence compares a follower's log end with the leader's log. The logs
// match up to fetchOffset when the leader holds lastFetchedEpoch and its
// entries of that epoch reach at least fetchOffset (the log matching
// property: equal epochs at equal offsets mean equal prefixes).
func (n *Node) divergence(fetchOffset int64, lastFetchedEpoch int32) (int32, int64, bool) {
	if fetchOffset == 0 {
		return 0, 0, false
	}
	epoch, endOffset := n.log.endOffsetForEpoch(lastFetchedEpoch)
	if epoch == lastFetchedEpoch && endOffset >= fetchOffset {
		return 0, 0, false
	}
	return epoch, endOffset, true
}

// updateLeaderHighWatermark applies the commit rule: the high watermark is
// the largest offset that a majority of voters hold durably (the leader's own
// log counts only once the host made it durable), and it moves only forward
// and only onto an entry of the leader's own epoch. Entries of earlier epochs
// are committed with it, never by counting replicas alone (Raft's Figure 8).
func (n *Node) updateLeaderHighWatermark() {
	offsets := make([]int64, len(n.voters))
	for i, voter := range n.voters {
		offsets[i] = n.leader.endOffsets[i]
		if voter == n.config.ID {
			offsets[i] = n.durableEndOffset
		}
	}
	quorum := n.majority()
	if n.config.unsafe.countObservers {
		for _, o := range n.leader.observers {
			offsets = append(offsets, o.endOffset)
		}
		quorum = len(offsets)/2 + 1
	}
	slices.Sort(offsets)
	candidate := offsets[len(offsets)-quorum]
	if candidate <= n.highWatermark {
		return
	}
	if n.config.unsafe.countReplicasOnly {
		n.advanceHighWatermark(candidate)
		return
	}
	if candidate <= n.leader.epochStartOffset {
		return
	}
	assertf(n.log.epochAt(candidate-1) == n.hard.Epoch, "leader %d would commit an entry of epoch %d in epoch %d",
		n.config.ID, n.log.epochAt(candidate-1), n.hard.Epoch)
	n.advanceHighWatermark(candidate)
}

// handleDescribeQuorum answers DescribeQuorum (KIP-595) from the leader's
// view: each voter's durable log end as its last Fetch reported it, and the
// same for each observer that fetched within the observer session.
func (n *Node) handleDescribeQuorum(m Message, request *kmsg.DescribeQuorumRequest) error {
	p := kmsg.DescribeQuorumResponseTopicPartition{Partition: metadataPartition, LeaderID: n.hard.LeaderID, LeaderEpoch: n.hard.Epoch, HighWatermark: n.highWatermark}
	valid := len(request.Topics) == 1 && request.Topics[0].Topic == MetadataTopic &&
		len(request.Topics[0].Partitions) == 1 && request.Topics[0].Partitions[0].Partition == metadataPartition
	var err error
	switch {
	case !valid:
		p.ErrorCode = kerr.InvalidRequest.Code
		err = errNoMetadataPartition
	case n.role != RoleLeader:
		p.ErrorCode = kerr.NotLeaderForPartition.Code
	default:
		for i, voter := range n.voters {
			end := n.leader.endOffsets[i]
			switch {
			case voter == n.config.ID:
				end = n.durableEndOffset
			case !n.leader.begun[i]:
				// Not fetched in this epoch: unknown, as Kafka reports it,
				// not a voter with an empty log.
				end = -1
			}
			p.CurrentVoters = append(p.CurrentVoters, kmsg.DescribeQuorumResponseTopicPartitionReplicaState{ReplicaID: voter, LogEndOffset: end})
		}
		n.expireObservers()
		for _, o := range n.leader.observers {
			p.Observers = append(p.Observers, kmsg.DescribeQuorumResponseTopicPartitionReplicaState{ReplicaID: o.id, LogEndOffset: o.endOffset})
		}
	}
	response := &kmsg.DescribeQuorumResponse{
		Version: describeQuorumVersion,
		Topics:  []kmsg.DescribeQuorumResponseTopic{{Topic: MetadataTopic, Partitions: []kmsg.DescribeQuorumResponseTopicPartition{p}}},
	}
	n.reply(m, response)
	return err
}

func fetchRequestPartition(r *kmsg.FetchRequest) (kmsg.FetchRequestTopicPartition, bool) {
	if len(r.Topics) != 1 || r.Topics[0].Topic != MetadataTopic || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Partition != metadataPartition {
		return kmsg.FetchRequestTopicPartition{}, false
	}
	return r.Topics[0].Partitions[0], true
}

func fetchResponsePartition(r *kmsg.FetchResponse) (kmsg.FetchResponseTopicPartition, bool) {
	if len(r.Topics) != 1 || r.Topics[0].Topic != MetadataTopic || len(r.Topics[0].Partitions) != 1 {
		return kmsg.FetchResponseTopicPartition{}, false
	}
	return r.Topics[0].Partitions[0], true
}

// observersMax bounds the observers a leader remembers; beyond it the one
// that fetched least recently is forgotten (it only leaves DescribeQuorum).
const observersMax = 1024

// observerSessionFetchTimeouts is how many fetch timeouts an observer stays
// in DescribeQuorum after its last Fetch, as Kafka keeps observers for a
// while after they stop fetching.
const observerSessionFetchTimeouts = 10

// observerState is what a leader knows of one observer. Observers are
// reported, never counted: they are not part of the quorum.
type observerState struct {
	id             int32
	endOffset      int64
	lastFetchTicks int64
}

// recordObserverFetch notes an observer's matching Fetch, keeping the list
// sorted by id and within observersMax.
func (n *Node) recordObserverFetch(id int32, fetchOffset int64) {
	assertf(n.voterIndex(id) < 0, "voter %d recorded as an observer", id)
	n.expireObservers()
	i, found := slices.BinarySearchFunc(n.leader.observers, id, func(o observerState, id int32) int { return int(o.id) - int(id) })
	if !found {
		if len(n.leader.observers) >= observersMax {
			n.forgetStalestObserver()
			i, _ = slices.BinarySearchFunc(n.leader.observers, id, func(o observerState, id int32) int { return int(o.id) - int(id) })
		}
		n.leader.observers = slices.Insert(n.leader.observers, i, observerState{id: id})
	}
	n.leader.observers[i].endOffset = fetchOffset
	n.leader.observers[i].lastFetchTicks = n.nowTicks
}

// expireObservers forgets observers that stopped fetching a session ago.
func (n *Node) expireObservers() {
	sessionTicks := int64(n.config.FetchTimeoutTicks) * observerSessionFetchTimeouts
	n.leader.observers = slices.DeleteFunc(n.leader.observers, func(o observerState) bool {
		return n.nowTicks-o.lastFetchTicks >= sessionTicks
	})
}

// forgetStalestObserver drops the observer that fetched least recently.
func (n *Node) forgetStalestObserver() {
	stalest := 0
	for i, o := range n.leader.observers {
		if o.lastFetchTicks < n.leader.observers[stalest].lastFetchTicks {
			stalest = i
		}
	}
	n.leader.observers = slices.Delete(n.leader.observers, stalest, stalest+1)
}
