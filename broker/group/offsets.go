package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/planted"
)

// acceptedCommit is one partition of a commit that passed validation; it
// points at its slot in the response.
type acceptedCommit struct {
	tp     topicPartition
	offset offset
	code   *int16
}

// OffsetCommit handles OffsetCommit v0-v9. A commit carrying a member id or
// a generation must come from a member of the current generation; a commit
// with generation -1 and no member id (a "simple" commit) is accepted only
// while the group is Empty, and creates the group if needed. Offsets become
// visible, and the request is answered, once the Store reports them durable.
// respond is called exactly once and must not call back into the
// Coordinator.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest, respond func(*kmsg.OffsetCommitResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	accepted := c.commitPartitions(req, resp)
	g := c.groups[req.Group]
	code, m := c.validateCommit(g, req)
	if code == 0 && len(accepted) > 0 && g == nil {
		if len(c.groups) >= c.cfg.GroupsMax {
			code = kerr.CoordinatorNotAvailable.Code
		} else {
			g = c.addGroup(req.Group)
		}
	}
	if code != 0 || len(accepted) == 0 {
		if code != 0 {
			setCommitCodes(resp, code)
		}
		respond(resp)
		return
	}
	if m != nil {
		c.armSession(g, m)
	}
	records := make([]StoreRecord, 0, len(accepted))
	for _, a := range accepted {
		records = append(records, StoreRecord{Key: offsetKey(g.name, a.tp.topic, a.tp.partition), Value: offsetValue(a.offset)})
		g.committing[a.tp]++
	}
	if planted.Is("commit-before-store") {
		respond(resp)
		c.append(g, records, func(err error) { c.onCommitStored(g, accepted, err) })
		return
	}
	c.append(g, records, func(err error) {
		c.onCommitStored(g, accepted, err)
		respond(resp)
	})
}

func (c *Coordinator) onCommitStored(g *group, accepted []acceptedCommit, err error) {
	for _, a := range accepted {
		if g.committing[a.tp]--; g.committing[a.tp] <= 0 {
			delete(g.committing, a.tp)
		}
		if err != nil {
			*a.code = storeErrorCode(err)
		} else if !g.unloaded {
			g.offsets[a.tp] = a.offset
		}
	}
	if !g.unloaded {
		c.removeIfUnused(g)
	}
}

// validateCommit checks the group-level conditions of a commit, as Kafka's
// ClassicGroup.validateOffsetCommit does, and returns the committing member.
func (c *Coordinator) validateCommit(g *group, req *kmsg.OffsetCommitRequest) (int16, *member) {
	switch {
	case !c.coordinates(req.Group):
		return kerr.NotCoordinator.Code, nil
	case !versionSupported(req.Key(), req.Version):
		return kerr.UnsupportedVersion.Code, nil
	case !validGroupID(req.Group):
		return kerr.InvalidGroupID.Code, nil
	case g == nil && req.Generation < 0:
		return 0, nil
	case g == nil && req.Version >= 9:
		return kerr.GroupIDNotFound.Code, nil
	case g == nil:
		return kerr.IllegalGeneration.Code, nil
	case g.state == Dead:
		return kerr.CoordinatorNotAvailable.Code, nil
	case req.Generation < 0 && g.state == Empty:
		return 0, nil
	}
	if req.Generation >= 0 && req.Generation < g.generation && planted.Is("stale-generation-commit") {
		// The planted bug: a commit of an earlier generation (a zombie
		// member's) is stored instead of refused.
		return 0, nil
	}
	var m *member
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if code := checkInstance(g, req.InstanceID, req.MemberID); code != 0 {
			return code, nil
		}
		if m = g.byID[req.MemberID]; m == nil {
			return kerr.UnknownMemberID.Code, nil
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code, nil
		}
	} else if g.state != Empty {
		return kerr.UnknownMemberID.Code, nil
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress.Code, m
	}
	return 0, m
}

