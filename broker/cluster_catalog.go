package broker

import (
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/group"
	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/core/planted"
)

// In cluster mode the catalog follows the metadata image: a topic with a
// replica on this broker gets local partitions (all of the topic's, for
// now: a partition this broker is no replica of stays empty and plays no
// role, replica.go), a topic re-created under a new id replaces the old one's
// files, and a topic the image no longer has is deleted once this broker
// has applied the log up to its own registration (before that the image
// may simply not have caught up). A local partition serves clients only
// while the image names this broker its leader.

// leads reports whether this broker may serve a local topic's partition
// as its leader: the image names it leader under the same topic id, and the
// controller has unfenced this incarnation. The second condition keeps a
// restarted broker from serving on a stale view: while it replays the
// metadata log, old records name it leader of partitions that later
// records moved away, and the controller unfences it only once it has
// applied its own registration, which comes after all of them (and which
// itself takes every leadership of the previous incarnation away).
func (c *cluster) leads(t *topic, index int32) bool {
	if c.lifecycle.fenced && !planted.Is("lead-while-fenced") {
		return false
	}
	state, ok := c.image.Partition(metadata.TopicID(t.id), index)
	return ok && state.Leader == c.node.cfg.NodeID
}

// hostsReplica reports whether this broker is a replica of any partition
// of t.
func (c *cluster) hostsReplica(t metadata.Topic) bool {
	for _, p := range t.Partitions {
		for _, r := range p.Replicas {
			if r == c.node.cfg.NodeID {
				return true
			}
		}
	}
	return false
}

// topicOverrides returns the topic's configuration from the image.
func (c *cluster) topicOverrides(name string) map[string]string {
	entries := c.image.Configs(metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: name})
	if len(entries) == 0 {
		return nil
	}
	overrides := make(map[string]string, len(entries))
	for _, e := range entries {
		overrides[e.Name] = e.Value
	}
	return overrides
}

// reconcile makes the catalog follow the image.
func (c *cluster) reconcile() {
	n := c.node
	cat := n.catalog
	for _, name := range c.image.TopicNames() {
		t, _ := c.image.TopicByName(name)
		if !c.hostsReplica(t) {
			continue
		}
		local := cat.topics[name]
		if local != nil && local.id != [16]byte(t.ID) {
			n.log.Info("topic re-created under a new id; removing the old one's files", slog.String("topic", name))
			if err := cat.removeFollowing(local); err != nil {
				n.log.Warn("cannot remove a replaced topic", slog.String("topic", name), slog.Any("err", err))
				continue
			}
			local = nil
		}
		want := int32(len(t.Partitions))
		if local == nil {
			created, err := cat.createWithID(name, [16]byte(t.ID), want, c.topicOverrides(name))
			if err != nil {
				n.log.Warn("cannot create a topic's local partitions", slog.String("topic", name), slog.Any("err", err))
				continue
			}
			c.topicCreated(created)
			local = created
		}
		if have := int32(len(local.partitions)); have < want {
			if err := cat.growFollowing(local, want); err != nil {
				n.log.Warn("cannot add a topic's local partitions", slog.String("topic", name), slog.Any("err", err))
			}
		}
		c.followConfigs(local)
	}
	c.applyRoles()
	if c.lifecycle.brokerEpoch < 0 || c.image.AppliedOffset() < c.lifecycle.brokerEpoch {
		return
	}
	for _, local := range cat.sorted() {
		t, ok := c.image.TopicByName(local.name)
		if ok && [16]byte(t.ID) == local.id && c.hostsReplica(t) {
			continue
		}
		if local.internal {
			continue
		}
		n.log.Info("topic gone from the metadata log; removing its local partitions", slog.String("topic", local.name))
		if err := cat.removeFollowing(local); err != nil {
			n.log.Warn("cannot remove a topic", slog.String("topic", local.name), slog.Any("err", err))
		}
	}
}

// applyRoles gives every local partition the replication role the image
// and this broker's fencing allow (replica.go), then lets the group
// coordinator follow the offsets partitions it leads.
func (c *cluster) applyRoles() {
	for _, t := range c.node.catalog.sorted() {
		c.applyImage(t)
	}
	c.syncGroups()
}

// topicCreated runs when the catalog made a topic's local partitions.
func (c *cluster) topicCreated(t *topic) {
	if t.name == offsetsTopic {
		c.syncGroups()
	}
}

