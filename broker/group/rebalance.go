package group

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// armSession (re)starts m's session timer: the member is removed if neither
// a heartbeat nor another request of it arrives before it fires.
func (c *Coordinator) armSession(g *group, m *member) {
	if m.session != nil {
		m.session.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.session = c.clock.AfterFunc(m.sessionTimeout, func() {
		if m.sessionSeq != seq || g.unloaded || g.byID[m.id] != m {
			return // stopped, or the member is gone
		}
		c.onSessionExpired(g, m)
		g.checkInvariants(c.cfg)
	})
}

func (c *Coordinator) onSessionExpired(g *group, m *member) {
	if m.join != nil || m.sync != nil {
		// A member waiting for our answer is alive; its session restarts
		// when it is answered. The join and sync deadlines bound the wait.
		c.armSession(g, m)
		return
	}
	c.log.Info("group member session expired", "group", g.name, "member", m.id, "generation", g.generation)
	c.removeMember(g, m, kerr.UnknownMemberID.Code)
	c.afterMemberLeft(g, "member session expired")
}

// removeMember takes m out of g, answering its parked requests with code.
// It does not start a rebalance; callers do (afterMemberLeft).
func (c *Coordinator) removeMember(g *group, m *member, code int16) {
	if m.join != nil {
		c.answerJoin(g, m, code)
	}
	if m.sync != nil {
		c.answerSync(g, m, code)
	}
	if m.session != nil {
		m.session.Stop()
		m.session = nil
	}
	m.sessionSeq++
	g.dropMember(m)
}

// afterMemberLeft reacts to a removed member: the remaining members must
// rebalance, or the running join phase may now be complete.
func (c *Coordinator) afterMemberLeft(g *group, reason string) {
	switch g.state {
	case PreparingRebalance:
		c.maybeCompleteJoin(g)
	case CompletingRebalance, Stable:
		c.prepareRebalance(g, reason)
	default:
		panic(fmt.Sprintf("group %q: member left while %v", g.name, g.state))
	}
}

// addPending records a member id handed out with MEMBER_ID_REQUIRED. It
// expires after the session timeout if its owner never joins with it.
func (c *Coordinator) addPending(g *group, id string, session time.Duration) {
	p := &pendingMember{id: id}
	g.pending[id] = p
	p.session = c.clock.AfterFunc(session, func() {
		if g.unloaded || g.pending[id] != p {
			return
		}
		c.removePending(g, id)
		if g.state == PreparingRebalance {
			c.maybeCompleteJoin(g)
		}
		g.checkInvariants(c.cfg)
		c.removeIfUnused(g)
	})
}

func (c *Coordinator) removePending(g *group, id string) {
	p := g.pending[id]
	if p == nil {
		panic(fmt.Sprintf("group %q: removing unknown pending member %q", g.name, id))
	}
	p.session.Stop()
	delete(g.pending, id)
}

func (c *Coordinator) armJoinTimer(g *group, d time.Duration, f func(*group)) {
	c.stopJoinTimer(g)
	seq := g.timerSeq
	g.joinTimer = c.clock.AfterFunc(d, func() {
		if g.timerSeq != seq || g.unloaded {
			return
		}
		g.joinTimer = nil
		g.timerSeq++
		f(g)
		g.checkInvariants(c.cfg)
	})
}

func (c *Coordinator) stopJoinTimer(g *group) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.timerSeq++
}

func (c *Coordinator) armSyncTimer(g *group, d time.Duration) {
	c.stopSyncTimer(g)
	seq := g.timerSeq
	g.syncTimer = c.clock.AfterFunc(d, func() {
		if g.timerSeq != seq || g.unloaded {
			return
		}
		g.syncTimer = nil
		g.timerSeq++
		c.onSyncDeadline(g)
		g.checkInvariants(c.cfg)
	})
}

func (c *Coordinator) stopSyncTimer(g *group) {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	g.timerSeq++
}

// prepareRebalance starts a join phase. Members keep their assignment until
// it ends, but a SyncGroup waiting for the old phase is told to rejoin.
func (c *Coordinator) prepareRebalance(g *group, reason string) {
	if g.state != Empty && g.state != CompletingRebalance && g.state != Stable {
		panic(fmt.Sprintf("group %q: rebalance from %v", g.name, g.state))
	}
	if g.state == CompletingRebalance {
		c.abortSync(g, kerr.RebalanceInProgress.Code)
	}
	c.stopSyncTimer(g)
	fromEmpty := g.state == Empty
	g.state = PreparingRebalance
	timeout := g.rebalanceTimeout()
	if fromEmpty && c.cfg.InitialRebalanceDelay > 0 {
		delay := min(c.cfg.InitialRebalanceDelay, timeout)
		g.initialDelay, g.newMemberJoined = true, false
		g.initialDelayRemaining = timeout - delay
		c.armJoinTimer(g, delay, c.onInitialDelay)
	} else {
		c.armJoinTimer(g, timeout, c.completeJoin)
	}
	c.log.Info("group rebalancing", "group", g.name, "generation", g.generation, "members", len(g.members), "reason", reason)
	c.maybeCompleteJoin(g)
}

