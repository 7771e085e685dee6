package group

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles JoinGroup v0-v9. A member joining with an empty member
// id gets MEMBER_ID_REQUIRED and a member id on v4+ (KIP-394), unless it is
// static (group.instance.id, v5+, KIP-345). Otherwise the request is parked
// until the join phase ends and respond is called then. respond is called
// exactly once and must not call back into the Coordinator.
func (c *Coordinator) JoinGroup(client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if code := c.validateJoin(req); code != 0 {
		respond(joinError(req, code, req.MemberID))
		return
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			respond(joinError(req, kerr.UnknownMemberID.Code, req.MemberID))
			return
		}
		if len(c.groups) >= c.cfg.GroupsMax {
			c.log.Warn("group limit reached", "group", req.Group, "groups", len(c.groups))
			respond(joinError(req, kerr.CoordinatorNotAvailable.Code, req.MemberID))
			return
		}
		g = c.addGroup(req.Group)
	}
	c.join(g, client, req, respond)
	if !g.unloaded && c.groups[g.name] == g {
		g.checkInvariants(c.cfg)
		c.removeIfUnused(g)
	}
}

// validateJoin checks what does not depend on the group.
func (c *Coordinator) validateJoin(req *kmsg.JoinGroupRequest) int16 {
	switch {
	case !c.coordinates(req.Group):
		return kerr.NotCoordinator.Code
	case !versionSupported(req.Key(), req.Version):
		return kerr.UnsupportedVersion.Code
	case !validGroupID(req.Group):
		return kerr.InvalidGroupID.Code
	}
	session := msDuration(req.SessionTimeoutMillis)
	if session < c.cfg.SessionTimeoutMin || session > c.cfg.SessionTimeoutMax {
		return kerr.InvalidSessionTimeout.Code
	}
	if req.Version >= 1 && req.RebalanceTimeoutMillis <= 0 {
		return kerr.InvalidRequest.Code
	}
	if req.InstanceID != nil && (*req.InstanceID == "" || len(*req.InstanceID) > instanceIDBytesMax) {
		return kerr.InvalidRequest.Code
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return kerr.InconsistentGroupProtocol.Code
	}
	if len(req.Protocols) > protocolsPerMemberMax {
		return kerr.InvalidRequest.Code
	}
	total := 0
	for _, p := range req.Protocols {
		if p.Name == "" {
			return kerr.InconsistentGroupProtocol.Code
		}
		total += len(p.Name) + len(p.Metadata)
	}
	if total > memberProtocolBytesMax {
		return kerr.InvalidRequest.Code
	}
	return 0
}

func (c *Coordinator) join(g *group, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if g.state == Dead {
		respond(joinError(req, kerr.CoordinatorNotAvailable.Code, req.MemberID))
		return
	}
	if !protocolsCompatible(g, req) {
		respond(joinError(req, kerr.InconsistentGroupProtocol.Code, req.MemberID))
		return
	}
	if req.MemberID == "" {
		c.joinUnknown(g, client, req, respond)
		return
	}
	if req.InstanceID != nil {
		m := g.byInstance[*req.InstanceID]
		if m == nil {
			respond(joinError(req, kerr.UnknownMemberID.Code, req.MemberID))
			return
		}
		if m.id != req.MemberID {
			respond(joinError(req, kerr.FencedInstanceID.Code, req.MemberID))
			return
		}
	}
	if g.pending[req.MemberID] != nil {
		c.removePending(g, req.MemberID)
		c.addJoiningMember(g, req.MemberID, client, req, respond)
		return
	}
	m := g.byID[req.MemberID]
	if m == nil {
		respond(joinError(req, kerr.UnknownMemberID.Code, req.MemberID))
		return
	}
	c.joinKnown(g, m, client, req, respond)
}

// protocolsCompatible reports whether a joining member shares the group's
// protocol type and at least one protocol that every member supports.
func protocolsCompatible(g *group, req *kmsg.JoinGroupRequest) bool {
	if len(g.members) == 0 {
		return true
	}
	if req.ProtocolType != g.protocolType {
		return false
	}
	for _, p := range req.Protocols {
		all := true
		for _, m := range g.members {
			all = all && m.supports(p.Name)
		}
		if all {
			return true
		}
	}
	return false
}