// syncGroups makes the group coordinator serve exactly the groups of the
// __consumer_offsets partitions this broker may lead (cluster.leads): a
// partition it came to lead is loaded from its log, one it no longer leads
// is unloaded (NOT_COORDINATOR, so clients look the coordinator up again).
// The coordinator is built, serving nothing, once the topic has local
// partitions.
func (c *cluster) syncGroups() {
	n := c.node
	local := n.catalog.topics[offsetsTopic]
	if local == nil || n.stopped {
		return
	}
	if n.groups == nil {
		coordinator, err := n.newGroupCoordinator(int32(len(local.partitions)), true)
		if err != nil {
			n.log.Error("cannot start the group coordinator", slog.Any("err", err))
			return
		}
		n.groups = coordinator
	}
	for i, p := range local.partitions {
		index := int32(i)
		serve := c.leads(local, index) && p.log != nil && p.offline == nil
		switch unloaded := n.groups.PartitionUnloaded(index); {
		case serve && unloaded && p.highWatermark() < p.log.LogEndOffset():
			// A new leader loads its groups once everything in its log is
			// committed, so that no group state it serves can be truncated
			// away by the next leader (committedAdvanced calls again).
		case serve && unloaded:
			err := n.groups.LoadPartition(index, p.replayRecords)
			if err != nil {
				n.log.Warn("cannot load the groups of an offsets partition", slog.Int("partition", i), slog.Any("err", err))
				p.checkCorruption("group load", err)
			}
		case !serve && !unloaded:
			n.groups.UnloadPartition(index)
		}
	}
}

// removeFollowing deletes a topic the metadata log no longer has, internal
// or not.
func (cat *catalog) removeFollowing(t *topic) error {
	internal := t.internal
	t.internal = false
	err := cat.remove(t)
	if err != nil {
		t.internal = internal
	}
	return err
}

// growFollowing adds local partitions up to count and saves the catalog.
func (cat *catalog) growFollowing(t *topic, count int32) error {
	if err := cat.grow(t, count); err != nil {
		return err
	}
	return cat.save()
}

// ensureOffsetsTopic asks the controller, once per life, to create
// __consumer_offsets, as Kafka's brokers do on the first FindCoordinator.
func (c *cluster) ensureOffsetsTopic() {
	if c.offsetsTopicAsked {
		return
	}
	if _, ok := c.image.TopicByName(offsetsTopic); ok {
		return
	}
	c.offsetsTopicAsked = true
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 30_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = offsetsTopic
	rt.NumPartitions = c.node.cfg.OffsetsTopicPartitions
	rt.ReplicationFactor = c.node.cfg.OffsetsTopicReplicationFactor
	req.Topics = append(req.Topics, rt)
	c.sendToController(req, 30*time.Second, func(resp kmsg.Response, err error) {
		if err != nil {
			c.offsetsTopicAsked = false
			return
		}
		for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
			if t.ErrorCode != 0 && t.ErrorCode != kerr.TopicAlreadyExists.Code {
				c.node.log.Warn("cannot create the consumer offsets topic", slog.String("err", kerr.ErrorForCode(t.ErrorCode).Error()))
				c.offsetsTopicAsked = false
			}
		}
	})
}

// brokerEndpoint returns the host and port a registered broker advertised.
func (c *cluster) brokerEndpoint(id int32) (string, int32, bool) {
	b, ok := c.image.Broker(id)
	if !ok || len(b.Listeners) == 0 {
		return "", 0, false
	}
	return b.Listeners[0].Host, int32(b.Listeners[0].Port), true
}

