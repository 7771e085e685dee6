package broker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Work across many partitions runs in chunks on the event loop, so that
// other clients are served between two chunks. Found by hand: creating a
// topic of 10,000 partitions held the loop for 17 s (75 s on a busy
// machine), every client saw "cannot reach any broker", and the tool
// reported a failure although the topic was created.
//
// A chunk ends after chunkPartitionsMax partitions or once chunkBudget has
// passed on the node's clock, whichever comes first; the next chunk is a
// timer of 0, which runs after everything already waiting on the loop. The
// simulator's clock does not move inside a callback, so there the count
// alone decides, and runs stay deterministic.
const (
	chunkBudget        = 10 * time.Millisecond
	chunkPartitionsMax = 32
)

// chunk tracks one chunk of work: call more after each unit of work.
type chunk struct {
	clockStart time.Time
	done       int
}

func (c *catalog) startChunk() chunk { return chunk{clockStart: c.node.now()} }

// more counts one unit of work and reports whether the chunk may go on.
func (k *chunk) more(c *catalog) bool {
	k.done++
	return k.done < chunkPartitionsMax && c.node.now().Sub(k.clockStart) < chunkBudget
}

// later runs f on a later turn of the loop, unless the node stopped.
func (c *catalog) later(f func()) {
	c.node.env.Clock.AfterFunc(0, func() {
		if !c.node.stopped {
			f()
		}
	})
}

// creation is a topic whose partitions are being created across loop
// turns. It is invisible to clients (not in catalog.topics) until every
// partition exists and the catalog naming it is durable; its name and id
// are taken meanwhile. Once it needs a second turn, an intent naming it is
// saved in the catalog file (catalogTopic.Creating), so that startup after a
// crash removes its partial directories as it finishes a deletion, instead
// of setting thousands of empty directories aside.
type creation struct {
	topic *topic
	count int32
	// intentSaved is set once the creation intent is in the catalog file
	// (or being written to it).
	intentSaved bool
	done        func(*topic, error)
}

// createInChunks creates a topic like create, a chunk of partitions per
// loop turn, and calls done on the loop turn that finishes it, with the
// topic or an error wrapping a Kafka error code. Validation errors call
// done before createInChunks returns.
func (c *catalog) createInChunks(name string, partitions int32, overrides map[string]string, done func(*topic, error)) {
	if err := c.validateCreate(name, partitions, overrides); err != nil {
		done(nil, err)
		return
	}
	cr := &creation{topic: c.newTopic(name, overrides), count: partitions, done: done}
	c.creating = append(c.creating, cr)
	c.continueCreation(cr)
}

// continueCreation opens the next chunk of partitions of cr, and either
// schedules the next chunk or finishes.
func (c *catalog) continueCreation(cr *creation) {
	t := cr.topic
	k := c.startChunk()
	for i := int32(len(t.partitions)); i < cr.count; i++ {
		p, err := openPartition(c.node, t, i)
		if err != nil {
			c.abandonCreation(cr, fmt.Errorf("%w: creating partition %d: %v", kerr.KafkaStorageError, i, err))
			return
		}
		t.partitions = append(t.partitions, p)
		if i+1 < cr.count && !k.more(c) {
			if err := c.saveCreationIntent(cr); err != nil {
				c.abandonCreation(cr, err)
				return
			}
			c.later(func() { c.continueCreation(cr) })
			return
		}
	}
	c.finishCreation(cr)
}

// saveCreationIntent makes the creation intent durable, once.
func (c *catalog) saveCreationIntent(cr *creation) error {
	if cr.intentSaved {
		return nil
	}
	cr.intentSaved = true
	if err := c.save(); err != nil {
		cr.intentSaved = false
		return fmt.Errorf("%w: saving the topic catalog: %v", kerr.KafkaStorageError, err)
	}
	return nil
}

// finishCreation makes every partition of cr durable, then the catalog
// naming the topic, and only then shows the topic to clients.
func (c *catalog) finishCreation(cr *creation) {
	t := cr.topic
	// The partition directories must be durable before the catalog names
	// them; otherwise a crash could leave a named partition without files.
	if err := c.node.env.FS.SyncDir(c.node.cfg.LogDir); err != nil {
		c.abandonCreation(cr, fmt.Errorf("%w: %v", kerr.KafkaStorageError, err))
		return
	}
	c.forgetCreation(cr)
	c.topics[t.name] = t
	c.byID[t.id] = t
	if err := c.save(); err != nil {
		delete(c.topics, t.name)
		delete(c.byID, t.id)
		c.creating = append(c.creating, cr)
		c.abandonCreation(cr, fmt.Errorf("%w: saving the topic catalog: %v", kerr.KafkaStorageError, err))
		return
	}
	c.node.log.Info("created topic", slog.String("topic", t.name), slog.Int("partitions", int(cr.count)))
	cr.done(t, nil)
}

// abandonCreation removes what cr created and reports err. When the
// creation intent may be in the catalog file, it becomes a deletion intent
// (which keeps the name taken until the files are gone, so that a later
// topic of the same name never meets the removal at startup).
func (c *catalog) abandonCreation(cr *creation, err error) {
	c.forgetCreation(cr)
	c.discardPartitions(cr.topic, 0)
	if cr.intentSaved {
		entry := cr.topic.entry()
		entry.Partitions, entry.Deleting = cr.count, true
		c.deleting = append(c.deleting, entry)
		if err := c.finishDeletions(); err != nil {
			c.node.log.Warn("cannot finish removing an abandoned topic creation", slog.String("topic", cr.topic.name), slog.Any("err", err))
		}
	}
	cr.done(nil, err)
}

