package broker

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/core/planted"
)

// Replication (cluster mode; docs/replication.md).
//
// Every local partition of a topic with a replica on this broker plays one
// role, decided by the metadata image alone (applyImage):
//
//   - leader: the image names this broker leader and the controller has
//     unfenced it (cluster.leads). It serves clients, appends produced
//     batches under its leader epoch, tracks what each follower fetched, and
//     moves the high watermark and the ISR.
//   - follower: this broker is a replica and another broker leads. It
//     serves no client; its fetcher (replica_fetcher.go) copies the leader's
//     log, truncating where the two diverged.
//   - none: no leader, or this broker may not act (fenced while named
//     leader), or it is not a replica at all.
//
// The high watermark of a leader is the smallest log end over the maximal
// ISR (the committed ISR plus members an AlterPartition in flight adds; a
// member being removed counts until its removal commits, KIP-497): its own
// durable end (log end in write-caching mode) and each other member's
// fetch offset, which a follower sends only once what it fetched is durable
// (in durable mode). It moves only while the committed ISR has at least
// min.insync.replicas members (KIP-966), and never backwards within a
// leadership. A follower learns it from the leader, one fetch late.
//
// Invariants (asserted): a leader's high watermark is at most its own
// durable end and at most every maximal-ISR member's known fetch offset; a
// partition has one role at a time; a leader's followers are exactly its
// other replicas.

// replicaRole is a local partition's part in its replication.
type replicaRole int8

const (
	roleNone replicaRole = iota
	roleLeader
	roleFollower
)

func (r replicaRole) String() string {
	return [...]string{"none", "leader", "follower"}[r]
}

// followerProgress is what a leader knows of one follower in its current
// leadership.
type followerProgress struct {
	id int32
	// known is set once the follower fetched in this leadership; until then
	// its log end is unknown and the high watermark cannot pass it while it
	// is in the ISR.
	known bool
	// fetchOffset is the offset its last Fetch asked for: everything below
	// it is in its log (durable, in durable mode).
	fetchOffset int64
	// brokerEpoch is the broker epoch its last Fetch carried (KIP-903).
	brokerEpoch int64
	// lastCaughtUp is when (cluster.elapsed) it last had everything the
	// leader had, as Kafka's lastCaughtUpTimeMs: a fetch at the log end, or
	// at the log end of its previous fetch (then it was caught up at that
	// previous fetch).
	lastCaughtUp time.Duration
	// leaderEndAtLastFetch and lastFetchAt are the leader's log end and the
	// time at its last Fetch.
	leaderEndAtLastFetch int64
	lastFetchAt          time.Duration
}

// replication is a local partition's replication state (cluster mode).
type replication struct {
	role replicaRole
	// state is the partition's state in the image as last applied.
	state metadata.PartitionState
	// highWatermark is the partition's high watermark (cluster mode).
	highWatermark int64
	// epochStartOffset is the log end when this leadership began: the
	// first offset of the leader's epoch (KIP-207, KIP-101).
	epochStartOffset int64
	// followers are the other replicas, in replica order (leader only).
	followers []followerProgress
	// proposedISR is the ISR an AlterPartition in flight asks for, or nil;
	// proposedFrom is the partition epoch it was sent against, and
	// awaitEpoch the partition epoch the controller answered with (0 while
	// unanswered): the proposal stands until the image reaches it.
	proposedISR  []int32
	proposedFrom int32
	awaitEpoch   int32
	// fetchStalled is set on a follower whose last fetch failed; its
	// fetcher's backoff clears it.
	fetchStalled bool
}

// replicated reports whether the partition follows the cluster's
// replication rules (cluster mode) rather than a standalone broker's.
func (p *partition) replicated() bool { return p.node.cfg.ClusterMode() }

// isrSize is the size of the partition's committed ISR: 1 on a standalone
// broker, which is its partitions' only replica.
func (p *partition) isrSize() int {
	if !p.replicated() {
		return 1
	}
	return len(p.repl.state.ISR)
}

