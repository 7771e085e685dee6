package raft

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchBytesMax bounds one Fetch response; FetchEntriesMax is the tighter
// bound in practice, this one only keeps the request honest on the wire.
const fetchBytesMax int32 = 8 << 20

// tickFollower starts a pre-vote when the leader went silent for the fetch
// timeout (or resigned), and otherwise keeps one Fetch in flight. An
// observer cannot campaign: it asks the voters instead (tickObserverLost).
func (n *Node) tickFollower() {
	resigned := n.follower.leaderResigned && n.nowTicks >= n.follower.resignBackoffTicks
	lost := resigned || n.nowTicks-n.follower.lastFetchTicks >= int64(n.config.FetchTimeoutTicks)
	if lost && n.observer {
		n.tickObserverUnattached()
		return
	}
	if lost {
		n.startPreVote()
		return
	}
	if !n.follower.fetchInflight || n.nowTicks-n.follower.fetchSentTicks >= int64(n.config.RequestTimeoutTicks) {
		n.sendFetch()
	}
}

// tickObserverUnattached keeps one discovery Fetch in flight for an
// observer that knows no live leader, as Kafka's observers do: each goes to
// a voter drawn from the injected Rand, until one answers as the leader or
// names it.
func (n *Node) tickObserverUnattached() {
	if !n.follower.fetchInflight || n.nowTicks-n.follower.fetchSentTicks >= int64(n.config.RequestTimeoutTicks) {
		n.sendDiscoveryFetch()
	}
}

// sendDiscoveryFetch sends an observer's Fetch to a random voter.
func (n *Node) sendDiscoveryFetch() {
	assert(n.observer, "only observers look for the leader by fetching")
	n.sendFetchTo(n.voters[n.config.Rand.IntN(len(n.voters))])
}

// sendFetch asks the leader for the entries after this log's end, or for
// the next chunk of the snapshot being fetched.
func (n *Node) sendFetch() {
	if n.follower.download != nil {
		n.sendFetchSnapshot()
		return
	}
	n.sendFetchTo(n.hard.LeaderID)
}

// sendFetchTo sends a Fetch for the entries after this log's end. The
// request leaves in a Ready after every entry before FetchOffset has been
// made durable, so the offset the leader counts towards the high watermark
// is one this follower cannot lose in a crash.
func (n *Node) sendFetchTo(target int32) {
	p := kmsg.FetchRequestTopicPartition{
		CurrentLeaderEpoch: n.hard.Epoch,
		FetchOffset:        n.log.endOffset(),
		LastFetchedEpoch:   n.log.lastEpoch(),
		LogStartOffset:     n.log.startOffset,
		PartitionMaxBytes:  fetchBytesMax,
		HighWatermark:      n.highWatermark,
	}
	request := newFetchRequest(n.config.ClusterID, n.config.ID, p)
	request.MaxBytes = fetchBytesMax
	n.follower.fetchInflight = true
	n.follower.fetchTarget = target
	n.follower.fetchSentTicks = n.nowTicks
	n.follower.fetchCorrelationID = n.send(target, request)
}

