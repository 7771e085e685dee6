package group

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// StoreRecord is one record of the internal __consumer_offsets log, encoded
// with Kafka's schema: an OffsetCommitKey or GroupMetadataKey and the matching
// value. A nil Value is a tombstone.
type StoreRecord struct {
	Key, Value []byte
}

// Store makes group records durable. The broker implements it with the
// internal __consumer_offsets log (the partition is chosen from the group,
// see OffsetsPartition).
type Store interface {
	// Append writes records, all belonging to group, and calls done exactly
	// once on the node's event loop: with nil when every record is durable,
	// or with an error when the write failed (wrap ErrNotCoordinator when
	// this node no longer leads the group's partition). done may be called
	// synchronously, before Append returns, or later; the coordinator handles
	// both. For one group, done calls must come in the order of the Append
	// calls, as a log completes them; the coordinator panics otherwise. The
	// Store may keep records; the coordinator does not modify them later.
	Append(group string, records []StoreRecord, done func(error))
}

// ErrNotCoordinator is wrapped by Store errors that mean this node no longer
// coordinates the group; clients are told NOT_COORDINATOR and look it up
// again. Every other Store error becomes COORDINATOR_NOT_AVAILABLE.
var ErrNotCoordinator = errors.New("not the coordinator of this group")

// errReplay is wrapped by every error Replay returns.
var errReplay = errors.New("cannot replay group record")

// Record key versions, as Kafka writes them: offset commit keys use versions
// 0 and 1 (identical layouts), group metadata keys version 2.
const (
	offsetCommitKeyVersion  = 1
	groupMetadataKeyVersion = 2
	// offsetCommitValueVersion 3 carries the leader epoch (KIP-320).
	offsetCommitValueVersion = 3
	// groupMetadataValueVersion 3 carries group instance ids (KIP-345).
	groupMetadataValueVersion = 3
)

// storeErrorCode maps a failed Store write to the error clients see, as
// Kafka maps append errors of __consumer_offsets.
func storeErrorCode(err error) int16 {
	if errors.Is(err, ErrNotCoordinator) {
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetCommitKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.offset, o.leaderEpoch, o.metadata, o.commitMs
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupMetadataKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// groupValue encodes the group's generation and members. assignments, when
// not nil, holds each member's assignment in member order (the leader's
// proposal not yet applied); otherwise the members' current assignments are
// written.
func groupValue(g *group, assignments [][]byte, nowMs int64) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.CurrentStateTimestamp = nowMs
	if len(g.members) > 0 {
		v.Protocol = kmsg.StringPtr(g.protocol)
		v.Leader = kmsg.StringPtr(g.leader)
	}
	for i, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID, vm.ClientHost = m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		if assignments != nil {
			vm.Assignment = assignments[i]
		}
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// Replay applies one record of the __consumer_offsets log to the
// coordinator's state. Call it for every record of the partitions this node
// coordinates, in log order, before serving requests for their groups: it
// rebuilds committed offsets and each group's generation, protocol, leader,
// members and assignments. A group restored with members is Stable and its
// members' session timers start now, so members that survived the
// coordinator's restart carry on without a rebalance. Records of kinds this
// coordinator never writes (KIP-848 and share groups) are skipped; malformed
// records are reported and leave the state unchanged.
func (c *Coordinator) Replay(key, value []byte) error {
	if c.closed {
		return fmt.Errorf("%w: coordinator is closed", errReplay)
	}
	if len(key) < 2 {
		return fmt.Errorf("%w: %d byte key has no version", errReplay, len(key))
	}
	switch version := int16(key[0])<<8 | int16(key[1]); version {
	case 0, 1:
		return c.replayOffset(key, value)
	case 2:
		return c.replayGroup(key, value)
	default:
		return nil
	}
}

func (c *Coordinator) replayOffset(key, value []byte) error {
	k := kmsg.NewOffsetCommitKey()
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: offset commit key: %v", errReplay, err)
	}
	var o offset
	if value != nil {
		v := kmsg.NewOffsetCommitValue()
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: offset commit value of group %q: %v", errReplay, k.Group, err)
		}
		o = offset{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, commitMs: v.CommitTimestamp}
		if v.Version < 3 {
			o.leaderEpoch = -1
		}
	}
	g, err := c.replayTarget(k.Group, value != nil)
	if g == nil || err != nil {
		return err
	}
	tp := topicPartition{k.Topic, k.Partition}
	if value == nil {
		delete(g.offsets, tp)
		c.removeIfUnused(g)
	} else {
		g.offsets[tp] = o
	}
	return nil
}

