package group

import (
	"slices"
)

// DeleteTopicOffsets forgets, in every group, the committed offsets of the
// given topics, as Kafka's GroupMetadataManager.cleanupGroupMetadata does
// when a topic is deleted: without it, a group reading a topic deleted and
// created again would resume at the old topic's offsets instead of applying
// its reset policy. Each group writes tombstones for the offsets it loses,
// and forgets them once the tombstones are durable, so memory never claims
// less than a restart would replay. It does not wait for the writes and
// returns the number of groups that lost offsets; a failed write is logged
// and leaves the offsets in place (see DeleteOffsetsOfMissingPartitions).
func (c *Coordinator) DeleteTopicOffsets(topics ...string) int {
	return c.purgeOffsets(func(tp topicPartition) bool { return slices.Contains(topics, tp.topic) })
}

// DeleteOffsetsOfMissingPartitions forgets the committed offsets of every
// partition the TopicChecker does not know, durably, as DeleteTopicOffsets
// does. Call it after replaying __consumer_offsets: it finishes the cleanup
// of a topic whose deletion was durable but whose tombstones a crash or a
// failed write lost. It returns the number of groups that lost offsets and
// does nothing when the coordinator has no TopicChecker.
func (c *Coordinator) DeleteOffsetsOfMissingPartitions() int {
	if c.topics == nil {
		return 0
	}
	return c.purgeOffsets(func(tp topicPartition) bool { return !c.topics.PartitionExists(tp.topic, tp.partition) })
}

// purgeOffsets writes tombstones for the committed offsets that match, group
// by group in id order, and forgets each once it is durable.
func (c *Coordinator) purgeOffsets(match func(topicPartition) bool) int {
	if c.closed {
		return 0
	}
	affected := 0
	for _, name := range slices.Clone(c.names) {
		g := c.groups[name]
		if g.state == Dead {
			continue // its deletion is writing tombstones for every offset
		}
		doomed := matchingOffsets(g, match)
		if len(doomed) == 0 {
			continue
		}
		affected++
		records := make([]StoreRecord, 0, len(doomed))
		for _, tp := range doomed {
			records = append(records, StoreRecord{Key: offsetKey(g.name, tp.topic, tp.partition)})
		}
		c.append(g, records, func(err error) { c.onOffsetsPurged(g, doomed, err) })
	}
	return affected
}

// matchingOffsets returns g's committed partitions that match, sorted so
// that the tombstones are written in a deterministic order.
func matchingOffsets(g *group, match func(topicPartition) bool) []topicPartition {
	var doomed []topicPartition
	for tp := range g.offsets { // order-independent: sorted below
		if match(tp) {
			doomed = append(doomed, tp)
		}
	}
	slices.SortFunc(doomed, compareTopicPartitions)
	return doomed
}

func (c *Coordinator) onOffsetsPurged(g *group, doomed []topicPartition, err error) {
	if g.unloaded {
		return
	}
	if err != nil {
		c.log.Warn("cannot delete the offsets of deleted topics", "group", g.name, "partitions", len(doomed), "err", err)
		return
	}
	for _, tp := range doomed {
		delete(g.offsets, tp)
	}
	c.log.Info("deleted the offsets of deleted topics", "group", g.name, "partitions", len(doomed))
	c.removeIfUnused(g)
}