// handleFetchResponse appends what the leader sent, or truncates where the
// leader said the logs diverge, then learns the high watermark. Only the
// answer to the Fetch in flight counts: a duplicated or late answer could
// truncate entries appended since.
func (n *Node) handleFetchResponse(m Message, response *kmsg.FetchResponse) error {
	fetching := n.role == RoleFollower || (n.observer && n.role == RoleUnattached)
	if !fetching || m.From != n.follower.fetchTarget || !n.follower.fetchInflight || m.CorrelationID != n.follower.fetchCorrelationID {
		return nil
	}
	p, ok := fetchResponsePartition(response)
	if !ok {
		return errNoMetadataPartition
	}
	n.follower.fetchInflight = false
	if p.ErrorCode != 0 {
		n.learnLeaderFromFetchError(m.From, p.CurrentLeader.LeaderEpoch, p.CurrentLeader.LeaderID)
		return nil
	}
	if n.observer && n.role == RoleUnattached && p.CurrentLeader.LeaderEpoch == n.hard.Epoch && p.CurrentLeader.LeaderID == m.From {
		// A discovery Fetch reached the leader of this epoch, which served
		// it: follow it and take what it sent.
		n.becomeFollowerQuietly(n.hard.Epoch, m.From)
	}
	if p.CurrentLeader.LeaderEpoch != n.hard.Epoch || p.CurrentLeader.LeaderID != n.hard.LeaderID {
		return fmt.Errorf("raft: fetch answer from leader %d names leader %d epoch %d", m.From, p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch)
	}
	n.follower.fetchedFromLeader = true
	if p.SnapshotID.EndOffset > 0 {
		// This log cannot continue the leader's above its log start: fetch
		// the leader's snapshot (KIP-630).
		n.follower.lastFetchTicks = n.nowTicks
		return n.startSnapshotDownload(p.SnapshotID)
	}
	if p.DivergingEpoch.EndOffset >= 0 {
		n.follower.lastFetchTicks = n.nowTicks
		if err := n.truncateDiverged(p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset); err != nil {
			return err
		}
		n.sendFetch()
		return nil
	}
	entries, err := decodeEntries(p.RecordBatches)
	if err != nil {
		return err
	}
	if err := n.appendFetched(entries); err != nil {
		return err
	}
	n.follower.lastFetchTicks = n.nowTicks
	n.learnHighWatermark(p.HighWatermark)
	if len(entries) > 0 {
		n.sendFetch()
	}
	return nil
}

// truncateDiverged truncates to where this log and the leader's may still
// agree: the end of the diverging epoch in both logs. If the logs still
// differ below, the next Fetch finds the next divergence. A correct leader
// never names a divergence below this node's snapshot (it would have sent
// its own snapshot's id instead), so such an answer is refused: entries
// below the log start are committed and cannot be truncated.
func (n *Node) truncateDiverged(leaderEpoch int32, leaderEndOffset int64) error {
	if leaderEpoch < n.log.startEpoch || leaderEndOffset < n.log.startOffset {
		return fmt.Errorf("raft: leader %d names a divergence at epoch %d offset %d, below this log's start %d epoch %d",
			n.hard.LeaderID, leaderEpoch, leaderEndOffset, n.log.startOffset, n.log.startEpoch)
	}
	epoch, endOffset := n.log.endOffsetForEpoch(leaderEpoch)
	if epoch == leaderEpoch {
		endOffset = min(endOffset, leaderEndOffset)
	}
	n.truncate(endOffset)
	return nil
}

// appendFetched checks that fetched entries continue this log with epochs
// no later than the leader's, then appends them.
func (n *Node) appendFetched(entries []Entry) error {
	for i, e := range entries {
		if e.Offset != n.log.endOffset()+int64(i) || e.Epoch > n.hard.Epoch || e.Epoch < 0 {
			return fmt.Errorf("raft: fetched entry at offset %d epoch %d does not continue the log at %d epoch %d",
				e.Offset, e.Epoch, n.log.endOffset()+int64(i), n.hard.Epoch)
		}
		if i == 0 && e.Epoch < n.log.lastEpoch() || i > 0 && e.Epoch < entries[i-1].Epoch {
			return fmt.Errorf("raft: fetched entry at offset %d has epoch %d, below the epoch before it", e.Offset, e.Epoch)
		}
	}
	n.log.append(entries...)
	return nil
}

// learnHighWatermark moves a follower's high watermark forward to the
// leader's, as far as this log reaches. A new leader's high watermark can lag
// the previous leader's for a round; the follower then keeps its own rather
// than move back.
func (n *Node) learnHighWatermark(leaderHighWatermark int64) {
	next := min(leaderHighWatermark, n.log.endOffset())
	if next > n.highWatermark {
		n.advanceHighWatermark(next)
	}
}

// learnLeaderFromFetchError learns what a refused Fetch says of the leader:
// a later epoch (and its leader, if named), or, for an observer that knows no
// leader, the leader of its own epoch. A voter that refuses while naming
// itself is a leader that resigned, not one to follow.
func (n *Node) learnLeaderFromFetchError(from, epoch, leaderID int32) {
	switch {
	case epoch > n.hard.Epoch:
		n.learnEpoch(epoch, leaderID)
	case n.observer && n.role == RoleUnattached && epoch == n.hard.Epoch &&
		leaderID != NoNode && leaderID != from && n.voterIndex(leaderID) >= 0:
		n.becomeFollower(epoch, leaderID)
	}
}