// replayTarget returns the group a replayed record applies to, creating it
// when create is set. It refuses groups that are already being served.
func (c *Coordinator) replayTarget(name string, create bool) (*group, error) {
	if name == "" || len(name) > groupIDBytesMax {
		return nil, fmt.Errorf("%w: invalid group id of %d bytes", errReplay, len(name))
	}
	if !c.coordinates(name) {
		// Replaying an unloaded partition would serve groups whose state
		// the coordinator promised to leave alone.
		return nil, fmt.Errorf("%w: group %q is in unloaded offsets partition %d", errReplay, name, c.partitionOf(name))
	}
	g := c.groups[name]
	if g == nil {
		if !create {
			return nil, nil
		}
		if len(c.groups) >= c.cfg.GroupsMax {
			return nil, fmt.Errorf("%w: more than %d groups", errReplay, c.cfg.GroupsMax)
		}
		return c.addGroup(name), nil
	}
	if g.hasParked() || g.writesPending > 0 || g.state == Dead {
		return nil, fmt.Errorf("%w: group %q is already being served", errReplay, name)
	}
	return g, nil
}

func (c *Coordinator) replayGroup(key, value []byte) error {
	k := kmsg.NewGroupMetadataKey()
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: group metadata key: %v", errReplay, err)
	}
	var v kmsg.GroupMetadataValue
	if value != nil {
		v = kmsg.NewGroupMetadataValue()
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: group metadata value of group %q: %v", errReplay, k.Group, err)
		}
		if len(v.Members) > c.cfg.MembersPerGroupMax {
			return fmt.Errorf("%w: group %q has %d members, more than %d", errReplay, k.Group, len(v.Members), c.cfg.MembersPerGroupMax)
		}
		if len(v.Members) > 0 && (v.Protocol == nil || v.Leader == nil) {
			return fmt.Errorf("%w: group %q has members but no protocol or leader", errReplay, k.Group)
		}
	}
	g, err := c.replayTarget(k.Group, value != nil)
	if g == nil || err != nil {
		return err
	}
	c.dropMembers(g)
	if value == nil {
		// A group tombstone resets the group; its offsets have their own
		// tombstones, and a group without offsets disappears.
		g.generation, g.protocolType = 0, ""
		c.removeIfUnused(g)
		return nil
	}
	return c.restoreMembers(g, &v)
}

// restoreMembers installs the members of a replayed group metadata record.
func (c *Coordinator) restoreMembers(g *group, v *kmsg.GroupMetadataValue) error {
	g.generation, g.protocolType = v.Generation, v.ProtocolType
	if len(v.Members) == 0 {
		return nil
	}
	g.protocol, g.leader = *v.Protocol, *v.Leader
	for i := range v.Members {
		vm := &v.Members[i]
		if g.byID[vm.MemberID] != nil || vm.MemberID == "" {
			c.dropMembers(g)
			return fmt.Errorf("%w: group %q has a duplicate or empty member id %q", errReplay, g.name, vm.MemberID)
		}
		m := &member{
			id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			sessionTimeout:   msDuration(vm.SessionTimeoutMillis),
			rebalanceTimeout: msDuration(max(vm.RebalanceTimeoutMillis, vm.SessionTimeoutMillis)),
			protocols:        []protocol{{name: g.protocol, metadata: vm.Subscription}},
			assignment:       vm.Assignment,
			assigned:         true,
			synced:           true,
		}
		g.addMember(m)
		c.armSession(g, m)
	}
	if g.byID[g.leader] == nil {
		c.dropMembers(g)
		return fmt.Errorf("%w: group %q names leader %q that is not a member", errReplay, g.name, g.leader)
	}
	g.state = Stable
	g.checkInvariants(c.cfg)
	return nil
}

// dropMembers forgets every member of a replayed group (which has no parked
// requests) and returns it to Empty.
func (c *Coordinator) dropMembers(g *group) {
	for len(g.members) > 0 {
		c.removeMember(g, g.members[len(g.members)-1], kerr.UnknownMemberID.Code)
	}
	g.state, g.protocol, g.leader = Empty, "", ""
}
