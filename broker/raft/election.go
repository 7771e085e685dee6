package raft

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startPreVote begins KIP-996's pre-vote: the node asks whether it could win
// an election in the next epoch without changing its own epoch or vote, so a
// node that cannot win (partitioned, restarted, or behind) never bumps the
// epoch and never deposes a leader that a majority still follows.
func (n *Node) startPreVote() {
	if n.config.unsafe.noPreVote {
		n.startElection()
		return
	}
	n.role = RoleProspective
	n.resetElectionTimer()
	n.beginRound()
	if n.hasQuorumOfGrants() {
		n.startElection()
		return
	}
	n.requestVotes(n.hard.Epoch+1, true)
}

// startElection bumps the epoch and votes for itself; the quorum state is
// made durable before the vote requests leave (they are in the same Ready).
func (n *Node) startElection() {
	n.setHardState(HardState{Epoch: n.hard.Epoch + 1, VotedFor: n.config.ID, LeaderID: NoNode})
	n.role = RoleCandidate
	n.resetElectionTimer()
	n.beginRound()
	if n.hasQuorumOfGrants() {
		n.becomeLeader()
		return
	}
	n.requestVotes(n.hard.Epoch, false)
}

// beginRound starts counting grants for a new pre-vote or vote round, with
// this node's own grant already in.
func (n *Node) beginRound() {
	n.nextCorrelationID++
	n.election = election{correlationID: n.nextCorrelationID, granted: make([]bool, len(n.voters))}
	n.election.granted[n.voterIndex(n.config.ID)] = true
}

// requestVotes sends a (pre-)vote request to every other voter. All requests
// of a round share the round's correlation id, so that a late answer from an
// earlier round is not counted.
func (n *Node) requestVotes(candidateEpoch int32, preVote bool) {
	for _, voter := range n.voters {
		if voter == n.config.ID {
			continue
		}
		body := newVoteRequest(n.config.ClusterID, voter, kmsg.VoteRequestTopicPartition{
			CandidateEpoch: candidateEpoch, CandidateID: n.config.ID,
			LastOffsetEpoch: n.log.lastEpoch(), LastOffset: n.log.endOffset(), PreVote: preVote,
		})
		n.messages = append(n.messages, Message{From: n.config.ID, To: voter, CorrelationID: n.election.correlationID, Body: body})
	}
}

func (n *Node) hasQuorumOfGrants() bool {
	count := 0
	for _, granted := range n.election.granted {
		if granted {
			count++
		}
	}
	return count >= n.majority()
}

// handleVoteRequest answers a pre-vote or a vote.
func (n *Node) handleVoteRequest(m Message, request *kmsg.VoteRequest) error {
	p, ok := voteRequestPartition(request)
	if !ok {
		n.reply(m, newVoteResponse(kmsg.VoteResponseTopicPartition{ErrorCode: kerr.InvalidRequest.Code, LeaderID: n.hard.LeaderID, LeaderEpoch: n.hard.Epoch}))
		return errNoMetadataPartition
	}
	// An observer never votes: it is not in the quorum, and a grant from it
	// must never help anyone win (candidates ignore non-voters' answers too).
	if n.observer || n.voterIndex(p.CandidateID) < 0 || p.CandidateID != m.From {
		n.reply(m, newVoteResponse(kmsg.VoteResponseTopicPartition{ErrorCode: kerr.InconsistentVoterSet.Code, LeaderID: n.hard.LeaderID, LeaderEpoch: n.hard.Epoch}))
		return nil
	}
	granted := false
	if p.PreVote {
		granted = n.canGrantPreVote(p)
	} else {
		granted = n.grantVote(p)
	}
	n.reply(m, newVoteResponse(kmsg.VoteResponseTopicPartition{LeaderID: n.hard.LeaderID, LeaderEpoch: n.hard.Epoch, VoteGranted: granted}))
	return nil
}

// canGrantPreVote decides a pre-vote without changing any state. Besides the
// log comparison, a follower that still hears from its leader refuses (the
// follower's half of check-quorum), and so does the leader itself: a voter
// that merely lost touch cannot gather a majority against a healthy leader.
func (n *Node) canGrantPreVote(p kmsg.VoteRequestTopicPartition) bool {
	if p.CandidateEpoch <= n.hard.Epoch {
		return false
	}
	switch n.role {
	case RoleLeader:
		return false
	case RoleFollower:
		if n.hearsFromLeader() && !n.config.unsafe.noLeaderLease {
			return false
		}
	}
	return n.candidateUpToDate(p)
}

// hearsFromLeader reports whether a follower fetched successfully within the
// fetch timeout and its leader has not resigned. Only a real Fetch counts:
// a node that merely learned who leads (at restart, or from another voter's
// answer) holds no lease, or voters that all learned of a dead leader would
// refuse each other forever.
func (n *Node) hearsFromLeader() bool {
	return n.follower.fetchedFromLeader && !n.follower.leaderResigned &&
		n.nowTicks-n.follower.lastFetchTicks < int64(n.config.FetchTimeoutTicks)
}