// maximalISR lists the committed ISR and the ISR a pending change
// proposes; their union is the maximal ISR. A member of both comes twice,
// which the high watermark's minimum ignores, and no union is built: it
// runs on every follower Fetch and every group commit.
func (r *replication) maximalISR() [2][]int32 {
	return [2][]int32{r.state.ISR, r.proposedISR}
}

func (r *replication) follower(id int32) *followerProgress {
	for i := range r.followers {
		if r.followers[i].id == id {
			return &r.followers[i]
		}
	}
	return nil
}

// ownEnd is what the leader counts for itself in the high watermark: its
// durable end, or its log end in write-caching mode.
func (p *partition) ownEnd() int64 {
	if p.writeCaching() || planted.Is("ack-before-sync") {
		return p.log.LogEndOffset()
	}
	return p.log.DurableEndOffset()
}

// advanceHighWatermark moves a leader's high watermark as far as the
// maximal ISR allows and completes what waited for it.
func (p *partition) advanceHighWatermark() {
	r := &p.repl
	if r.role != roleLeader || p.log == nil || p.offline != nil {
		return
	}
	if len(r.state.ISR) < int(p.topic.config.minInsyncReplicas) && !planted.Is("high-watermark-below-min-isr") {
		return // KIP-966: nothing more is committed while the ISR is too small
	}
	candidate := p.ownEnd()
	for _, isr := range r.maximalISR() {
		for _, id := range isr {
			if id == p.node.cfg.NodeID {
				continue
			}
			f := r.follower(id)
			if f == nil || !f.known {
				return
			}
			if !planted.Is("high-watermark-ignores-followers") {
				candidate = min(candidate, f.fetchOffset)
			}
		}
	}
	if candidate <= r.highWatermark {
		return
	}
	r.highWatermark = candidate
	p.committedAdvanced()
}

// committedAdvanced completes the waiters the new high watermark satisfies
// and lets parked fetches look again.
func (p *partition) committedAdvanced() {
	p.completeWaiters()
	p.highWatermarkAdvanced()
	if p.topic.name == offsetsTopic && p.node.groups != nil && p.node.groups.PartitionUnloaded(p.index) {
		// A leader waiting for its log to be committed before it loads
		// its groups (syncGroups); a loaded one has nothing to do here.
		p.node.cluster.syncGroups()
	}
}

// desiredRole is the role the image gives a local partition.
func (c *cluster) desiredRole(t *topic, index int32) (replicaRole, metadata.PartitionState) {
	state, ok := c.image.Partition(metadata.TopicID(t.id), index)
	if !ok || !slices.Contains(state.Replicas, c.node.cfg.NodeID) {
		return roleNone, state
	}
	switch {
	case c.leads(t, index):
		return roleLeader, state
	case state.Leader != metadata.NoLeader && state.Leader != c.node.cfg.NodeID:
		return roleFollower, state
	}
	return roleNone, state
}

// applyImage gives every local partition of t the role and state the image
// names.
func (c *cluster) applyImage(t *topic) {
	for i, p := range t.partitions {
		if p.offline != nil && !p.closed {
			c.applyOffline(t, int32(i))
			p = t.partitions[i] // repaired: a fresh replica
		}
		if p.log == nil || p.closed || p.offline != nil {
			continue
		}
		role, state := c.desiredRole(t, int32(i))
		p.setRole(role, state)
	}
}

