package group

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// emptyConsumerAssignment is what a member of a "consumer" group gets when
// the leader assigned it nothing. Kafka passes the leader's empty bytes
// through; some clients cannot decode those, so, like franz-go's kfake, we
// send an encoded empty assignment instead.
var emptyConsumerAssignment = func() []byte {
	var a kmsg.ConsumerMemberAssignment
	return a.AppendTo(nil)
}()

// memberCheck is the identity a member-scoped request carries.
type memberCheck struct {
	key, version int16
	group        string
	memberID     string
	instanceID   *string
	generation   int32
}

// validateMember resolves the group and member of a SyncGroup or Heartbeat
// and checks its generation, with Kafka's error precedence.
func (c *Coordinator) validateMember(r memberCheck) (int16, *group, *member) {
	switch {
	case !c.coordinates(r.group):
		return kerr.NotCoordinator.Code, nil, nil
	case !versionSupported(r.key, r.version):
		return kerr.UnsupportedVersion.Code, nil, nil
	case !validGroupID(r.group):
		return kerr.InvalidGroupID.Code, nil, nil
	}
	g := c.groups[r.group]
	if g == nil {
		return kerr.UnknownMemberID.Code, nil, nil
	}
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code, nil, nil
	}
	if code := checkInstance(g, r.instanceID, r.memberID); code != 0 {
		return code, nil, nil
	}
	m := g.byID[r.memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code, nil, nil
	}
	if r.generation != g.generation {
		return kerr.IllegalGeneration.Code, nil, nil
	}
	return 0, g, m
}

// checkInstance fences requests of a static member's older incarnation.
func checkInstance(g *group, instanceID *string, memberID string) int16 {
	if instanceID == nil {
		return 0
	}
	m := g.byInstance[*instanceID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if m.id != memberID {
		return kerr.FencedInstanceID.Code
	}
	return 0
}

// SyncGroup handles SyncGroup v0-v5. In CompletingRebalance the request is
// parked until the leader's assignment is durable; the leader's request
// carries the assignment. respond is called exactly once and must not call
// back into the Coordinator.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	code, g, m := c.validateMember(memberCheck{req.Key(), req.Version, req.Group, req.MemberID, req.InstanceID, req.Generation})
	if code == 0 && req.Version >= 5 &&
		((req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol)) {
		code = kerr.InconsistentGroupProtocol.Code
	}
	if code != 0 {
		respond(syncError(req, code))
		return
	}
	switch g.state {
	case PreparingRebalance:
		respond(syncError(req, kerr.RebalanceInProgress.Code))
	case Stable:
		c.markSynced(g, m)
		respond(syncResponse(g, m, req))
		c.armSession(g, m)
	case CompletingRebalance:
		if m.sync != nil {
			c.answerSync(g, m, kerr.RebalanceInProgress.Code)
		}
		m.sync = &parkedSync{req: req, respond: respond}
		c.markSynced(g, m)
		if m.id == g.leader && !g.assignmentWriting {
			c.storeAssignment(g, req)
			return // the Store may have answered already; see append
		}
	default:
		panic(fmt.Sprintf("group %q: member %q in %v", g.name, m.id, g.state))
	}
	g.checkInvariants(c.cfg)
}

func (c *Coordinator) markSynced(g *group, m *member) {
	m.synced = true
	if g.syncTimer != nil && g.allSynced() {
		c.stopSyncTimer(g)
	}
}

