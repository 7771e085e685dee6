package broker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
)

// Durability: group commit, the high watermark, and the purgatory.
//
// Every append schedules a group-commit sync of its partition (whatever the
// producer's acks), so data never waits for an unrelated producer to ask
// for durability. At most one sync per partition is in flight; batches
// appended meanwhile ride the next one. A sync runs off the loop (core.IO)
// and its completion moves the partition's durable end offset.
//
// In durable mode (the default, as Redpanda's write caching off) the high
// watermark is the durable end offset: consumers see only synced data, and
// acks=all is answered once the high watermark passes the batch. In caching
// mode (log.write.caching=true) the high watermark is the written log end:
// acks=all is answered after the write, like acks=1, and a power loss may
// take acknowledged and consumed records away. acks=1 is answered after the
// write in both modes. docs/durability.md states each promise.
//
// The purgatory is the list of callbacks waiting for a partition's high
// watermark to reach an offset (durableWaiter); acks=all produce requests
// and __consumer_offsets writes wait there. Replication will reuse it with
// a different definition of the high watermark.

// produceTimeoutMsMax bounds how long an acks=all produce may wait in the
// purgatory, whatever the request asks for.
const produceTimeoutMsMax = 5 * 60 * 1000

// durableWaiter is one callback waiting until the partition's high
// watermark reaches endOffset (the offset after the batch it waits for).
type durableWaiter struct {
	endOffset int64
	done      func(error)
}

// newIO returns the node's IO, running work inline when the environment has
// none.
func newIO(env core.Env) core.IO {
	if env.IO != nil {
		return env.IO
	}
	return core.InlineIO{Clock: env.Clock}
}

// writeCaching reports whether the high watermark is the written log end
// rather than the durable one.
func (p *partition) writeCaching() bool { return p.node.writeCaching }

// highWatermark is the offset below which records are committed, and so
// visible to consumers and promised by acks=all. A standalone broker is
// its partitions' whole ISR: the high watermark is the durable end offset
// in durable mode and the log end offset in caching mode. In cluster mode
// it is the replication's (replica.go).
func (p *partition) highWatermark() int64 {
	if p.replicated() {
		return p.repl.highWatermark
	}
	if p.writeCaching() || planted.Is("ack-before-sync") {
		return p.log.LogEndOffset()
	}
	return p.log.DurableEndOffset()
}

// committedEnd is the offset the purgatory's waiters wait for: the durable
// end on a standalone broker; in cluster mode also the high watermark, so
// that an acks=all write or a committed offset is on every ISR member and
// durable on the leader.
func (p *partition) committedEnd() int64 {
	if p.replicated() {
		return min(p.repl.highWatermark, p.log.DurableEndOffset())
	}
	return p.log.DurableEndOffset()
}

// afterAppend runs after every successful append, given the durable end
// offset before it: it schedules the group commit, completes durability
// waiters if a sync that log.flush.interval.messages forced inline moved
// the durable end, and lets parked fetches look again if the high
// watermark moved (caching mode, or that inline sync).
func (p *partition) afterAppend(durableBefore int64) {
	p.scheduleSync()
	switch {
	case p.log.DurableEndOffset() > durableBefore:
		p.durableAdvanced()
	case p.replicated() && p.writeCaching():
		p.advanceHighWatermark()
	case p.writeCaching():
		p.highWatermarkAdvanced()
	}
	if p.replicated() {
		// Followers' fetches wait for the log end, not the high watermark.
		p.wakeWaiters()
	}
}

// scheduleSync starts a group-commit sync unless one is in flight or
// nothing is unsynced.
func (p *partition) scheduleSync() {
	if p.closed || p.offline != nil || p.log == nil {
		return
	}
	job := p.log.StartSync()
	if job == nil {
		return
	}
	started := p.node.syncStarted()
	p.node.io.Submit(job.Run, func(err error) {
		p.node.syncFinished(started)
		if p.closed {
			return
		}
		before := p.log.DurableEndOffset()
		if err := p.log.FinishSync(job, err); err != nil {
			p.storageFailure("sync", err)
			return
		}
		if p.log.DurableEndOffset() > before {
			p.durableAdvanced()
		}
		// Whatever was appended while the job ran is the next group.
		p.scheduleSync()
	})
}

