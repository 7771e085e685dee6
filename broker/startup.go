package broker

import (
	"fmt"
	"log/slog"
)

// Startup with many partitions.
//
// New opens (and recovers) the internal topics and at most
// startupPartitionsMax other partitions; every other partition is a
// placeholder, loading, with no log. Start listens first and then opens
// the placeholders a chunk per loop turn (eachPartitionInChunks: 32
// partitions or 10 ms), so that clients are served, Metadata included, while
// a broker with tens of thousands of partitions recovers. A loading
// partition is invisible to the handlers (catalog.partition returns nil),
// shown by Metadata without a leader (LEADER_NOT_AVAILABLE, as Kafka shows
// a partition whose leader is not ready), and skipped by every periodic
// walk. A partition that fails to open with a disk error halts the node,
// as a failed open in New fails the start.

// startupPartitionsMaxDefault is how many partitions New opens before the
// node serves: enough that a small broker opens everything at once, as
// before, few enough that a large one starts serving within a second or
// so. It is a variable only so that tests can lower it.
var startupPartitionsMaxDefault = 1000

// newLoadingPartition is the placeholder of a partition that opens after
// Start.
func newLoadingPartition(n *Node, t *topic, index int32) *partition {
	return &partition{node: n, topic: t, index: index, dir: partitionDir(n.cfg.LogDir, t.name, index), loading: true}
}

// openLoadingPartitions opens every placeholder, a chunk per loop turn.
func (c *catalog) openLoadingPartitions() {
	loading := 0
	for _, t := range c.sorted() {
		for _, p := range t.partitions {
			if p.loading {
				loading++
			}
		}
	}
	if loading == 0 {
		return
	}
	c.node.log.Info("opening partitions while serving", slog.Int("opened", c.openedAtStart), slog.Int("loading", loading))
	c.eachPartitionInChunks(func(p *partition) {
		if !p.loading || c.node.stopped {
			return
		}
		opened, err := openPartition(c.node, p.topic, p.index)
		if err != nil {
			c.node.halt(fmt.Errorf("opening %s after start: %w", p, err))
			return
		}
		p.adopt(opened)
	}, func() {
		if !c.node.stopped {
			c.node.log.Info("every partition is open", slog.Int("partitions", loading+c.openedAtStart))
		}
	})
}

// adopt takes over the state of opened, the same partition opened now,
// so that references to the placeholder (the topic's slice) stay valid.
func (p *partition) adopt(opened *partition) {
	assert(p.loading && p.topic == opened.topic && p.index == opened.index, "adopting another partition")
	waiters := p.waiters
	*p = *opened
	p.waiters = waiters
}
