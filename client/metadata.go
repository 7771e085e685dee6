package client

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// addInterest asks the cluster to keep metadata for topic.
func (c *Cluster) addInterest(topic string) error {
	if _, ok := c.interest[topic]; !ok && len(c.interest) >= topicsMax {
		return fmt.Errorf("%w: more than %d topics", ErrInvalidRecord, topicsMax)
	}
	c.interest[topic]++
	return nil
}

// removeInterest undoes one addInterest.
func (c *Cluster) removeInterest(topic string) {
	n, ok := c.interest[topic]
	if !ok {
		panic("client: removeInterest without addInterest")
	}
	if n == 1 {
		delete(c.interest, topic)
		return
	}
	c.interest[topic] = n - 1
}

// onMetadata registers fn to run after every metadata update.
func (c *Cluster) onMetadata(fn func()) {
	c.listeners = append(c.listeners, fn)
}

// Topic returns the last known metadata of topic.
func (c *Cluster) Topic(topic string) (TopicMetadata, bool) {
	t, ok := c.topics[topic]
	if !ok {
		return TopicMetadata{}, false
	}
	return *t, true
}

// partitionCount returns the number of partitions of topic, or 0 when
// unknown or in error.
func (c *Cluster) partitionCount(topic string) int32 {
	t, ok := c.topics[topic]
	if !ok || t.Err != nil {
		return 0
	}
	return int32(len(t.Partitions))
}

// leader returns the leader node and leader epoch of a partition.
func (c *Cluster) leader(topic string, partition int32) (node, epoch int32, ok bool) {
	t, found := c.topics[topic]
	if !found || t.Err != nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return -1, -1, false
	}
	p := &t.Partitions[partition]
	if p.Leader < 0 {
		return -1, -1, false
	}
	if _, known := c.brokers[p.Leader]; !known {
		return -1, -1, false
	}
	return p.Leader, p.LeaderEpoch, true
}

// noLeaderError explains why tp has no known leader: with the broker's own
// error for the partition (LEADER_NOT_AVAILABLE, say) when the metadata
// carried one, so that callers can match it with errors.Is.
func (c *Cluster) noLeaderError(tp TopicPartition) error {
	if err := c.partitionError(tp); err != nil {
		return fmt.Errorf("%w: no leader for %v: %w", ErrNoBroker, tp, err)
	}
	return fmt.Errorf("%w: no leader for %v", ErrNoBroker, tp)
}

// partitionError is the error the latest metadata carried for tp, or nil.
func (c *Cluster) partitionError(tp TopicPartition) error {
	if t, found := c.topics[tp.Topic]; found && t.Err == nil && tp.Partition >= 0 && int(tp.Partition) < len(t.Partitions) {
		return t.Partitions[tp.Partition].Err
	}
	return nil
}

// RefreshMetadata requests metadata for every topic of interest; done runs
// once the cluster's view is updated (or the request failed).
func (c *Cluster) RefreshMetadata(done func(error)) {
	if len(c.meta.current)+len(c.meta.next) >= metadataWaitersMax {
		c.env.Clock.AfterFunc(0, func() { done(errNotSent(ErrTooManyRequests)) })
		return
	}
	if c.meta.inflight {
		c.meta.next = append(c.meta.next, done)
		return
	}
	c.meta.current = append(c.meta.current, done)
	c.sendMetadata()
}

// interestSorted returns the topics of interest in order.
func (c *Cluster) interestSorted() []string {
	topics := make([]string, 0, len(c.interest))
	for t := range c.interest { // order-independent: sorted below
		topics = append(topics, t)
	}
	slices.Sort(topics)
	return topics
}