// whenDurable calls done once the log is durable up to endOffset (at once
// if it is), or with an error if the partition goes away or fails first.
// In durable mode this is waiting for the high watermark; in cluster mode
// it waits for committedEnd.
func (p *partition) whenDurable(endOffset int64, done func(error)) {
	assert(endOffset <= p.log.LogEndOffset(), "waiting for offsets that were never appended")
	if endOffset <= p.committedEnd() {
		done(nil)
		return
	}
	if p.closed {
		done(fmt.Errorf("%w: %s is closed", kerr.NotLeaderForPartition, p))
		return
	}
	p.durableWaiters = append(p.durableWaiters, durableWaiter{endOffset: endOffset, done: done})
}

// failInOrder calls done(err) after every waiter already registered has
// completed, so that a failure never overtakes the completions before it.
// The new waiter waits for the highest offset any of them waits for, so it
// completes with or after the last of them.
func (p *partition) failInOrder(err error, done func(error)) {
	if len(p.durableWaiters) == 0 {
		done(err)
		return
	}
	last := int64(0)
	for _, w := range p.durableWaiters {
		last = max(last, w.endOffset)
	}
	p.durableWaiters = append(p.durableWaiters, durableWaiter{endOffset: last, done: func(error) { done(err) }})
}

// durableAdvanced completes the waiters the new durable end satisfies, in
// the order of the offsets they wait for, the first to wait first among
// equals (so one group's offset commits complete in the order they were
// appended), then announces the high watermark.
//
// The order is the offsets', not the waiting's: an append that rolls a
// segment syncs the old one inline, which may complete a waiter whose
// callback appends again, and that nested append starts waiting before the
// outer one does (sim seeds 602224 and 603343: "Store completed append
// 301 after 299"). The waiters still due stay at the front of the list
// while one completes, so that a failure reported at once behind them
// (failInOrder) cannot overtake them.
func (p *partition) durableAdvanced() {
	if p.replicated() {
		switch p.repl.role {
		case roleLeader:
			p.advanceHighWatermark()
		case roleFollower:
			p.node.cluster.fetchAgain(p)
		}
	}
	p.completeWaiters()
	if !p.replicated() {
		p.highWatermarkAdvanced()
	}
}

// completeWaiters completes the waiters committedEnd satisfies, in the
// order described at durableAdvanced.
func (p *partition) completeWaiters() {
	durable := p.committedEnd()
	// Due waiters first, by offset; the others after, as they came.
	slices.SortStableFunc(p.durableWaiters, func(a, b durableWaiter) int {
		aDue, bDue := a.endOffset <= durable, b.endOffset <= durable
		switch {
		case aDue && bDue:
			return cmp.Compare(a.endOffset, b.endOffset)
		case aDue:
			return -1
		case bDue:
			return 1
		}
		return 0
	})
	for len(p.durableWaiters) > 0 && p.durableWaiters[0].endOffset <= durable {
		w := p.durableWaiters[0]
		p.durableWaiters = p.durableWaiters[1:]
		w.done(nil)
	}
}

// highWatermarkAdvanced checks the high watermark's invariants and lets
// parked fetches look again.
func (p *partition) highWatermarkAdvanced() {
	hw := p.highWatermark()
	assert(p.log.LogStartOffset() <= hw && hw <= p.log.LogEndOffset(), "high watermark outside the log")
	assert(hw >= p.highWatermarkSeen, "high watermark moved backwards")
	if hw == p.highWatermarkSeen {
		return
	}
	p.highWatermarkSeen = hw
	p.wakeWaiters()
}

// failDurableWaiters answers every waiter with err (the partition is
// closing or its log failed).
//
// The waiters not answered yet stay in the list while one is answered, as
// in durableAdvanced: an answer may run the next request of its connection
// at once, whose append may fail, and that failure (failInOrder) must queue
// behind them rather than overtake them (sim seed 2002983: "Store completed
// append 57 after 55").
func (p *partition) failDurableWaiters(err error) {
	for len(p.durableWaiters) > 0 {
		w := p.durableWaiters[0]
		p.durableWaiters = p.durableWaiters[1:]
		w.done(err)
	}
}