// setRole moves the partition to role with the image's state.
func (p *partition) setRole(role replicaRole, state metadata.PartitionState) {
	r := &p.repl
	before, beforeState := r.role, r.state
	newLeadership := role == roleLeader && (before != roleLeader || state.LeaderEpoch != beforeState.LeaderEpoch)
	newFollowing := role == roleFollower && (before != roleFollower || state.Leader != beforeState.Leader || state.LeaderEpoch != beforeState.LeaderEpoch)
	if before == roleLeader && (role != roleLeader || newLeadership) {
		p.resign(state)
	}
	if before == roleFollower && (role != roleFollower || newFollowing) {
		p.node.cluster.unfollow(p, beforeState.Leader)
	}
	r.role, r.state = role, state
	if r.proposedISR != nil && (state.PartitionEpoch > r.proposedFrom && state.PartitionEpoch >= r.awaitEpoch || state.LeaderEpoch != beforeState.LeaderEpoch) {
		r.proposedISR = nil
	}
	switch {
	case newLeadership:
		p.lead(state)
	case newFollowing:
		p.follow(state)
	case role == roleLeader:
		// The ISR may have changed (a removal committed, a member fenced):
		// the high watermark may move, or a new change may be due.
		p.advanceHighWatermark()
		minISR := int(p.topic.config.minInsyncReplicas)
		if len(state.ISR) < minISR && len(beforeState.ISR) >= minISR && !planted.Is("wait-out-a-shrunk-isr") {
			// The high watermark stands still now (KIP-966): what waits
			// for it is answered at once, as Kafka's DelayedProduce does,
			// instead of timing out. For the producer the write is
			// indefinite: it is in the leader's log and commits if the ISR
			// grows back.
			p.failDurableWaiters(fmt.Errorf("%w: the ISR %v is smaller than min.insync.replicas %d", kerr.NotEnoughReplicasAfterAppend, state.ISR, minISR))
		}
	}
}

// lead starts a leadership in state's leader epoch.
func (p *partition) lead(state metadata.PartitionState) {
	r := &p.repl
	c := p.node.cluster
	p.leaderEpoch = state.LeaderEpoch
	r.epochStartOffset = p.log.LogEndOffset()
	p.log.AssignLeaderEpoch(state.LeaderEpoch)
	r.followers = r.followers[:0]
	now := c.elapsed()
	for _, id := range state.Replicas {
		if id != p.node.cfg.NodeID {
			// Kafka starts every follower caught up at the election, so
			// that the ISR is not shrunk before anyone could fetch.
			r.followers = append(r.followers, followerProgress{id: id, lastCaughtUp: now, lastFetchAt: now})
		}
	}
	r.highWatermark = max(r.highWatermark, p.log.LogStartOffset())
	p.highWatermarkSeen = r.highWatermark
	p.node.log.Info("leading partition", slog.String("partition", p.String()), slog.Int("leader_epoch", int(state.LeaderEpoch)),
		slog.Int64("epoch_start_offset", r.epochStartOffset), slog.Int64("high_watermark", r.highWatermark), slog.Any("isr", state.ISR))
	p.advanceHighWatermark()
	p.wakeWaiters()
}

// resign ends a leadership: what waits for the high watermark fails with
// NOT_LEADER_OR_FOLLOWER (for a producer the write is indefinite: it may
// still commit under the next leader), and parked fetches answer.
func (p *partition) resign(next metadata.PartitionState) {
	r := &p.repl
	r.followers = r.followers[:0]
	r.proposedISR = nil
	p.failDurableWaiters(fmt.Errorf("%w: %s is now led by broker %d in epoch %d", kerr.NotLeaderForPartition, p, next.Leader, next.LeaderEpoch))
	p.wakeWaiters()
}

// follow starts copying the leader named in state.
func (p *partition) follow(state metadata.PartitionState) {
	p.leaderEpoch = state.LeaderEpoch
	p.repl.fetchStalled = false
	if planted.Is("truncate-to-high-watermark") && !p.log.SyncInFlight() {
		// Kafka before KIP-101: a new follower cut its log at its own high
		// watermark, which may lag the leader's, and fetched the rest again.
		p.truncateTo(p.repl.highWatermark)
	}
	p.node.log.Info("following partition", slog.String("partition", p.String()), slog.Int("leader", int(state.Leader)),
		slog.Int("leader_epoch", int(state.LeaderEpoch)))
	p.node.cluster.follow(p, state.Leader)
}

