package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupPhase is where a member is in the group protocol.
type groupPhase uint8

const (
	groupJoining groupPhase = iota
	groupSyncing
	groupStable
	groupLeaving
)

// groupState is the membership of a subscribed consumer (classic, eager
// protocol: every rebalance revokes everything, then assigns afresh).
type groupState struct {
	topics     []string
	memberID   string
	generation int32
	phase      groupPhase
	// round increments whenever the member starts a new join (or leaves), so
	// that callbacks of an earlier round are recognised and dropped.
	round uint64
	// interest lists the topics whose metadata this member asked for as
	// group leader.
	interest []string
}

// Subscribe joins the consumer group cfg.Group, consuming topics. Partitions
// are assigned by the group leader's assignor; every partition starts at the
// group's committed offset, or at AutoOffsetReset when none.
func (c *Consumer) Subscribe(topics []string) error {
	switch {
	case c.closed:
		return ErrClosed
	case c.cfg.Group == "":
		return fmt.Errorf("%w: Subscribe needs a group", ErrInvalidConfig)
	case c.group != nil || len(c.parts) > 0:
		return fmt.Errorf("%w: already subscribed or assigned", ErrInvalidConfig)
	case len(topics) == 0 || len(topics) > topicsMax:
		return fmt.Errorf("%w: %d topics", ErrInvalidConfig, len(topics))
	}
	sorted := slices.Clone(topics)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if sorted[0] == "" {
		return fmt.Errorf("%w: empty topic name", ErrInvalidConfig)
	}
	c.group = &groupState{topics: sorted, generation: -1}
	c.join()
	c.armAutoCommit()
	return nil
}

// armAutoCommit commits delivered positions every AutoCommitInterval.
func (c *Consumer) armAutoCommit() {
	if !c.cfg.AutoCommit || c.cfg.Group == "" {
		return
	}
	c.clock.AfterFunc(c.cfg.AutoCommitInterval, func() {
		if c.closed {
			return
		}
		if c.group == nil || c.group.phase == groupStable {
			c.commitOwn(func(err error) {
				if err != nil {
					c.reportError(fmt.Errorf("auto commit: %w", err))
				}
			})
		}
		c.armAutoCommit()
	})
}

// live reports whether a callback of round should still act.
func (c *Consumer) live(round uint64) bool {
	return !c.closed && c.group != nil && c.group.round == round && c.group.phase != groupLeaving
}

// retryJoin starts over after retry.backoff.ms.
func (c *Consumer) retryJoin(round uint64, err error) {
	if errors.Is(err, kerr.UnknownMemberID) {
		c.group.memberID = ""
	}
	c.coordinatorError(err)
	c.clock.AfterFunc(c.cfg.RetryBackoff, func() {
		if c.live(round) {
			c.join()
		}
	})
}

// join sends JoinGroup through the coordinator.
func (c *Consumer) join() {
	g := c.group
	g.round++
	g.phase = groupJoining
	round := g.round
	c.cluster.findCoordinator(c.cfg.Group, func(node int32, err error) {
		if !c.live(round) {
			return
		}
		if err != nil {
			c.retryJoin(round, err)
			return
		}
		meta := kmsg.ConsumerMemberMetadata{Version: 0, Topics: g.topics}
		proto := kmsg.NewJoinGroupRequestProtocol()
		proto.Name = c.cfg.Assignor
		proto.Metadata = meta.AppendTo(nil)
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = c.cfg.Group
		req.SessionTimeoutMillis = int32(c.cfg.SessionTimeout.Milliseconds())
		req.RebalanceTimeoutMillis = int32(c.cfg.RebalanceTimeout.Milliseconds())
		req.MemberID = g.memberID
		req.ProtocolType = "consumer"
		req.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
		timeout := c.cfg.RebalanceTimeout + c.cfg.RequestTimeout
		c.cluster.requestNodeOwned(node, c.owner, req, timeout, func(r kmsg.Response, err error) {
			if c.live(round) {
				c.onJoin(round, r, err)
			}
		})
	})
}