func (c *Coordinator) joinUnknown(g *group, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if req.InstanceID != nil {
		if old := g.byInstance[*req.InstanceID]; old != nil {
			c.replaceStatic(g, old, client, req, respond)
			return
		}
	}
	if g.size() >= c.cfg.MembersPerGroupMax {
		respond(joinError(req, kerr.GroupMaxSizeReached.Code, ""))
		return
	}
	prefix := truncate(client.ID, clientIDBytesMax)
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	id := c.newMemberID(g, prefix)
	if req.InstanceID == nil && req.Version >= 4 {
		c.addPending(g, id, msDuration(req.SessionTimeoutMillis))
		respond(joinError(req, kerr.MemberIDRequired.Code, id))
		return
	}
	c.addJoiningMember(g, id, client, req, respond)
}

// addJoiningMember adds a new member whose JoinGroup is parked, and starts
// or advances the join phase.
func (c *Coordinator) addJoiningMember(g *group, id string, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	m := &member{id: id, instanceID: req.InstanceID}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	c.updateMember(m, client, req)
	m.join = &parkedJoin{req: req, respond: respond}
	g.joined++
	g.addMember(m)
	c.armSession(g, m)
	if g.state == PreparingRebalance {
		g.newMemberJoined = true
		c.maybeCompleteJoin(g)
		return
	}
	c.prepareRebalance(g, "new member joined")
}

// updateMember takes a member's settings and protocols from its JoinGroup.
func (c *Coordinator) updateMember(m *member, client Client, req *kmsg.JoinGroupRequest) {
	m.clientID, m.clientHost = truncate(client.ID, clientIDBytesMax), truncate(client.Host, clientIDBytesMax)
	m.sessionTimeout = msDuration(req.SessionTimeoutMillis)
	m.rebalanceTimeout = m.sessionTimeout
	if req.Version >= 1 {
		m.rebalanceTimeout = msDuration(req.RebalanceTimeoutMillis)
	}
	m.protocols = m.protocols[:0]
	for _, p := range req.Protocols {
		m.protocols = append(m.protocols, protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)})
	}
}

// joinKnown handles a JoinGroup of an existing member.
func (c *Coordinator) joinKnown(g *group, m *member, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	switch g.state {
	case PreparingRebalance:
		c.parkRejoin(g, m, client, req, respond)
		c.maybeCompleteJoin(g)
	case CompletingRebalance, Stable:
		// A follower that lost our answer asks again with the same
		// protocols: answer with the current generation, no rebalance.
		if m.sameProtocols(req.Protocols) && (g.state == CompletingRebalance || m.id != g.leader) {
			respond(c.joinResponse(g, m, req))
			c.armSession(g, m)
			return
		}
		c.parkRejoin(g, m, client, req, respond)
		c.prepareRebalance(g, "member rejoined with new protocols, or the leader rejoined")
	default:
		panic("group: known member in a group without members")
	}
}

// parkRejoin parks a JoinGroup of an existing member. A JoinGroup it had
// parked before is answered: the client has given up on it.
func (c *Coordinator) parkRejoin(g *group, m *member, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if m.join != nil {
		c.answerJoin(g, m, kerr.RebalanceInProgress.Code)
	}
	c.updateMember(m, client, req)
	m.join = &parkedJoin{req: req, respond: respond}
	g.joined++
	c.armSession(g, m)
}

// replaceStatic handles a static member that joins again with an empty
// member id (KIP-345): it takes over the old member's place under a new
// member id, and the old one is fenced. In Stable, a follower whose
// protocols did not change keeps its assignment without a rebalance.
func (c *Coordinator) replaceStatic(g *group, old *member, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if old.join != nil {
		c.answerJoin(g, old, kerr.FencedInstanceID.Code)
	}
	if old.sync != nil {
		c.answerSync(g, old, kerr.FencedInstanceID.Code)
	}
	id := c.newMemberID(g, *req.InstanceID)
	wasLeader, same := g.leader == old.id, old.sameProtocols(req.Protocols)
	delete(g.byID, old.id)
	c.log.Info("static member replaced", "group", g.name, "instance", *req.InstanceID, "old", old.id, "new", id)
	old.id = id
	g.byID[id] = old
	if wasLeader {
		g.leader = id
	}
	if g.state == Stable && same && !wasLeader {
		c.updateMember(old, client, req)
		c.armSession(g, old)
		respond(c.joinResponse(g, old, req))
		c.persistGroup(g)
		return
	}
	if g.state == CompletingRebalance {
		// The leader's assignment, if any, names the old member id.
		c.parkRejoin(g, old, client, req, respond)
		c.prepareRebalance(g, "static member replaced during the sync phase")
		return
	}
	c.joinKnown(g, old, client, req, respond)
}