// followerFetched records a follower's Fetch at fetchOffset (the leader
// checked the epoch and that the follower's log does not diverge), moves
// the ISR and the high watermark, and returns an error for a broker that
// is not a replica.
func (p *partition) followerFetched(id int32, brokerEpoch, fetchOffset int64) error {
	r := &p.repl
	f := r.follower(id)
	if f == nil {
		return fmt.Errorf("%w: broker %d is not a follower of %s", kerr.NotLeaderForPartition, id, p)
	}
	now := p.node.cluster.elapsed()
	end := p.log.LogEndOffset()
	switch {
	case fetchOffset >= end:
		f.lastCaughtUp = now
	case f.known && fetchOffset >= f.leaderEndAtLastFetch:
		f.lastCaughtUp = max(f.lastCaughtUp, f.lastFetchAt)
	}
	f.known, f.fetchOffset, f.brokerEpoch = true, fetchOffset, brokerEpoch
	f.leaderEndAtLastFetch, f.lastFetchAt = end, now
	p.maybeExpandISR(f)
	p.advanceHighWatermark()
	return nil
}

// maybeExpandISR proposes adding a follower that caught up: at or past the
// high watermark and this leadership's first offset, its broker unfenced,
// not shutting down, and at the broker epoch its Fetch carried (KIP-841,
// KIP-903).
func (p *partition) maybeExpandISR(f *followerProgress) {
	r := &p.repl
	if r.proposedISR != nil || slices.Contains(r.state.ISR, f.id) {
		return
	}
	if f.fetchOffset < r.highWatermark || f.fetchOffset < r.epochStartOffset {
		return
	}
	b, ok := p.node.cluster.image.Broker(f.id)
	if !ok || b.Fenced || b.InControlledShutdown || (b.Epoch != f.brokerEpoch && !planted.Is("isr-join-stale-broker-epoch")) {
		return
	}
	p.proposeISR(append(slices.Clone(r.state.ISR), f.id))
}

// checkISR removes from the ISR the followers that have not caught up for
// replica.lag.time.max.ms (the leader's periodic check).
func (p *partition) checkISR() {
	r := &p.repl
	if r.role != roleLeader || r.proposedISR != nil || p.offline != nil {
		return
	}
	lagMax := time.Duration(p.node.cfg.ReplicaLagTimeMaxMs) * time.Millisecond
	now := p.node.cluster.elapsed()
	var keep []int32
	for _, id := range r.state.ISR {
		f := r.follower(id)
		if id != p.node.cfg.NodeID && f != nil && now-f.lastCaughtUp > lagMax {
			continue
		}
		keep = append(keep, id)
	}
	if len(keep) < len(r.state.ISR) {
		p.proposeISR(keep)
	}
}

// proposeISR sends AlterPartition for a new ISR. The proposal counts in the
// maximal ISR until the image commits it or the controller refuses it.
func (p *partition) proposeISR(isr []int32) {
	r := &p.repl
	r.proposedISR, r.proposedFrom, r.awaitEpoch = isr, r.state.PartitionEpoch, 0
	p.node.log.Info("proposing ISR", slog.String("partition", p.String()), slog.Any("isr", isr), slog.Any("from", r.state.ISR))
	p.sendISRProposal()
}