// onInitialDelay ends the initial delay of a group's first rebalance, or
// extends it while new members keep arriving and the rebalance timeout
// allows (Kafka's InitialDelayedJoin).
func (c *Coordinator) onInitialDelay(g *group) {
	if g.newMemberJoined && g.initialDelayRemaining > 0 {
		delay := min(c.cfg.InitialRebalanceDelay, g.initialDelayRemaining)
		g.initialDelayRemaining -= delay
		g.newMemberJoined = false
		c.armJoinTimer(g, delay, c.onInitialDelay)
		return
	}
	g.initialDelay = false
	c.completeJoin(g)
}

func (c *Coordinator) maybeCompleteJoin(g *group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoin(g)
	}
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation advances, and every member gets its JoinGroup
// answer (the leader with everyone's metadata).
func (c *Coordinator) completeJoin(g *group) {
	if g.state != PreparingRebalance {
		panic(fmt.Sprintf("group %q: join phase ends in %v", g.name, g.state))
	}
	c.stopJoinTimer(g)
	g.initialDelay = false
	for _, m := range slices.Clone(g.members) {
		if m.join == nil {
			c.removeMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	if g.generation == math.MaxInt32 {
		panic(fmt.Sprintf("group %q: generation overflow", g.name))
	}
	g.generation++
	for _, m := range g.members {
		m.assignment, m.assigned, m.synced = nil, false, false
	}
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = Empty, "", ""
		c.log.Info("group is empty", "group", g.name, "generation", g.generation)
		c.persistGroup(g)
		return
	}
	g.protocol = selectProtocol(g)
	if g.byID[g.leader] == nil {
		g.leader = g.members[0].id
	}
	g.state = CompletingRebalance
	c.armSyncTimer(g, g.rebalanceTimeout())
	c.log.Info("group generation formed", "group", g.name, "generation", g.generation,
		"members", len(g.members), "leader", g.leader, "protocol", g.protocol)
	for _, m := range g.members {
		c.answerJoin(g, m, 0)
	}
}

// selectProtocol runs Kafka's vote (see the package documentation).
func selectProtocol(g *group) string {
	var candidates []string
	for _, p := range g.members[0].protocols {
		supported := true
		for _, m := range g.members[1:] {
			supported = supported && m.supports(p.name)
		}
		if supported && !slices.Contains(candidates, p.name) {
			candidates = append(candidates, p.name)
		}
	}
	if len(candidates) == 0 {
		panic(fmt.Sprintf("group %q: no protocol supported by every member", g.name))
	}
	votes := make([]int, len(candidates))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if i := slices.Index(candidates, p.name); i >= 0 {
				votes[i]++
				break
			}
		}
	}
	best := 0
	for i := range candidates {
		if votes[i] > votes[best] {
			best = i
		}
	}
	return candidates[best]
}

// onSyncDeadline removes members that got their JoinGroup answer but never
// sent SyncGroup within the rebalance timeout, and rebalances without them.
func (c *Coordinator) onSyncDeadline(g *group) {
	if g.state != CompletingRebalance && g.state != Stable {
		panic(fmt.Sprintf("group %q: sync deadline in %v", g.name, g.state))
	}
	for _, m := range slices.Clone(g.members) {
		if !m.synced {
			c.removeMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	c.prepareRebalance(g, "members did not sync in time")
}

// abortSync answers every parked SyncGroup with code and forgets an
// assignment being written.
func (c *Coordinator) abortSync(g *group, code int16) {
	for _, m := range g.members {
		if m.sync != nil {
			c.answerSync(g, m, code)
		}
	}
	g.assignmentWriting = false
}

// answerJoin answers m's parked JoinGroup: with the generation's details
// when code is 0, else with the error.
func (c *Coordinator) answerJoin(g *group, m *member, code int16) {
	parked := m.join
	m.join = nil
	g.joined--
	if code != 0 {
		parked.respond(joinError(parked.req, code, parked.req.MemberID))
		return
	}
	parked.respond(c.joinResponse(g, m, parked.req))
	c.armSession(g, m)
}

// joinResponse describes the current generation to m.
func (c *Coordinator) joinResponse(g *group, m *member, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, other := range g.members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = other.id
			rm.InstanceID = other.instanceID
			rm.ProtocolMetadata = other.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func joinError(req *kmsg.JoinGroupRequest, code int16, memberID string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

// answerSync answers m's parked SyncGroup: with its assignment when code is
// 0, else with the error.
func (c *Coordinator) answerSync(g *group, m *member, code int16) {
	parked := m.sync
	m.sync = nil
	if code != 0 {
		parked.respond(syncError(parked.req, code))
		return
	}
	parked.respond(syncResponse(g, m, parked.req))
	c.armSession(g, m)
}

func syncResponse(g *group, m *member, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	if !m.assigned {
		panic(fmt.Sprintf("group %q: answering member %q without an assignment", g.name, m.id))
	}
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

func syncError(req *kmsg.SyncGroupRequest, code int16) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	return resp
}
