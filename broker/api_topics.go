package broker

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleCreateTopics answers CreateTopics (key 19), versions 0-7.
//
// NumPartitions and ReplicationFactor of -1 take the broker defaults. With
// one broker the only valid replication factor is 1, and a manual replica
// assignment may only name this broker. Configs are topic-level settings
// (see topicSettings); unknown names or bad values fail with INVALID_CONFIG.
// ValidateOnly checks everything and creates nothing.
func handleCreateTopics(n *Node, r *request, req kmsg.Request) {
	cr := req.(*kmsg.CreateTopicsRequest)
	resp := cr.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int)
	for _, rt := range cr.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range cr.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		t, err := n.createTopic(cr, rt, seen[rt.Topic] > 1)
		setError(&st.ErrorCode, &st.ErrorMessage, err)
		if t != nil {
			st.TopicID = t.id
			st.NumPartitions = int32(len(t.partitions))
			st.ReplicationFactor = 1
			for _, e := range describeTopicConfig(n.cfg, t.overrides) {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name, c.Value, c.Source = e.name, &e.value, int8(e.source)
				st.Configs = append(st.Configs, c)
			}
		} else {
			st.NumPartitions, st.ReplicationFactor = -1, -1
		}
		resp.Topics = append(resp.Topics, st)
	}
	r.respond(resp)
}

func (n *Node) createTopic(cr *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, duplicate bool) (*topic, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, rt.Topic)
	}
	partitions, factor := rt.NumPartitions, rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if partitions != -1 || factor != -1 {
			return nil, fmt.Errorf("%w: give either a replica assignment or partitions and replication factor", kerr.InvalidRequest)
		}
		partitions, factor = int32(len(rt.ReplicaAssignment)), 1
		for _, a := range rt.ReplicaAssignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID {
				return nil, fmt.Errorf("%w: partition %d names replicas %v; this cluster has only broker %d",
					kerr.InvalidReplicaAssignment, a.Partition, a.Replicas, n.cfg.NodeID)
			}
		}
	}
	if partitions == -1 {
		partitions = n.cfg.NumPartitions
	}
	if factor == -1 {
		factor = n.cfg.DefaultReplicationFactor
	}
	if factor != 1 {
		return nil, fmt.Errorf("%w: replication factor %d, but the cluster has 1 broker", kerr.InvalidReplicationFactor, factor)
	}
	overrides := make(map[string]string)
	for _, c := range rt.Configs {
		if c.Value != nil {
			overrides[c.Name] = *c.Value
		}
	}
	if len(overrides) == 0 {
		overrides = nil
	}
	if cr.ValidateOnly {
		return nil, n.catalog.validateCreate(rt.Topic, partitions, overrides)
	}
	return n.catalog.create(rt.Topic, partitions, overrides)
}

// handleDeleteTopics answers DeleteTopics (key 20), versions 0-6. Topics are
// named, or from v6 identified by id. Internal topics cannot be deleted. A
// deleted topic's committed offsets are deleted from every group (tombstones
// in __consumer_offsets).
func handleDeleteTopics(n *Node, r *request, req kmsg.Request) {
	dr := req.(*kmsg.DeleteTopicsRequest)
	resp := dr.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := dr.Topics
	for _, name := range dr.TopicNames {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = &name
		targets = append(targets, t)
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *topic
		if rt.Topic != nil {
			t = n.catalog.topics[*rt.Topic]
		} else {
			t = n.catalog.byID[rt.TopicID]
		}
		var err error
		switch {
		case t == nil && rt.Topic == nil:
			err = kerr.UnknownTopicID
		case t == nil:
			err = kerr.UnknownTopicOrPartition
		default:
			name := t.name
			st.Topic, st.TopicID = &name, t.id
			if err = n.catalog.remove(t); err == nil {
				// Kafka's GroupMetadataManager forgets a deleted topic's
				// committed offsets in every group, so that a group reading
				// a topic created again under the same name applies its
				// reset policy instead of resuming at the old offsets.
				n.groups.DeleteTopicOffsets(name)
			}
		}
		setError(&st.ErrorCode, &st.ErrorMessage, err)
		resp.Topics = append(resp.Topics, st)
	}
	r.respond(resp)
}