// candidateUpToDate applies Raft's election restriction.
func (n *Node) candidateUpToDate(p kmsg.VoteRequestTopicPartition) bool {
	if n.config.unsafe.lengthOnlyElection {
		return p.LastOffset >= n.log.endOffset()
	}
	return n.log.upToDate(p.LastOffsetEpoch, p.LastOffset)
}

// grantVote decides a real vote. A later epoch is adopted first (made durable
// with the vote, before the answer leaves); then the vote goes to the first
// up-to-date candidate of the epoch, and never to a second one.
func (n *Node) grantVote(p kmsg.VoteRequestTopicPartition) bool {
	if p.CandidateEpoch < n.hard.Epoch {
		return false
	}
	if p.CandidateEpoch > n.hard.Epoch {
		n.becomeUnattached(p.CandidateEpoch)
	}
	if n.hard.LeaderID != NoNode || (n.hard.VotedFor != NoNode && n.hard.VotedFor != p.CandidateID) {
		return n.hard.VotedFor == p.CandidateID
	}
	if !n.candidateUpToDate(p) {
		return false
	}
	n.setHardState(HardState{Epoch: n.hard.Epoch, VotedFor: p.CandidateID, LeaderID: NoNode})
	n.resetElectionTimer()
	return true
}

// handleVoteResponse counts a grant of the current round, or learns a later
// epoch from the answer.
func (n *Node) handleVoteResponse(m Message, response *kmsg.VoteResponse) error {
	p, ok := voteResponsePartition(response)
	if !ok {
		return errNoMetadataPartition
	}
	if p.LeaderEpoch > n.hard.Epoch {
		n.learnEpoch(p.LeaderEpoch, p.LeaderID)
		return nil
	}
	inRound := m.CorrelationID == n.election.correlationID && p.LeaderEpoch == n.hard.Epoch
	if !inRound || (n.role != RoleProspective && n.role != RoleCandidate) || n.voterIndex(m.From) < 0 {
		return nil
	}
	if !p.VoteGranted {
		// KIP-996: a prospective voter told of a leader of its epoch goes
		// (back) to following it. If that leader is dead, no follower holds
		// a lease on it (a lease needs a successful Fetch), so the next
		// pre-vote of either succeeds.
		if n.role == RoleProspective && p.LeaderID != NoNode && p.LeaderID != n.config.ID {
			n.becomeFollower(n.hard.Epoch, p.LeaderID)
		}
		return nil
	}
	n.election.granted[n.voterIndex(m.From)] = true
	if !n.hasQuorumOfGrants() {
		return nil
	}
	if n.role == RoleProspective {
		n.startElection()
	} else {
		n.becomeLeader()
	}
	return nil
}

// learnEpoch moves to a later epoch named by another node, following its
// leader when it names one.
func (n *Node) learnEpoch(epoch, leaderID int32) {
	assertf(epoch > n.hard.Epoch, "learnEpoch(%d) at epoch %d", epoch, n.hard.Epoch)
	if leaderID != NoNode && leaderID != n.config.ID && n.voterIndex(leaderID) >= 0 {
		n.becomeFollower(epoch, leaderID)
		return
	}
	n.becomeUnattached(epoch)
}

// becomeUnattached adopts a later epoch with no vote and no leader.
func (n *Node) becomeUnattached(epoch int32) {
	assertf(epoch > n.hard.Epoch, "becomeUnattached(%d) at epoch %d", epoch, n.hard.Epoch)
	n.setHardState(HardState{Epoch: epoch, VotedFor: NoNode, LeaderID: NoNode})
	n.role = RoleUnattached
	n.resetElectionTimer()
	if n.observer {
		// An observer looks for the leader of the new epoch at once.
		n.follower = followerState{}
		n.sendDiscoveryFetch()
	}
}

// becomeFollower follows leaderID in epoch, which is this epoch or a later
// one. A node never follows a second leader in one epoch (setHardState
// asserts it).
func (n *Node) becomeFollower(epoch, leaderID int32) {
	assertf(leaderID != n.config.ID, "node %d would follow itself", leaderID)
	assertf(!(epoch == n.hard.Epoch && (n.role == RoleLeader || n.role == RoleResigned)),
		"node %d led epoch %d and is told %d leads it", n.config.ID, epoch, leaderID)
	n.becomeFollowerQuietly(epoch, leaderID)
	n.sendFetch()
}

// becomeFollowerQuietly is becomeFollower without the first Fetch, for a
// node that is handling a Fetch answer from the leader it now follows.
func (n *Node) becomeFollowerQuietly(epoch, leaderID int32) {
	assertf(leaderID != n.config.ID, "node %d would follow itself", leaderID)
	if epoch > n.hard.Epoch {
		n.setHardState(HardState{Epoch: epoch, VotedFor: NoNode, LeaderID: leaderID})
	} else {
		n.setHardState(HardState{Epoch: epoch, VotedFor: n.hard.VotedFor, LeaderID: leaderID})
	}
	n.role = RoleFollower
	n.follower = followerState{lastFetchTicks: n.nowTicks}
}

