package group

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is the AuthorizedOperations bitfield DescribeGroups
// reports when asked: with no authorizer, every group operation (READ,
// DELETE, DESCRIBE) is allowed.
const groupOperations = 1<<int(kmsg.ACLOperationRead) | 1<<int(kmsg.ACLOperationDelete) | 1<<int(kmsg.ACLOperationDescribe)

// ListGroups handles ListGroups v0-v5, listing groups sorted by id, filtered
// by state (v4+) and type (v5+; all our groups are "classic").
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest, respond func(*kmsg.ListGroupsResponse)) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	switch {
	case c.closed:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	case !versionSupported(req.Key(), req.Version):
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	default:
		for _, name := range c.names {
			g := c.groups[name]
			if g.state == Dead || !matchesFilter(req.StatesFilter, g.state.String()) || !matchesFilter(req.TypesFilter, groupType) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.name, g.protocolType, g.state.String(), groupType
			resp.Groups = append(resp.Groups, lg)
		}
	}
	respond(resp)
}

// matchesFilter reports whether value passes a ListGroups filter; an empty
// filter passes everything. Kafka compares case-insensitively.
func matchesFilter(filter []string, value string) bool {
	return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, value) })
}

// DescribeGroups handles DescribeGroups v0-v6. Members are listed in join
// order; their metadata and assignments only when the group is Stable, as in
// Kafka. An unknown group is reported as Dead, with GROUP_ID_NOT_FOUND on v6+.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest, respond func(*kmsg.DescribeGroupsResponse)) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		switch g := c.groups[name]; {
		case !c.coordinates(name):
			dg.ErrorCode = kerr.NotCoordinator.Code
		case !versionSupported(req.Key(), req.Version):
			dg.ErrorCode = kerr.UnsupportedVersion.Code
		case g == nil || g.state == Dead:
			dg.State = Dead.String()
			if req.Version >= 6 {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				dg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("group %q not found", name))
			}
		default:
			describe(g, &dg)
		}
		if req.IncludeAuthorizedOperations && dg.ErrorCode == 0 {
			dg.AuthorizedOperations = groupOperations
		}
		resp.Groups = append(resp.Groups, dg)
	}
	respond(resp)
}

func describe(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	if g.state == Stable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if g.state == Stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}

// DeleteGroups handles DeleteGroups v0-v2. Only Empty groups can be deleted;
// a group is Dead while the tombstones of its metadata and offsets are
// written, and gone once they are durable. The request is answered when
// every deletion it started is durable or failed.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest, respond func(*kmsg.DeleteGroupsResponse)) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	var deleting []*group
	var slots []int
	for i, name := range req.Groups {
		resp.Groups[i] = kmsg.NewDeleteGroupsResponseGroup()
		resp.Groups[i].Group = name
		g := c.groups[name]
		switch {
		case !c.coordinates(name):
			resp.Groups[i].ErrorCode = kerr.NotCoordinator.Code
		case !versionSupported(req.Key(), req.Version):
			resp.Groups[i].ErrorCode = kerr.UnsupportedVersion.Code
		case !validGroupID(name):
			resp.Groups[i].ErrorCode = kerr.InvalidGroupID.Code
		case g == nil || g.state == Dead:
			resp.Groups[i].ErrorCode = kerr.GroupIDNotFound.Code
		case g.state != Empty:
			resp.Groups[i].ErrorCode = kerr.NonEmptyGroup.Code
		default:
			for _, id := range sortedKeys(g.pending) {
				c.removePending(g, id)
			}
			g.state = Dead
			deleting, slots = append(deleting, g), append(slots, i)
		}
	}
	if len(deleting) == 0 {
		respond(resp)
		return
	}
	outstanding := len(deleting)
	for k, g := range deleting {
		code := &resp.Groups[slots[k]].ErrorCode
		c.append(g, tombstones(g), func(err error) {
			c.onTombstonesStored(g, code, err)
			outstanding--
			if outstanding == 0 {
				respond(resp)
			}
		})
	}
}

// tombstones returns the records that delete g: its offsets, sorted, and its
// metadata.
func tombstones(g *group) []StoreRecord {
	tps := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets { // order-independent: sorted below
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTopicPartitions)
	records := make([]StoreRecord, 0, len(tps)+1)
	for _, tp := range tps {
		records = append(records, StoreRecord{Key: offsetKey(g.name, tp.topic, tp.partition)})
	}
	return append(records, StoreRecord{Key: groupKey(g.name)})
}

func (c *Coordinator) onTombstonesStored(g *group, code *int16, err error) {
	if err != nil {
		*code = storeErrorCode(err)
		if !g.unloaded {
			c.log.Warn("group deletion failed", "group", g.name, "err", err)
			g.state = Empty
		}
		return
	}
	if !g.unloaded {
		c.log.Info("group deleted", "group", g.name)
		g.unloaded = true
		c.removeGroup(g)
	}
}

// OffsetDelete handles OffsetDelete v0: it deletes committed offsets of an
// Empty group, or, in a "consumer" group with members, of topics no member
// subscribes to. It answers once the tombstones are durable.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest, respond func(*kmsg.OffsetDeleteResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := c.groups[req.Group]
	switch {
	case !c.coordinates(req.Group):
		resp.ErrorCode = kerr.NotCoordinator.Code
	case !versionSupported(req.Key(), req.Version):
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	case !validGroupID(req.Group):
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case g == nil || g.state == Dead:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case g.state != Empty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		respond(resp)
		return
	}
	subscribed := subscribedTopics(g)
	var records []StoreRecord
	var deleted []topicPartition
	var codes []*int16
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		resp.Topics[i] = kmsg.NewOffsetDeleteResponseTopic()
		resp.Topics[i].Topic = t.Topic
		resp.Topics[i].Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			*rp = kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			tp := topicPartition{t.Topic, p.Partition}
			if slices.Contains(subscribed, t.Topic) {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[tp]; ok {
				records = append(records, StoreRecord{Key: offsetKey(g.name, tp.topic, tp.partition)})
				deleted, codes = append(deleted, tp), append(codes, &rp.ErrorCode)
			}
		}
	}
	if len(records) == 0 {
		respond(resp)
		return
	}
	c.append(g, records, func(err error) {
		for i, tp := range deleted {
			if err != nil {
				*codes[i] = storeErrorCode(err)
			} else if !g.unloaded {
				delete(g.offsets, tp)
			}
		}
		if !g.unloaded {
			c.removeIfUnused(g)
		}
		respond(resp)
	})
}

// subscribedTopics decodes the topics the members of a "consumer" group
// subscribe to, from every protocol they offer.
func subscribedTopics(g *group) []string {
	var topics []string
	for _, m := range g.members {
		for _, p := range m.protocols {
			var meta kmsg.ConsumerMemberMetadata
			if err := meta.ReadFrom(p.metadata); err != nil {
				continue // undecodable metadata subscribes to nothing we can name
			}
			for _, t := range meta.Topics {
				if !slices.Contains(topics, t) {
					topics = append(topics, t)
				}
			}
		}
	}
	return topics
}