// produceWaiter is an acks=all produce request parked until every
// partition it wrote is durable, or its timeout passes. States: parked and
// done (answered or withdrawn; terminal).
type produceWaiter struct {
	node    *Node
	request *request
	resp    *kmsg.ProduceResponse
	pending int
	timer   core.Timer
	done    bool
	// waiting holds the response partitions still waiting, so that a
	// timeout can mark them.
	waiting []*kmsg.ProduceResponseTopicPartition
}

// parkProduce answers resp once every partition in waits is durable.
func (n *Node) parkProduce(r *request, resp *kmsg.ProduceResponse, timeoutMs int32, waits []produceWait) {
	w := &produceWaiter{node: n, request: r, resp: resp, pending: len(waits)}
	for _, wait := range waits {
		w.waiting = append(w.waiting, wait.response)
	}
	timeout := time.Duration(min(max(int64(timeoutMs), 0), produceTimeoutMsMax)) * time.Millisecond
	w.timer = n.env.Clock.AfterFunc(timeout, w.expire)
	r.conn.park(w.withdraw)
	// Its appends are done and it only waits for durability: the
	// connection's next Produce may start and join the same group commit
	// (conn.go, rule 2). Set before whenDurable, which may answer at once.
	r.pipelined = true
	n.metrics.producePurgatory++
	for i, wait := range waits {
		wait.partition.whenDurable(wait.endOffset, func(err error) { w.partitionDone(i, err) })
	}
}

// produceWait is one partition of a produce request that waits.
type produceWait struct {
	partition *partition
	endOffset int64
	response  *kmsg.ProduceResponseTopicPartition
}

func (w *produceWaiter) partitionDone(i int, err error) {
	if w.done || w.waiting[i] == nil {
		return
	}
	if err != nil {
		sp := w.waiting[i]
		setError(&sp.ErrorCode, &sp.ErrorMessage, err)
		sp.BaseOffset = -1
	}
	w.waiting[i] = nil
	w.pending--
	if w.pending == 0 {
		w.answer()
	}
}

// expire answers with REQUEST_TIMED_OUT for the partitions still waiting:
// for the producer their writes are indefinite (they may yet become
// durable), as in Kafka's DelayedProduce.
func (w *produceWaiter) expire() {
	if w.done {
		return
	}
	for _, sp := range w.waiting {
		if sp != nil {
			err := fmt.Errorf("%w: the write is not durable yet", kerr.RequestTimedOut)
			setError(&sp.ErrorCode, &sp.ErrorMessage, err)
			sp.BaseOffset = -1
		}
	}
	w.node.log.Debug("produce timed out in the purgatory", slog.Int("partitions", w.pending))
	w.answer()
}

func (w *produceWaiter) answer() {
	w.withdraw()
	w.request.respond(w.resp)
}

// withdraw makes the waiter inert; it runs on answer and when the
// connection closes first. Its callbacks stay registered on the partitions
// until the high watermark passes them, and then do nothing.
func (w *produceWaiter) withdraw() {
	if w.done {
		return
	}
	w.done = true
	w.timer.Stop()
	w.node.metrics.producePurgatory--
}

// checkpointRecoveryPoints writes the recovery point checkpoint of every
// partition whose durable end moved since its last one. A full disk leaves
// the old checkpoint, which is safe (recovery then reads more); any other
// failure fails the log like a failed fsync. The same tick scrubs a little
// of every partition (offline.go).
//
// The walk goes a chunk of partitions per loop turn (eachPartitionInChunks),
// so many partitions never hold the loop; a tick that finds the previous
// walk still going skips.
func (c *catalog) checkpointRecoveryPoints() {
	if c.checkpointWalking {
		return
	}
	c.checkpointWalking = true
	c.eachPartitionInChunks(func(p *partition) {
		if p.offline != nil || p.log == nil {
			return
		}
		if err := p.log.CheckpointRecoveryPoint(); err != nil && !errors.Is(err, core.ErrNoSpace) {
			p.storageFailure("checkpoint", err)
		}
		p.scrubOnce()
	}, func() { c.checkpointWalking = false })
}