// handleCreatePartitions answers CreatePartitions (key 37), versions 0-3:
// a topic grows to Count partitions; it never shrinks.
func handleCreatePartitions(n *Node, r *request, req kmsg.Request) {
	cr := req.(*kmsg.CreatePartitionsRequest)
	resp := cr.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range cr.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		t := n.catalog.topics[rt.Topic]
		switch {
		case t == nil:
			err = kerr.UnknownTopicOrPartition
		case t.internal:
			err = fmt.Errorf("%w: %s is internal", kerr.InvalidTopicException, t.name)
		case rt.Count <= int32(len(t.partitions)):
			err = fmt.Errorf("%w: topic %q has %d partitions, cannot go to %d", kerr.InvalidPartitions, t.name, len(t.partitions), rt.Count)
		case cr.ValidateOnly:
		default:
			err = n.catalog.addPartitions(t, rt.Count)
		}
		setError(&st.ErrorCode, &st.ErrorMessage, err)
		resp.Topics = append(resp.Topics, st)
	}
	r.respond(resp)
}

// configEntry is one described setting.
type configEntry struct {
	name   string
	value  string
	source kmsg.ConfigSource
}

// describeTopicConfig lists every topic-level setting with its effective
// value and where it came from.
func describeTopicConfig(broker Config, overrides map[string]string) []configEntry {
	entries := make([]configEntry, 0, len(topicSettings))
	for _, s := range topicSettings {
		e := configEntry{name: s.name, value: s.brokerDefault(broker), source: kmsg.ConfigSourceDefaultConfig}
		if v, ok := overrides[s.name]; ok {
			e.value, e.source = v, kmsg.ConfigSourceDynamicTopicConfig
		}
		entries = append(entries, e)
	}
	return entries
}

// describeBrokerConfig lists the broker's settings.
func describeBrokerConfig(c Config) []configEntry {
	entries := []configEntry{
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics), kmsg.ConfigSourceStaticBrokerConfig},
		{"default.replication.factor", strconv.Itoa(int(c.DefaultReplicationFactor)), kmsg.ConfigSourceStaticBrokerConfig},
		{"log.dirs", c.LogDir, kmsg.ConfigSourceStaticBrokerConfig},
		{"log.flush.interval.messages", strconv.FormatInt(c.FlushIntervalMessages, 10), kmsg.ConfigSourceStaticBrokerConfig},
		{"log.retention.bytes", strconv.FormatInt(c.RetentionBytes, 10), kmsg.ConfigSourceStaticBrokerConfig},
		{"log.retention.ms", strconv.FormatInt(c.RetentionMs, 10), kmsg.ConfigSourceStaticBrokerConfig},
		{"log.segment.bytes", strconv.FormatInt(c.SegmentBytes, 10), kmsg.ConfigSourceStaticBrokerConfig},
		{"message.max.bytes", strconv.Itoa(int(c.MessageBytesMax)), kmsg.ConfigSourceStaticBrokerConfig},
		{"min.insync.replicas", strconv.Itoa(int(c.MinInsyncReplicas)), kmsg.ConfigSourceStaticBrokerConfig},
		{"node.id", strconv.Itoa(int(c.NodeID)), kmsg.ConfigSourceStaticBrokerConfig},
		{"num.partitions", strconv.Itoa(int(c.NumPartitions)), kmsg.ConfigSourceStaticBrokerConfig},
		{"unclean.leader.election.enable", strconv.FormatBool(c.UncleanLeaderElection), kmsg.ConfigSourceStaticBrokerConfig},
	}
	return entries
}

// handleDescribeConfigs answers DescribeConfigs (key 32), versions 0-4, for
// topics and this broker. Everything is read-only: AlterConfigs is not
// implemented.
func handleDescribeConfigs(n *Node, r *request, req kmsg.Request) {
	dr := req.(*kmsg.DescribeConfigsRequest)
	resp := dr.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range dr.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if t := n.catalog.topics[rr.ResourceName]; t != nil {
				entries = describeTopicConfig(n.cfg, t.overrides)
			} else {
				err = kerr.UnknownTopicOrPartition
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName == "" || rr.ResourceName == strconv.Itoa(int(n.cfg.NodeID)) {
				entries = describeBrokerConfig(n.cfg)
			} else {
				err = fmt.Errorf("%w: broker %q is not this broker", kerr.InvalidRequest, rr.ResourceName)
			}
		default:
			err = fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, rr.ResourceType)
		}
		setError(&sr.ErrorCode, &sr.ErrorMessage, err)
		for _, e := range filterConfigs(entries, rr.ConfigNames) {
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly = e.name, &e.value, true
			c.Source = e.source
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	r.respond(resp)
}

func filterConfigs(entries []configEntry, names []string) []configEntry {
	if names == nil {
		return entries
	}
	var out []configEntry
	for _, e := range entries {
		for _, name := range names {
			if e.name == name {
				out = append(out, e)
				break
			}
		}
	}
	return out
}