// sendISRProposal sends the pending proposal to the controller.
func (p *partition) sendISRProposal() {
	r := &p.repl
	c := p.node.cluster
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID = p.node.cfg.NodeID
	req.BrokerEpoch = c.lifecycle.brokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = p.topic.id
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition = p.index
	rp.LeaderEpoch = r.state.LeaderEpoch
	rp.PartitionEpoch = r.proposedFrom
	for _, id := range r.proposedISR {
		member := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		member.BrokerID, member.BrokerEpoch = id, c.lifecycle.brokerEpoch
		if f := r.follower(id); f != nil {
			member.BrokerEpoch = f.brokerEpoch
		}
		rp.NewEpochISR = append(rp.NewEpochISR, member)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	leaderEpoch, from := r.state.LeaderEpoch, r.proposedFrom
	c.sendToController(req, isrProposalTimeout, func(resp kmsg.Response, err error) {
		p.isrAnswered(leaderEpoch, from, resp, err)
	})
}

// isrProposalTimeout bounds how long an AlterPartition may go unanswered
// before it is sent again; isrRetryBackoff is the pause before that.
const (
	isrProposalTimeout = 10 * time.Second
	isrRetryBackoff    = 500 * time.Millisecond
)

// isrAnswered takes the controller's answer to a proposal sent in leader
// epoch leaderEpoch against partition epoch from.
//
// A proposal whose fate is unknown stays pending, counted in the maximal
// ISR, as Kafka's leader keeps its pending state: with no answer the
// controller may have committed it (it is sent again, and an
// INVALID_UPDATE_VERSION to the resend means it was); an
// INVALID_UPDATE_VERSION or FENCED_LEADER_EPOCH means the controller holds
// a newer state than this leader's image, possibly this very change, so
// the proposal stands until the image moves past the partition epoch it
// was made against (setRole). Clearing it there let the leader count a
// committed ISR that had already grown by a lagging member, advance the
// high watermark past it and acknowledge writes that member's election
// then lost (sim seed 60620). Only a refusal for good (INELIGIBLE_REPLICA,
// INVALID_REQUEST, a stale broker epoch) drops it.
func (p *partition) isrAnswered(leaderEpoch, from int32, resp kmsg.Response, err error) {
	r := &p.repl
	if p.closed || r.role != roleLeader || r.state.LeaderEpoch != leaderEpoch || r.proposedISR == nil || r.proposedFrom != from {
		return // a later leadership or proposal
	}
	code := int16(0)
	var answered *kmsg.AlterPartitionResponseTopicPartition
	if err == nil {
		ar := resp.(*kmsg.AlterPartitionResponse)
		code = ar.ErrorCode
		for i := range ar.Topics {
			for j := range ar.Topics[i].Partitions {
				if ar.Topics[i].Partitions[j].Partition == p.index {
					answered = &ar.Topics[i].Partitions[j]
				}
			}
		}
		if code == 0 && answered != nil {
			code = answered.ErrorCode
		}
	}
	switch {
	case err != nil:
		p.node.env.Clock.AfterFunc(isrRetryBackoff, func() {
			if !p.node.stopped && !p.closed && r.role == roleLeader && r.state.LeaderEpoch == leaderEpoch && r.proposedISR != nil && r.proposedFrom == from {
				p.sendISRProposal()
			}
		})
		return
	case (code == kerr.InvalidUpdateVersion.Code || code == kerr.FencedLeaderEpoch.Code) && !planted.Is("isr-proposal-dropped-on-stale-epoch"):
		p.node.log.Info("ISR change pending until the image catches up", slog.String("partition", p.String()),
			slog.String("err", kerr.ErrorForCode(code).Error()))
		return
	case code != 0 || answered == nil:
		p.node.log.Info("ISR change refused", slog.String("partition", p.String()), slog.Int("code", int(code)))
		r.proposedISR = nil
		return
	}
	if r.state.PartitionEpoch >= answered.PartitionEpoch {
		r.proposedISR = nil // the image already has it
		return
	}
	r.awaitEpoch = answered.PartitionEpoch
}

// checkReplicas runs the leaders' periodic ISR check.
func (c *cluster) checkReplicas() {
	for _, t := range c.node.catalog.sorted() {
		for _, p := range t.partitions {
			if p.repl.role == roleLeader {
				p.checkISR()
			}
		}
	}
}