// commitPartitions fills the response in request order, with errors for
// partitions that cannot be committed, and returns the others.
func (c *Coordinator) commitPartitions(req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse) []acceptedCommit {
	nowMs := c.clock.Now().UnixMilli()
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	var accepted []acceptedCommit
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			*rp = kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			o := offset{offset: p.Offset, leaderEpoch: -1, commitMs: nowMs}
			if p.Metadata != nil {
				o.metadata = *p.Metadata
			}
			if req.Version >= 6 {
				o.leaderEpoch = p.LeaderEpoch
			}
			switch {
			case len(o.metadata) > c.cfg.OffsetMetadataBytesMax:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			case t.Topic == "" || p.Partition < 0 || (c.topics != nil && !c.topics.PartitionExists(t.Topic, p.Partition)):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				accepted = append(accepted, acceptedCommit{tp: topicPartition{t.Topic, p.Partition}, offset: o, code: &rp.ErrorCode})
			}
		}
	}
	return accepted
}

// setCommitCodes sets code on every partition that has no error yet.
func setCommitCodes(resp *kmsg.OffsetCommitResponse, code int16) {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].ErrorCode == 0 {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	}
}

// fetchTopic is one topic of an OffsetFetch; every version is converted to
// it. A nil []fetchTopic asks for every committed offset.
type fetchTopic struct {
	topic      string
	partitions []int32
}

// OffsetFetch handles OffsetFetch v0-v9 (v8+ asks for several groups at
// once). It reads committed, durable offsets; a partition without one gets
// offset -1. It always answers at once.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest, respond func(*kmsg.OffsetFetchResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []fetchTopic
			if rg.Topics != nil {
				topics = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, fetchTopic{t.Topic, t.Partitions})
				}
			}
			resp.Groups = append(resp.Groups, c.fetchGroup(req.Version, rg.Group, topics))
		}
		respond(resp)
		return
	}
	var topics []fetchTopic
	if req.Topics != nil || req.Version < 2 {
		topics = make([]fetchTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			topics = append(topics, fetchTopic{t.Topic, t.Partitions})
		}
	}
	fg := c.fetchGroup(req.Version, req.Group, topics)
	if req.Version >= 2 {
		resp.ErrorCode = fg.ErrorCode
	}
	for _, t := range fg.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	respond(resp)
}

// fetchGroup answers one group of an OffsetFetch. On a group error every
// requested partition carries it too, which old versions (no group-level
// error code) need.
func (c *Coordinator) fetchGroup(version int16, name string, topics []fetchTopic) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = name
	g := c.groups[name]
	switch {
	case !c.coordinates(name):
		out.ErrorCode = kerr.NotCoordinator.Code
	case !versionSupported(kmsg.OffsetFetch.Int16(), version):
		out.ErrorCode = kerr.UnsupportedVersion.Code
	case !validGroupID(name):
		out.ErrorCode = kerr.InvalidGroupID.Code
	case g != nil && g.state == Dead:
		out.ErrorCode = kerr.CoordinatorNotAvailable.Code
	}
	if topics == nil {
		if out.ErrorCode == 0 && g != nil {
			out.Topics = allOffsets(g)
		}
		return out
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.topic
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, -1, -1, kmsg.StringPtr("")
			rp.ErrorCode = out.ErrorCode
			if o, ok := lookupOffset(g, t.topic, p); ok && out.ErrorCode == 0 {
				rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}

func lookupOffset(g *group, topic string, partition int32) (offset, bool) {
	if g == nil {
		return offset{}, false
	}
	o, ok := g.offsets[topicPartition{topic, partition}]
	return o, ok
}

// allOffsets lists every committed offset of g, sorted by topic and
// partition.
func allOffsets(g *group) []kmsg.OffsetFetchResponseGroupTopic {
	tps := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets { // order-independent: sorted below
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTopicPartitions)
	var out []kmsg.OffsetFetchResponseGroupTopic
	for _, tp := range tps {
		if len(out) == 0 || out[len(out)-1].Topic != tp.topic {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = tp.topic
			out = append(out, rt)
		}
		o := g.offsets[tp]
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = tp.partition, o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, rp)
	}
	return out
}

func compareTopicPartitions(a, b topicPartition) int {
	if c := strings.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return int(a.partition) - int(b.partition)
}