// handleBeginQuorumEpoch follows a leader that announces its epoch.
func (n *Node) handleBeginQuorumEpoch(m Message, request *kmsg.BeginQuorumEpochRequest) error {
	if len(request.Topics) != 1 || len(request.Topics[0].Partitions) != 1 || request.Topics[0].Topic != MetadataTopic {
		n.reply(m, newBeginQuorumEpochResponse(kerr.InvalidRequest.Code, n.hard.LeaderID, n.hard.Epoch))
		return errNoMetadataPartition
	}
	p := request.Topics[0].Partitions[0]
	switch {
	case p.LeaderEpoch < n.hard.Epoch:
		n.reply(m, newBeginQuorumEpochResponse(kerr.FencedLeaderEpoch.Code, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case p.LeaderID != m.From || n.voterIndex(p.LeaderID) < 0 || p.LeaderID == n.config.ID:
		n.reply(m, newBeginQuorumEpochResponse(kerr.InconsistentVoterSet.Code, n.hard.LeaderID, n.hard.Epoch))
		return nil
	case p.LeaderEpoch > n.hard.Epoch || n.role != RoleFollower || n.hard.LeaderID != p.LeaderID:
		n.becomeFollower(p.LeaderEpoch, p.LeaderID)
	}
	n.reply(m, newBeginQuorumEpochResponse(0, n.hard.LeaderID, n.hard.Epoch))
	return nil
}

// handleEndQuorumEpoch lets a follower of a resigning leader start a pre-vote
// soon, the leader's preferred successors first, instead of waiting for the
// whole fetch timeout.
func (n *Node) handleEndQuorumEpoch(m Message, request *kmsg.EndQuorumEpochRequest) error {
	if len(request.Topics) != 1 || len(request.Topics[0].Partitions) != 1 || request.Topics[0].Topic != MetadataTopic {
		n.reply(m, newEndQuorumEpochResponse(kerr.InvalidRequest.Code, n.hard.LeaderID, n.hard.Epoch))
		return errNoMetadataPartition
	}
	p := request.Topics[0].Partitions[0]
	if p.LeaderEpoch > n.hard.Epoch {
		n.learnEpoch(p.LeaderEpoch, NoNode)
	}
	if p.LeaderEpoch == n.hard.Epoch && n.role == RoleFollower && n.hard.LeaderID == p.LeaderID && !n.config.unsafe.ignoreEndQuorumEpoch {
		n.follower.leaderResigned = true
		position := int64(len(p.PreferredSuccessors))
		for i, id := range p.PreferredSuccessors {
			if id == n.config.ID {
				position = int64(i)
			}
		}
		// Later successors wait longer, so that the best placed one usually
		// wins its pre-vote first.
		n.follower.resignBackoffTicks = n.nowTicks + position*int64(n.config.RequestTimeoutTicks) + 1
	}
	n.reply(m, newEndQuorumEpochResponse(0, n.hard.LeaderID, n.hard.Epoch))
	return nil
}

func voteRequestPartition(r *kmsg.VoteRequest) (kmsg.VoteRequestTopicPartition, bool) {
	if len(r.Topics) != 1 || r.Topics[0].Topic != MetadataTopic || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Partition != metadataPartition {
		return kmsg.VoteRequestTopicPartition{}, false
	}
	return r.Topics[0].Partitions[0], true
}

func voteResponsePartition(r *kmsg.VoteResponse) (kmsg.VoteResponseTopicPartition, bool) {
	if len(r.Topics) != 1 || r.Topics[0].Topic != MetadataTopic || len(r.Topics[0].Partitions) != 1 {
		return kmsg.VoteResponseTopicPartition{}, false
	}
	return r.Topics[0].Partitions[0], true
}

// handleEpochAnswer learns a later epoch from a BeginQuorumEpoch or
// EndQuorumEpoch answer. This is how a leader finds a voter stranded in a
// later epoch (it became a candidate and lost): such a voter never fetches
// from the older epoch's leader, and only an election can bring it back.
func (n *Node) handleEpochAnswer(epoch, leaderID int32, ok bool) error {
	if !ok {
		return errNoMetadataPartition
	}
	if epoch > n.hard.Epoch {
		n.learnEpoch(epoch, leaderID)
	}
	return nil
}

func beginQuorumEpochAnswer(r *kmsg.BeginQuorumEpochResponse) (int32, int32, bool) {
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return 0, 0, false
	}
	p := r.Topics[0].Partitions[0]
	return p.LeaderEpoch, p.LeaderID, true
}

func endQuorumEpochAnswer(r *kmsg.EndQuorumEpochResponse) (int32, int32, bool) {
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return 0, 0, false
	}
	p := r.Topics[0].Partitions[0]
	return p.LeaderEpoch, p.LeaderID, true
}