func (c *catalog) forgetCreation(cr *creation) {
	for i, other := range c.creating {
		if other == cr {
			c.creating = append(c.creating[:i], c.creating[i+1:]...)
			return
		}
	}
}

// creationIntents are the catalog file's records of the creations whose
// intent is saved.
func (c *catalog) creationIntents() []catalogTopic {
	var entries []catalogTopic
	for _, cr := range c.creating {
		if cr.intentSaved {
			entry := cr.topic.entry()
			entry.Partitions, entry.Creating = cr.count, true
			entries = append(entries, entry)
		}
	}
	return entries
}

// closeCreations removes the partitions of creations in progress when the
// node stops: they hold no data, and no client was told they exist.
func (c *catalog) closeCreations() {
	for len(c.creating) > 0 {
		c.abandonCreation(c.creating[0], fmt.Errorf("%w: the broker is shutting down", kerr.RequestTimedOut))
	}
}

// creatingName reports whether a topic of that name is being created.
func (c *catalog) creatingName(name string) bool {
	for _, cr := range c.creating {
		if cr.topic.name == name {
			return true
		}
	}
	return false
}

// idTaken reports whether a topic, live or being created, has id.
func (c *catalog) idTaken(id [16]byte) bool {
	if c.byID[id] != nil {
		return true
	}
	for _, cr := range c.creating {
		if cr.topic.id == id {
			return true
		}
	}
	return false
}

// growth is a CreatePartitions under way across loop turns: the new
// partitions are opened aside and join the topic together, once they all
// exist and the catalog naming them is durable. A crash meanwhile leaves
// directories the catalog does not name, which startup sets aside.
type growth struct {
	topic  *topic
	count  int32
	opened []*partition
	done   func(error)
}

// addPartitionsInChunks grows a topic to count partitions
// (CreatePartitions), a chunk per loop turn, and calls done on the turn
// that finishes, with nil or an error wrapping a Kafka error code.
func (c *catalog) addPartitionsInChunks(t *topic, count int32, done func(error)) {
	have := int32(len(t.partitions))
	switch {
	case t.growth != nil:
		done(fmt.Errorf("%w: topic %q is already growing to %d partitions", kerr.InvalidPartitions, t.name, t.growth.count))
		return
	case count <= have:
		done(fmt.Errorf("%w: topic %q has %d partitions, cannot go to %d", kerr.InvalidPartitions, t.name, have, count))
		return
	case count > partitionsPerTopicMax:
		done(fmt.Errorf("%w: %d partitions exceeds %d", kerr.InvalidPartitions, count, partitionsPerTopicMax))
		return
	}
	t.growth = &growth{topic: t, count: count, done: done}
	c.continueGrowth(t.growth)
}

// continueGrowth opens the next chunk of partitions of g, and either
// schedules the next chunk or finishes.
func (c *catalog) continueGrowth(g *growth) {
	t := g.topic
	if t.growth != g {
		return // abandoned: the topic was deleted
	}
	k := c.startChunk()
	for i := int32(len(t.partitions) + len(g.opened)); i < g.count; i++ {
		p, err := openPartition(c.node, t, i)
		if err != nil {
			c.abandonGrowth(g, fmt.Errorf("%w: creating partition %d: %v", kerr.KafkaStorageError, i, err))
			return
		}
		g.opened = append(g.opened, p)
		if i+1 < g.count && !k.more(c) {
			c.later(func() { c.continueGrowth(g) })
			return
		}
	}
	if err := c.node.env.FS.SyncDir(c.node.cfg.LogDir); err != nil {
		c.abandonGrowth(g, fmt.Errorf("%w: %v", kerr.KafkaStorageError, err))
		return
	}
	have := int32(len(t.partitions))
	t.partitions = append(t.partitions, g.opened...)
	if err := c.save(); err != nil {
		t.partitions = t.partitions[:have]
		c.abandonGrowth(g, fmt.Errorf("%w: saving the topic catalog: %v", kerr.KafkaStorageError, err))
		return
	}
	t.growth = nil
	g.done(nil)
}

// abandonGrowth removes the partitions g opened and reports err.
func (c *catalog) abandonGrowth(g *growth, err error) {
	g.topic.growth = nil
	c.discard(g.topic, g.opened)
	g.opened = nil
	g.done(err)
}

// eachPartitionInChunks calls fn for every open partition of every topic,
// in topic name order, a chunk per loop turn, then done. Partitions closed
// meanwhile (their topic deleted) are skipped; topics created meanwhile wait
// for the next walk.
func (c *catalog) eachPartitionInChunks(fn func(*partition), done func()) {
	var partitions []*partition
	for _, t := range c.sorted() {
		partitions = append(partitions, t.partitions...)
	}
	var step func()
	step = func() {
		k := c.startChunk()
		for len(partitions) > 0 {
			if c.node.stopped {
				// A halted or stopped node touches no file again: only a
				// restart's recovery may.
				break
			}
			p := partitions[0]
			partitions = partitions[1:]
			if p.closed {
				continue
			}
			fn(p)
			if len(partitions) > 0 && !k.more(c) {
				c.later(step)
				return
			}
		}
		done()
	}
	step()
}