// storeAssignment writes the leader's assignment as group metadata; members
// receive it only once it is durable.
func (c *Coordinator) storeAssignment(g *group, req *kmsg.SyncGroupRequest) {
	index := make(map[string]int, len(g.members))
	for i, m := range g.members {
		index[m.id] = i
	}
	assignments := make([][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		// Assignments for ids that are not members of this generation
		// are dropped: they can never be delivered.
		if i, ok := index[a.MemberID]; ok {
			assignments[i] = a.MemberAssignment
		}
	}
	for i := range assignments {
		if len(assignments[i]) == 0 && g.protocolType == "consumer" {
			assignments[i] = emptyConsumerAssignment
		} else if assignments[i] == nil {
			assignments[i] = []byte{}
		}
	}
	value := groupValue(g, assignments, c.clock.Now().UnixMilli())
	if len(value) > c.cfg.GroupMetadataBytesMax {
		c.log.Warn("group assignment too large", "group", g.name, "bytes", len(value), "limit", c.cfg.GroupMetadataBytesMax)
		c.abortSync(g, kerr.UnknownServerError.Code)
		c.prepareRebalance(g, "assignment too large")
		g.checkInvariants(c.cfg)
		return
	}
	g.assignmentWriting = true
	generation := g.generation
	c.append(g, []StoreRecord{{Key: groupKey(g.name), Value: value}}, func(err error) {
		c.onAssignmentStored(g, generation, assignments, err)
	})
}

// onAssignmentStored delivers a durable assignment and makes the group
// Stable, unless the generation it belongs to has already been abandoned.
func (c *Coordinator) onAssignmentStored(g *group, generation int32, assignments [][]byte, err error) {
	if g.unloaded || g.generation != generation || g.state != CompletingRebalance || !g.assignmentWriting {
		return
	}
	g.assignmentWriting = false
	if err != nil {
		c.log.Warn("group assignment write failed", "group", g.name, "generation", generation, "err", err)
		c.abortSync(g, storeErrorCode(err))
		c.prepareRebalance(g, "assignment write failed")
		return
	}
	if len(assignments) != len(g.members) {
		panic(fmt.Sprintf("group %q: %d assignments for %d members", g.name, len(assignments), len(g.members)))
	}
	for i, m := range g.members {
		m.assignment, m.assigned = assignments[i], true
	}
	g.state = Stable
	c.log.Info("group stable", "group", g.name, "generation", generation, "members", len(g.members))
	for _, m := range g.members {
		if m.sync != nil {
			c.answerSync(g, m, 0)
		}
	}
}

// Heartbeat handles Heartbeat v0-v4: it keeps a member's session alive and
// tells it when the group is rebalancing. It always answers at once.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest, respond func(*kmsg.HeartbeatResponse)) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	code, g, m := c.validateMember(memberCheck{req.Key(), req.Version, req.Group, req.MemberID, req.InstanceID, req.Generation})
	if code == 0 {
		c.armSession(g, m)
		if g.state == PreparingRebalance {
			code = kerr.RebalanceInProgress.Code
		}
		g.checkInvariants(c.cfg)
	}
	resp.ErrorCode = code
	respond(resp)
}

// LeaveGroup handles LeaveGroup v0-v5: v0-v2 name one member, v3+ a batch
// of members by member id or group instance id. The group rebalances
// without them. It always answers at once.
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest, respond func(*kmsg.LeaveGroupResponse)) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	var g *group
	switch {
	case !c.coordinates(req.Group):
		resp.ErrorCode = kerr.NotCoordinator.Code
	case !versionSupported(req.Key(), req.Version):
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	case !validGroupID(req.Group):
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case c.groups[req.Group] == nil:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	case c.groups[req.Group].state == Dead:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	default:
		g = c.groups[req.Group]
	}
	if g == nil {
		respond(resp)
		return
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		rm.MemberID, rm.ErrorCode = c.leaveOne(g, lm)
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	if !g.unloaded {
		g.checkInvariants(c.cfg)
		c.removeIfUnused(g)
	}
	respond(resp)
}

// leaveOne removes one leaving member and returns its member id and error.
func (c *Coordinator) leaveOne(g *group, lm kmsg.LeaveGroupRequestMember) (string, int16) {
	id := lm.MemberID
	if lm.InstanceID != nil {
		m := g.byInstance[*lm.InstanceID]
		if m == nil {
			return id, kerr.UnknownMemberID.Code
		}
		if id != "" && m.id != id {
			return id, kerr.FencedInstanceID.Code
		}
		id = m.id
	}
	if g.pending[id] != nil {
		c.removePending(g, id)
		if g.state == PreparingRebalance {
			c.maybeCompleteJoin(g)
		}
		return id, 0
	}
	m := g.byID[id]
	if m == nil {
		return id, kerr.UnknownMemberID.Code
	}
	c.log.Info("group member left", "group", g.name, "member", id, "generation", g.generation)
	c.removeMember(g, m, kerr.UnknownMemberID.Code)
	c.afterMemberLeft(g, "member left")
	return id, 0
}