func (c *Consumer) onJoin(round uint64, r kmsg.Response, err error) {
	g := c.group
	if err != nil {
		c.cluster.forgetCoordinator(c.cfg.Group)
		c.retryJoin(round, err)
		return
	}
	resp := r.(*kmsg.JoinGroupResponse)
	err = kafkaError(resp.ErrorCode)
	if errors.Is(err, kerr.MemberIDRequired) {
		// KIP-394: join again with the member id the coordinator chose.
		g.memberID = resp.MemberID
		c.join()
		return
	}
	if err != nil {
		c.retryJoin(round, err)
		return
	}
	g.memberID = resp.MemberID
	g.generation = resp.Generation
	g.phase = groupSyncing
	if resp.LeaderID != resp.MemberID {
		c.sync(round, nil)
		return
	}
	c.leaderAssign(round, resp)
}

// leaderAssign computes the group's assignment as its leader: it learns the
// partition counts of every member's topics, then runs the assignor.
func (c *Consumer) leaderAssign(round uint64, resp *kmsg.JoinGroupResponse) {
	if len(resp.Members) > groupMembersMax {
		c.retryJoin(round, fmt.Errorf("%w: %d members", ErrProtocol, len(resp.Members)))
		return
	}
	members := make([]GroupMember, 0, len(resp.Members))
	for _, m := range resp.Members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			c.retryJoin(round, fmt.Errorf("%w: member %q metadata: %v", ErrProtocol, m.MemberID, err))
			return
		}
		members = append(members, GroupMember{ID: m.MemberID, Topics: meta.Topics})
		for _, t := range meta.Topics {
			if !slices.Contains(c.group.interest, t) && c.cluster.addInterest(t) == nil {
				c.group.interest = append(c.group.interest, t)
			}
		}
	}
	c.cluster.RefreshMetadata(func(err error) {
		if !c.live(round) {
			return
		}
		if err != nil {
			c.retryJoin(round, err)
			return
		}
		partitions := make(map[string]int32)
		for _, m := range members {
			for _, t := range m.Topics {
				if n := c.cluster.partitionCount(t); n > 0 {
					partitions[t] = n
				}
			}
		}
		plan, err := Assign(c.cfg.Assignor, members, partitions)
		if err != nil {
			c.retryJoin(round, err)
			return
		}
		c.sync(round, encodeAssignments(members, plan))
	})
}

// encodeAssignments turns a plan into SyncGroup assignments, members and
// topics in order.
func encodeAssignments(members []GroupMember, plan map[string]map[string][]int32) []kmsg.SyncGroupRequestGroupAssignment {
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(ids))
	for _, id := range ids {
		topics := make([]string, 0, len(plan[id]))
		for t := range plan[id] { // order-independent: sorted below
			topics = append(topics, t)
		}
		slices.Sort(topics)
		var a kmsg.ConsumerMemberAssignment
		for _, t := range topics {
			a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: plan[id][t]})
		}
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID = id
		ga.MemberAssignment = a.AppendTo(nil)
		out = append(out, ga)
	}
	return out
}

// sync sends SyncGroup (with the assignments when leader).
func (c *Consumer) sync(round uint64, assignments []kmsg.SyncGroupRequestGroupAssignment) {
	g := c.group
	c.cluster.findCoordinator(c.cfg.Group, func(node int32, err error) {
		if !c.live(round) {
			return
		}
		if err != nil {
			c.retryJoin(round, err)
			return
		}
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group = c.cfg.Group
		req.Generation = g.generation
		req.MemberID = g.memberID
		req.ProtocolType = kmsg.StringPtr("consumer")
		req.Protocol = kmsg.StringPtr(c.cfg.Assignor)
		req.GroupAssignment = assignments
		told := func(error) {}
		if c.cfg.OnSyncGroup != nil {
			if f := c.cfg.OnSyncGroup(GroupMembership{MemberID: g.memberID, Generation: g.generation}); f != nil {
				told = f
			}
		}
		timeout := c.cfg.RebalanceTimeout + c.cfg.RequestTimeout
		c.cluster.requestNodeOwned(node, c.owner, req, timeout, func(r kmsg.Response, err error) {
			if !c.live(round) {
				told(errRoundOver)
				return
			}
			c.onSync(round, r, err, told)
		})
	})
}