func (c *Cluster) sendMetadata() {
	if c.meta.inflight {
		panic("client: two metadata requests in flight")
	}
	c.meta.inflight = true
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, t := range c.interestSorted() {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	c.requestAny(req, 0, func(resp kmsg.Response, err error) {
		c.meta.inflight = false
		if err == nil {
			err = c.applyMetadata(resp.(*kmsg.MetadataResponse), false)
		}
		waiters := c.meta.current
		c.meta.current, c.meta.next = c.meta.next, nil
		if len(c.meta.current) > 0 && !c.closed {
			c.sendMetadata()
		}
		if err == nil {
			c.armMetadataAge()
			for _, fn := range c.listeners {
				fn()
			}
		}
		for _, w := range waiters {
			w(err)
		}
	})
}

// armMetadataAge schedules the periodic refresh.
func (c *Cluster) armMetadataAge() {
	if c.meta.ageTimer != nil {
		c.meta.ageTimer.Stop()
	}
	c.meta.ageTimer = c.env.Clock.AfterFunc(c.cfg.MetadataMaxAge, func() {
		c.meta.ageTimer = nil
		if !c.closed && len(c.interest) > 0 {
			c.RefreshMetadata(func(error) {})
		}
	})
}

// applyMetadata updates brokers and topics from a response. With all set the
// response lists every topic and topics it omits are forgotten.
func (c *Cluster) applyMetadata(resp *kmsg.MetadataResponse, all bool) error {
	brokers := make(map[int32]string, len(resp.Brokers))
	for _, b := range resp.Brokers {
		if b.Port <= 0 || b.Port > 65535 || b.Host == "" {
			return fmt.Errorf("%w: broker %d at %q:%d", ErrProtocol, b.NodeID, b.Host, b.Port)
		}
		brokers[b.NodeID] = brokerAddr(b.Host, b.Port)
	}
	topics := make(map[string]*TopicMetadata, len(resp.Topics))
	for i := range resp.Topics {
		t, err := parseTopicMetadata(&resp.Topics[i])
		if err != nil {
			return err
		}
		topics[t.Topic] = t
	}
	if len(brokers) > 0 {
		c.brokers = brokers
	}
	c.controller = resp.ControllerID
	if all {
		c.topics = make(map[string]*TopicMetadata, len(topics))
	}
	for name, t := range topics { // order-independent: each key is stored once
		if len(c.topics) >= topicsMax {
			break
		}
		c.topics[name] = t
	}
	return nil
}

func parseTopicMetadata(rt *kmsg.MetadataResponseTopic) (*TopicMetadata, error) {
	if rt.Topic == nil || *rt.Topic == "" {
		return nil, fmt.Errorf("%w: metadata topic without a name", ErrProtocol)
	}
	t := &TopicMetadata{Topic: *rt.Topic, Err: kafkaError(rt.ErrorCode)}
	if t.Err != nil {
		return t, nil
	}
	if len(rt.Partitions) > partitionsPerTopicMax {
		return nil, fmt.Errorf("%w: topic %q has %d partitions", ErrProtocol, t.Topic, len(rt.Partitions))
	}
	t.Partitions = make([]PartitionMetadata, len(rt.Partitions))
	seen := make([]bool, len(rt.Partitions))
	for _, rp := range rt.Partitions {
		if rp.Partition < 0 || int(rp.Partition) >= len(rt.Partitions) || seen[rp.Partition] {
			return nil, fmt.Errorf("%w: topic %q lists partition %d of %d", ErrProtocol, t.Topic, rp.Partition, len(rt.Partitions))
		}
		seen[rp.Partition] = true
		leader := rp.Leader
		if rp.ErrorCode == kerr.LeaderNotAvailable.Code {
			leader = -1
		}
		t.Partitions[rp.Partition] = PartitionMetadata{
			Partition: rp.Partition, Leader: leader, LeaderEpoch: rp.LeaderEpoch,
			Replicas: rp.Replicas, ISR: rp.ISR, Err: kafkaError(rp.ErrorCode),
		}
	}
	return t, nil
}

// findCoordinator resolves the group coordinator of group, from the cache
// or with a FindCoordinator request.
func (c *Cluster) findCoordinator(group string, done func(node int32, err error)) {
	if node, ok := c.coordinators[group]; ok {
		if _, known := c.brokers[node]; known {
			c.env.Clock.AfterFunc(0, func() { done(node, nil) })
			return
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorType = 0
	c.requestAny(req, 0, func(r kmsg.Response, err error) {
		if err != nil {
			done(-1, err)
			return
		}
		resp := r.(*kmsg.FindCoordinatorResponse)
		if err := kafkaError(resp.ErrorCode); err != nil {
			done(-1, err)
			return
		}
		if resp.Port <= 0 || resp.Port > 65535 || resp.Host == "" {
			done(-1, fmt.Errorf("%w: coordinator at %q:%d", ErrProtocol, resp.Host, resp.Port))
			return
		}
		c.brokers[resp.NodeID] = brokerAddr(resp.Host, resp.Port)
		c.coordinators[group] = resp.NodeID
		done(resp.NodeID, nil)
	})
}

// forgetCoordinator drops the cached coordinator of group after it answered
// NOT_COORDINATOR or could not be reached.
func (c *Cluster) forgetCoordinator(group string) {
	delete(c.coordinators, group)
}