// metadataBrokers lists the unfenced registered brokers, as KRaft's
// Metadata does.
func (c *cluster) metadataBrokers() []kmsg.MetadataResponseBroker {
	var brokers []kmsg.MetadataResponseBroker
	for _, b := range c.image.Brokers() {
		if b.Fenced {
			continue
		}
		host, port, ok := c.brokerEndpoint(b.ID)
		if !ok {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.ID, host, port
		brokers = append(brokers, mb)
	}
	return brokers
}

// metadataTopic describes a topic of the image: leaders, replicas and ISR
// as the controller committed them.
func (c *cluster) metadataTopic(t metadata.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic = &name
	st.TopicID = [16]byte(t.ID)
	st.IsInternal = t.Name == offsetsTopic
	for i, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = int32(i)
		sp.Leader = p.Leader
		sp.LeaderEpoch = p.LeaderEpoch
		sp.Replicas = append([]int32{}, p.Replicas...)
		sp.ISR = append([]int32{}, p.ISR...)
		sp.OfflineReplicas = []int32{}
		if p.Leader == metadata.NoLeader {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}

// handleMetadata answers Metadata in cluster mode from the image: the
// unfenced brokers, and each topic's leaders, replicas and ISR. An unknown
// topic that may be auto-created is asked of the controller and reported
// LEADER_NOT_AVAILABLE until it exists, as Kafka's brokers do.
func (c *cluster) handleMetadata(r *request, mr *kmsg.MetadataRequest) {
	n := c.node
	resp := mr.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = c.metadataBrokers()
	resp.ClusterID = &n.cfg.ClusterID
	resp.ControllerID = c.activeController()
	if _, ok := c.image.Broker(resp.ControllerID); !ok {
		// Clients send admin requests to the controller id; a broker
		// forwards them, so any live broker will do.
		resp.ControllerID = n.cfg.NodeID
	}
	if mr.Topics == nil || (mr.Version == 0 && len(mr.Topics) == 0) {
		for _, name := range c.image.TopicNames() {
			t, _ := c.image.TopicByName(name)
			resp.Topics = append(resp.Topics, c.metadataTopic(t))
		}
	}
	var create []string
	for _, rt := range mr.Topics {
		if rt.Topic == nil {
			if t, ok := c.image.TopicByID(metadata.TopicID(rt.TopicID)); ok {
				resp.Topics = append(resp.Topics, c.metadataTopic(t))
				continue
			}
			st := kmsg.NewMetadataResponseTopic()
			st.TopicID, st.ErrorCode = rt.TopicID, kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if t, ok := c.image.TopicByName(*rt.Topic); ok {
			resp.Topics = append(resp.Topics, c.metadataTopic(t))
			continue
		}
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.ErrorCode = rt.Topic, kerr.UnknownTopicOrPartition.Code
		if n.cfg.AutoCreateTopics && (mr.Version < 4 || mr.AllowAutoTopicCreation) && validateTopicName(*rt.Topic) == nil {
			st.ErrorCode = kerr.LeaderNotAvailable.Code
			create = append(create, *rt.Topic)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(create) > 0 {
		c.autoCreate(create)
	}
	r.respond(resp)
}

// autoCreate asks the controller to create topics with the broker's
// defaults; the answer is not awaited (the client asks Metadata again).
func (c *cluster) autoCreate(names []string) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 30_000
	for _, name := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
		req.Topics = append(req.Topics, rt)
	}
	c.sendToController(req, 30*time.Second, func(kmsg.Response, error) {})
}

// locateCoordinator finds a group's coordinator in cluster mode: the
// leader, in the image, of the __consumer_offsets partition that holds the
// group. Until that topic exists the controller is asked to create it.
func (c *cluster) locateCoordinator(key string) (int32, string, int32, error) {
	t, ok := c.image.TopicByName(offsetsTopic)
	if !ok || len(t.Partitions) == 0 {
		c.ensureOffsetsTopic()
		return -1, "", -1, fmt.Errorf("%w: %s is being created", kerr.CoordinatorNotAvailable, offsetsTopic)
	}
	leader := t.Partitions[group.OffsetsPartition(key, int32(len(t.Partitions)))].Leader
	host, port, ok := c.brokerEndpoint(leader)
	if leader == metadata.NoLeader || !ok {
		return -1, "", -1, fmt.Errorf("%w: the %s partition that holds the group has no leader", kerr.CoordinatorNotAvailable, offsetsTopic)
	}
	if leader == c.node.cfg.NodeID {
		if local := c.node.catalog.topics[offsetsTopic]; local != nil {
			if p := c.node.offsetsPartitionOf(key); p.offline != nil {
				return -1, "", -1, fmt.Errorf("%w: %s, which holds the group, is offline", kerr.CoordinatorNotAvailable, p)
			}
		}
	}
	return leader, host, port, nil
}

// missingPartition is the error for a partition the catalog does not serve:
// UNKNOWN_TOPIC_OR_PARTITION for a standalone broker; in cluster mode,
// what the image says, so that a client goes to the right broker:
// LEADER_NOT_AVAILABLE when the partition has no leader,
// NOT_LEADER_OR_FOLLOWER when another broker leads it (or this one does
// and has not made its local replica yet).
func (n *Node) missingPartition(topic string, index int32) error {
	if n.cluster == nil {
		return kerr.UnknownTopicOrPartition
	}
	t, ok := n.cluster.image.TopicByName(topic)
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return kerr.UnknownTopicOrPartition
	}
	if t.Partitions[index].Leader == metadata.NoLeader {
		return kerr.LeaderNotAvailable
	}
	return kerr.NotLeaderForPartition
}

// followConfigs gives a local topic the configuration the image commits.
// The controller accepted it through the same checks this broker applies
// (alteredTopicConfigs), so it resolves; if it somehow does not, the local
// topic keeps what it had and the problem is logged.
func (c *cluster) followConfigs(t *topic) {
	overrides := c.topicOverrides(t.name)
	if maps.Equal(overrides, t.overrides) {
		return
	}
	config, err := resolveTopicConfig(c.node.cfg, overrides)
	if err != nil {
		c.node.log.Error("committed topic config does not resolve", slog.String("topic", t.name), slog.Any("err", err))
		return
	}
	if err := c.node.setTopicOverrides(t, overrides, internalTopicConfig(t.name, config)); err != nil {
		c.node.log.Warn("cannot save a topic's committed config", slog.String("topic", t.name), slog.Any("err", err))
	}
}