// onSync takes the SyncGroup answer; told learns whether it made the
// consumer a member of the generation.
func (c *Consumer) onSync(round uint64, r kmsg.Response, err error, told func(error)) {
	var a kmsg.ConsumerMemberAssignment
	if err == nil {
		resp := r.(*kmsg.SyncGroupResponse)
		err = kafkaError(resp.ErrorCode)
		if err == nil && len(resp.MemberAssignment) > 0 {
			if readErr := a.ReadFrom(resp.MemberAssignment); readErr != nil {
				err = fmt.Errorf("%w: assignment: %v", ErrProtocol, readErr)
			}
		}
	}
	told(err)
	if err != nil {
		c.retryJoin(round, err)
		return
	}
	var offsets []PartitionOffset
	for _, t := range a.Topics {
		for _, p := range t.Partitions {
			if t.Topic != "" && p >= 0 {
				offsets = append(offsets, PartitionOffset{Topic: t.Topic, Partition: p, Offset: OffsetCommitted})
			}
		}
	}
	c.group.phase = groupStable
	c.setAssignment(offsets)
	if c.cfg.OnAssigned != nil {
		c.cfg.OnAssigned(c.Assigned())
	}
	c.heartbeat(round)
}

// heartbeat keeps the membership alive every heartbeat.interval.ms and
// notices rebalances.
func (c *Consumer) heartbeat(round uint64) {
	c.clock.AfterFunc(c.cfg.HeartbeatInterval, func() {
		if !c.live(round) {
			return
		}
		c.cluster.findCoordinator(c.cfg.Group, func(node int32, err error) {
			if !c.live(round) {
				return
			}
			if err != nil {
				c.heartbeat(round)
				return
			}
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group = c.cfg.Group
			req.Generation = c.group.generation
			req.MemberID = c.group.memberID
			c.cluster.requestNode(node, req, 0, func(r kmsg.Response, err error) {
				if c.live(round) {
					c.onHeartbeat(round, r, err)
				}
			})
		})
	})
}

func (c *Consumer) onHeartbeat(round uint64, r kmsg.Response, err error) {
	if err != nil {
		// A lost connection or timeout: try again; the session timeout on
		// the coordinator decides whether we are still a member.
		c.cluster.forgetCoordinator(c.cfg.Group)
		c.heartbeat(round)
		return
	}
	err = kafkaError(r.(*kmsg.HeartbeatResponse).ErrorCode)
	switch {
	case err == nil:
		c.heartbeat(round)
	case errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable):
		c.cluster.forgetCoordinator(c.cfg.Group)
		c.heartbeat(round)
	default:
		// REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
		// FENCED_INSTANCE_ID: give up the partitions and join again.
		if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID) {
			c.group.memberID = ""
		}
		c.rebalance()
	}
}

// rebalance revokes every partition (committing first when configured),
// then joins again.
func (c *Consumer) rebalance() {
	g := c.group
	g.round++
	g.phase = groupJoining
	round := g.round
	c.revoke(func() {
		if c.live(round) {
			c.join()
		}
	})
}

