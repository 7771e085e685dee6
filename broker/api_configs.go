package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
// topics and this broker. Topic settings are not read-only (they change with
// IncrementalAlterConfigs), as Kafka's ConfigHelper.createTopicConfigEntry
// reports them; broker settings are read-only, as Kafka reports every
// broker setting that cannot change dynamically, and none can here.
func handleDescribeConfigs(n *Node, r *request, req kmsg.Request) {
	dr := req.(*kmsg.DescribeConfigsRequest)
	resp := dr.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range dr.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		var err error
		readOnly := false
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if overrides, ok := n.topicOverrides(rr.ResourceName); ok {
				entries = describeTopicConfig(n.cfg, overrides)
			} else {
				err = kerr.UnknownTopicOrPartition
			}
		case kmsg.ConfigResourceTypeBroker:
			readOnly = true
			if err = n.checkBrokerResource(rr.ResourceName); err == nil {
				entries = describeBrokerConfig(n.cfg)
			}
		default:
			err = fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, rr.ResourceType)
		}
		setError(&sr.ErrorCode, &sr.ErrorMessage, err)
		for _, e := range filterConfigs(entries, rr.ConfigNames) {
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly = e.name, &e.value, readOnly
			c.Source = e.source
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	r.respond(resp)
}

// topicOverrides returns a topic's configuration overrides: in cluster
// mode from the metadata image, so that any broker answers for any topic,
// replica here or not; standalone from the catalog.
func (n *Node) topicOverrides(name string) (map[string]string, bool) {
	if n.cluster != nil {
		if _, ok := n.cluster.image.TopicByName(name); !ok {
			return nil, false
		}
		return n.cluster.topicOverrides(name), true
	}
	if t := n.catalog.topics[name]; t != nil {
		return t.overrides, true
	}
	return nil, false
}

// checkBrokerResource accepts the names of this broker as a config resource:
// empty (the cluster default) or its node id.
func (n *Node) checkBrokerResource(name string) error {
	if name == "" || name == strconv.Itoa(int(n.cfg.NodeID)) {
		return nil
	}
	return fmt.Errorf("%w: broker %q is not this broker", kerr.InvalidRequest, name)
}

func filterConfigs(entries []configEntry, names []string) []configEntry {
	if names == nil {
		return entries
	}
	var out []configEntry
	for _, e := range entries {
		if slices.Contains(names, e.name) {
			out = append(out, e)
		}
	}
	return out
}

// liveTopicSettings are the topic settings that the broker reads on every
// use, so that a change takes effect at once. The others (segment.*,
// retention.*, flush.messages) are given to each partition log when it is
// opened, and the storage layer has no way yet to change them on an open
// log; IncrementalAlterConfigs refuses to change them rather than show a
// value that is not in force.
var liveTopicSettings = []string{"cleanup.policy", "compression.type", "max.message.bytes", "message.timestamp.type", "min.insync.replicas",
	"unclean.leader.election.enable"}

// handleIncrementalAlterConfigs answers IncrementalAlterConfigs (key 44),
// versions 0-1, for topic settings: SET and DELETE of any topic setting
// this broker supports, APPEND and SUBTRACT of the list setting
// cleanup.policy, validated exactly as CreateTopics validates configs, and
// made durable in the topic catalog before the answer. Checks follow
// Kafka's ConfigAdminManager.preprocess and
// ConfigurationControlManager.incrementalAlterConfigResource: a resource
// named twice, a key named twice or a null value for SET, APPEND or
// SUBTRACT is INVALID_REQUEST; APPEND or SUBTRACT of a setting that is not
// a list, an unknown setting or a bad value is INVALID_CONFIG; a missing
// topic is UNKNOWN_TOPIC_OR_PARTITION. Broker settings are static here
// (INVALID_REQUEST). ValidateOnly checks everything and changes nothing.
func handleIncrementalAlterConfigs(n *Node, r *request, req kmsg.Request) {
	ar := req.(*kmsg.IncrementalAlterConfigsRequest)
	if n.cluster != nil {
		// The controller commits the change; every broker's catalog
		// follows (cluster_catalog.go).
		n.forwardToController(r, req, 0)
		return
	}
	resp := ar.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for i, rr := range ar.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		if resourceRepeated(ar.Resources, i) {
			err = fmt.Errorf("%w: each resource must appear at most once", kerr.InvalidRequest)
		} else {
			err = n.alterResource(rr, ar.ValidateOnly)
		}
		setError(&sr.ErrorCode, &sr.ErrorMessage, err)
		resp.Resources = append(resp.Resources, sr)
	}
	r.respond(resp)
}

// resourceRepeated reports whether the resource at index appears elsewhere
// in the request; Kafka fails every copy.
func resourceRepeated(resources []kmsg.IncrementalAlterConfigsRequestResource, index int) bool {
	for i, other := range resources {
		if i != index && other.ResourceType == resources[index].ResourceType && other.ResourceName == resources[index].ResourceName {
			return true
		}
	}
	return false
}

