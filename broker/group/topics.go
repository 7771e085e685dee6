package group

import (
	"slices"
)

// DeleteTopicOffsets forgets, in every group, the committed offsets of the
// given topics, as Kafka's GroupMetadataManager.cleanupGroupMetadata does
// when a topic is deleted: without it, a group reading a topic deleted and
// created again would resume at the old topic's offsets instead of applying
// its reset policy. Each group writes tombstones for the offsets it loses,
// commits still being stored included, and forgets them once the
// tombstones are durable, so memory never claims less than a restart would
// replay. done is called once, when every tombstone write has completed
// (at once when there is nothing to delete); a failed write is logged and
// leaves that group's offsets in place (see
// DeleteOffsetsOfMissingPartitions). It returns the number of groups that
// lose offsets. done must not call back into the Coordinator.
func (c *Coordinator) DeleteTopicOffsets(topics []string, done func()) int {
	return c.purgeOffsets(func(tp topicPartition) bool { return slices.Contains(topics, tp.topic) }, done)
}

// DeleteOffsetsOfMissingPartitions forgets the committed offsets of every
// partition the TopicChecker does not know, durably, as DeleteTopicOffsets
// does. Call it after replaying __consumer_offsets: it finishes the cleanup
// of a topic whose deletion was durable but whose tombstones a crash or a
// failed write lost. It returns the number of groups that lose offsets and
// calls done as DeleteTopicOffsets does; without a TopicChecker it deletes
// nothing.
func (c *Coordinator) DeleteOffsetsOfMissingPartitions(done func()) int {
	if c.topics == nil {
		done()
		return 0
	}
	return c.purgeOffsets(func(tp topicPartition) bool { return !c.topics.PartitionExists(tp.topic, tp.partition) }, done)
}

// purgeOffsets writes tombstones for the committed offsets that match, group
// by group in id order, forgets each once it is durable, and calls done
// when every write has completed.
func (c *Coordinator) purgeOffsets(match func(topicPartition) bool, done func()) int {
	type purge struct {
		g      *group
		doomed []topicPartition
	}
	var purges []purge
	for _, name := range c.names {
		g := c.groups[name]
		if c.closed || g.state == Dead {
			continue // a Dead group's deletion tombstones every offset
		}
		if doomed := matchingOffsets(g, match); len(doomed) > 0 {
			purges = append(purges, purge{g, doomed})
		}
	}
	outstanding := len(purges)
	if outstanding == 0 {
		done()
		return 0
	}
	for _, p := range purges {
		records := make([]StoreRecord, 0, len(p.doomed))
		for _, tp := range p.doomed {
			records = append(records, StoreRecord{Key: offsetKey(p.g.name, tp.topic, tp.partition)})
		}
		c.append(p.g, records, func(err error) {
			c.onOffsetsPurged(p.g, p.doomed, err)
			if outstanding--; outstanding == 0 {
				done()
			}
		})
	}
	return len(purges)
}

// matchingOffsets returns the partitions of g that match and have a
// committed offset or a commit being stored, sorted so that the tombstones
// are written in a deterministic order.
func matchingOffsets(g *group, match func(topicPartition) bool) []topicPartition {
	var doomed []topicPartition
	for tp := range g.offsets { // order-independent: sorted below
		if match(tp) {
			doomed = append(doomed, tp)
		}
	}
	for tp := range g.committing { // order-independent: sorted below
		if _, committed := g.offsets[tp]; !committed && match(tp) {
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