// revoke stops consuming the assigned partitions, commits their delivered
// positions when CommitOnRevoke or AutoCommit is set, tells OnRevoked, and
// drops them. Records fetched but not yet polled are dropped first, so the
// commit covers exactly what Poll delivered.
func (c *Consumer) revoke(done func()) {
	revoked := c.Assigned()
	if len(revoked) == 0 {
		c.clock.AfterFunc(0, done)
		return
	}
	for _, tp := range c.partOrder {
		cp := c.parts[tp]
		c.buffered -= len(cp.buffered)
		cp.buffered = nil
		cp.fetchOffset = cp.position
		cp.stopped = true
		cp.version++
	}
	finish := func() {
		if c.cfg.OnRevoked != nil {
			c.cfg.OnRevoked(revoked)
		}
		c.setAssignment(nil)
		done()
	}
	if !c.cfg.CommitOnRevoke && !c.cfg.AutoCommit {
		finish()
		return
	}
	c.commitOwn(func(err error) {
		if err != nil {
			c.reportError(fmt.Errorf("commit on revoke: %w", err))
		}
		finish()
	})
}

// leaveGroup revokes, leaves the group (LeaveGroup) and calls done.
func (c *Consumer) leaveGroup(done func()) {
	g := c.group
	g.round++
	g.phase = groupLeaving
	c.revoke(func() {
		for _, t := range g.interest {
			c.cluster.removeInterest(t)
		}
		g.interest = nil
		if g.memberID == "" {
			done()
			return
		}
		c.cluster.findCoordinator(c.cfg.Group, func(node int32, err error) {
			if err != nil {
				done()
				return
			}
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group = c.cfg.Group
			req.MemberID = g.memberID
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = g.memberID
			req.Members = []kmsg.LeaveGroupRequestMember{m}
			c.cluster.requestNode(node, req, 0, func(kmsg.Response, error) { done() })
		})
	})
}

// errRoundOver tells OnSyncGroup that an answer came after the consumer had
// moved on (a new join, a leave or Close) and was dropped.
var errRoundOver = errors.New("group round over: answer dropped")

// GroupMembership is a member's identity in one generation of its group:
// what OffsetCommit carries so that the coordinator can refuse a commit
// from a member that lost its partitions. A consumer outside any
// generation commits with no member id and generation -1.
type GroupMembership struct {
	MemberID   string
	Generation int32
}

// Membership returns the membership the consumer's commits carry now.
func (c *Consumer) Membership() GroupMembership {
	if c.group == nil {
		return GroupMembership{Generation: -1}
	}
	return GroupMembership{MemberID: c.group.memberID, Generation: c.group.generation}
}

// commitOwn commits Positions() on the consumer's own initiative
// (auto-commit, commit on revoke, commit on Close) and tells OnCommit.
func (c *Consumer) commitOwn(done func(error)) {
	positions := c.Positions()
	if len(positions) == 0 {
		c.clock.AfterFunc(0, func() { done(nil) })
		return
	}
	var told func(error)
	if c.cfg.OnCommit != nil {
		told = c.cfg.OnCommit(slices.Clone(positions), c.Membership())
	}
	c.Commit(positions, func(err error) {
		if told != nil {
			told(err)
		}
		done(err)
	})
}

// CommitAs commits offsets for the group under an explicit membership
// instead of the consumer's own, as Kafka's sendOffsetsToTransaction takes
// a consumer's group metadata (KIP-447): tools and tests use it to replay
// what a member of an earlier generation would send, which the coordinator
// must refuse (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID). done runs later with
// the first error.
func (c *Consumer) CommitAs(member GroupMembership, offsets []PartitionOffset, done func(error)) {
	err := error(nil)
	if c.cfg.Group == "" || c.closed {
		err = fmt.Errorf("%w: CommitAs needs a group and an open consumer", ErrInvalidConfig)
	}
	for _, po := range offsets {
		if err == nil && (po.Offset < 0 || po.Topic == "" || po.Partition < 0) {
			err = fmt.Errorf("%w: commit %+v", ErrInvalidRecord, po)
		}
	}
	if err != nil {
		c.clock.AfterFunc(0, func() { done(err) })
		return
	}
	c.sendCommit(c.commitRequest(member.Generation, member.MemberID, offsets), done)
}