// alterResource checks and applies the changes to one resource.
func (n *Node) alterResource(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	if err := checkAlterRequest(rr.Configs); err != nil {
		return err
	}
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		if err := n.checkBrokerResource(rr.ResourceName); err != nil {
			return err
		}
		return fmt.Errorf("%w: broker settings are static; change server.properties and restart", kerr.InvalidRequest)
	default:
		return fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, rr.ResourceType)
	}
	t := n.catalog.topics[rr.ResourceName]
	var current map[string]string
	if t != nil {
		current = t.overrides
		if current == nil {
			current = map[string]string{}
		}
	}
	overrides, err := n.alteredTopicConfigs(current, rr.Configs)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rr.ResourceName)
	}
	if validateOnly {
		return nil
	}
	config, _ := resolveTopicConfig(n.cfg, overrides)
	return n.setTopicOverrides(t, overrides, internalTopicConfig(t.name, config))
}

// alteredTopicConfigs returns a topic's overrides after changes, checked as
// IncrementalAlterConfigs checks them (controller.TopicConfigs): the
// request-level checks, the operations, every value valid, and, for an
// existing topic (current not nil), only settings that take effect at once
// changed. A new topic (current nil) may set any setting.
func (n *Node) alteredTopicConfigs(current map[string]string, changes []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	if err := checkAlterRequest(changes); err != nil {
		return nil, err
	}
	overrides, err := applyConfigOps(current, changes)
	if err != nil {
		return nil, err
	}
	if _, err := resolveTopicConfig(n.cfg, overrides); err != nil {
		return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	if current == nil {
		return overrides, nil
	}
	for _, name := range changedSettings(current, overrides) {
		if !slices.Contains(liveTopicSettings, name) {
			return nil, fmt.Errorf("%w: %s cannot be changed on an existing topic yet (the partition logs read it when they open); settable now: %s",
				kerr.InvalidConfig, name, strings.Join(liveTopicSettings, ", "))
		}
	}
	return overrides, nil
}

// checkAlterRequest applies the request-level checks of Kafka's
// ConfigAdminManager.preprocess to one resource's changes.
func checkAlterRequest(configs []kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	for i, c := range configs {
		for _, other := range configs[i+1:] {
			if other.Name == c.Name {
				return fmt.Errorf("%w: config %q appears more than once", kerr.InvalidRequest, c.Name)
			}
		}
		switch {
		case c.Op < kmsg.IncrementalAlterConfigOpSet || c.Op > kmsg.IncrementalAlterConfigOpSubtract:
			return fmt.Errorf("%w: unknown operation %d on %q", kerr.InvalidRequest, c.Op, c.Name)
		case c.Op != kmsg.IncrementalAlterConfigOpDelete && c.Value == nil:
			return fmt.Errorf("%w: null value for %q", kerr.InvalidRequest, c.Name)
		}
	}
	return nil
}

// listTopicSettings are the topic settings whose values are comma-separated
// lists, which APPEND and SUBTRACT change element by element.
var listTopicSettings = []string{"cleanup.policy"}

// applyConfigOps returns current (which it does not modify) with the
// operations applied, as Kafka's ConfigurationControlManager applies them;
// nil when no override is left.
func applyConfigOps(current map[string]string, configs []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	overrides := maps.Clone(current)
	if overrides == nil {
		overrides = make(map[string]string)
	}
	for _, c := range configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			overrides[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(overrides, c.Name)
		default:
			if !slices.Contains(listTopicSettings, c.Name) {
				return nil, fmt.Errorf("%w: cannot %s %q: it is not a list", kerr.InvalidConfig, c.Op, c.Name)
			}
			overrides[c.Name] = editList(overrides[c.Name], *c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
		}
	}
	if len(overrides) == 0 {
		return nil, nil
	}
	return overrides, nil
}

// editList appends the comma-separated values to list (skipping those
// already present) or removes them from it.
func editList(list, values string, appending bool) string {
	var parts []string
	if list != "" {
		parts = strings.Split(list, ",")
	}
	for _, v := range strings.Split(values, ",") {
		switch {
		case appending && !slices.Contains(parts, v):
			parts = append(parts, v)
		case !appending:
			parts = slices.DeleteFunc(parts, func(p string) bool { return p == v })
		}
	}
	return strings.Join(parts, ",")
}

// changedSettings lists, sorted, the settings whose override differs
// between before and after.
func changedSettings(before, after map[string]string) []string {
	var changed []string
	for _, s := range topicSettings {
		old, hadOld := before[s.name]
		now, hasNow := after[s.name]
		if hadOld != hasNow || old != now {
			changed = append(changed, s.name)
		}
	}
	return changed
}

// setTopicOverrides replaces a topic's overrides and makes them durable by
// saving the catalog, which records every topic's overrides; on failure the
// old ones are restored and the error is KAFKA_STORAGE_ERROR.
func (n *Node) setTopicOverrides(t *topic, overrides map[string]string, config topicConfig) error {
	oldOverrides, oldConfig := t.overrides, t.config
	t.overrides, t.config = overrides, config
	if err := n.catalog.save(); err != nil {
		t.overrides, t.config = oldOverrides, oldConfig
		return fmt.Errorf("%w: saving the topic catalog: %v", kerr.KafkaStorageError, err)
	}
	n.log.Info("changed topic config", "topic", t.name, "overrides", len(overrides))
	return nil
}
