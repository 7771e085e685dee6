package broker

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
)

// fetchWaitMsMax bounds how long a fetch may be parked, whatever the client
// asks for.
const fetchWaitMsMax = 60_000

// handleFetch answers Fetch (key 1), versions 4-15.
//
// Fetch sessions (KIP-227) are not created: the response carries session id
// 0, which tells clients to keep sending full fetch requests; a request that
// names a session gets FETCH_SESSION_ID_NOT_FOUND. Reads stop at the high
// watermark. The response respects MaxBytes and each partition's
// PartitionMaxBytes, except that the first batch of the first partition with
// data is returned whole, so that consumers make progress (KIP-74). When less
// than MinBytes is available the request is parked until a partition it reads
// grows or MaxWaitMillis passes (long polling). From version 13 topics are
// named by id; an id this broker does not know gets UNKNOWN_TOPIC_ID.
//
// A Fetch from a follower (a replica id, in ReplicaState from version 15)
// reads up to the log end rather than the high watermark, records the
// follower's progress (replica.go), and answers a follower whose last
// fetched epoch shows a diverged log with a DivergingEpoch instead of data
// (fetchReplicaPartition).
func handleFetch(n *Node, r *request, req kmsg.Request) {
	fr := req.(*kmsg.FetchRequest)
	if fr.Version >= 7 && fr.SessionID != 0 {
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		r.respond(resp)
		return
	}
	n.resolveFetchTopics(fr)
	built := n.buildFetch(r, fr, true)
	waitMs := min(int64(fr.MaxWaitMillis), fetchWaitMsMax)
	if built.final || int64(built.bytes) >= int64(fr.MinBytes) || waitMs <= 0 {
		r.respondFetch(built)
		return
	}
	r.conn.returnFrame(built.frame, built.slot)
	w := &fetchWaiter{node: n, request: r, fetch: fr, bytes: int64(built.bytes), replica: fetchReplicaID(fr) >= 0}
	w.park(time.Duration(waitMs) * time.Millisecond)
}

// fetchReplicaID is the broker id of a follower's Fetch, or -1 for a
// consumer's.
func fetchReplicaID(fr *kmsg.FetchRequest) int32 {
	if fr.Version >= 15 {
		return fr.ReplicaState.ID
	}
	return fr.ReplicaID
}

// resolveFetchTopics fills in the names of the topics a Fetch from version
// 13 names by id; an unknown id leaves the name empty.
func (n *Node) resolveFetchTopics(fr *kmsg.FetchRequest) {
	if fr.Version < fetchTopicIDVersionMin {
		return
	}
	for i := range fr.Topics {
		if t := n.catalog.byID[fr.Topics[i].TopicID]; t != nil {
			fr.Topics[i].Topic = t.name
		}
	}
}

// fetchResult is a Fetch response encoded into its frame (fetch_frame.go).
type fetchResult struct {
	frame []byte
	// slot is the connection's frame slot that frame came from, or -1
	// for a frame of its own (see conn.takeFrame).
	slot int
	// bytes counts the record bytes of every partition.
	bytes int
	// final is true when an error makes waiting pointless.
	final bool
}

// buildFetch reads every requested partition straight into a response
// frame of the request's connection. What the response holds for the
// metrics (error codes, records and bytes per topic) is left in the
// connection's fetchStats, for respondFetch. fresh is set on the request's
// first reading (not a parked fetch's next), the one whose offsets a
// follower's progress is taken from.
func (n *Node) buildFetch(r *request, fr *kmsg.FetchRequest, fresh bool) fetchResult {
	c := r.conn
	buf, slot := c.takeFrame()
	stats := &c.fetchStats
	stats.reset()
	budget := int(fr.MaxBytes)
	if fr.Version < 3 || budget <= 0 {
		budget = int(n.cfg.RequestBytesMax)
	}
	var f fetchFrame
	f.begin(buf, fr.Version, r.header.correlationID, 0, len(fr.Topics))
	bytes, final := 0, false
	replica := replicaFetch{id: fetchReplicaID(fr), brokerEpoch: fr.ReplicaState.Epoch, fresh: fresh}
	for _, rt := range fr.Topics {
		f.beginTopic(rt.Topic, rt.TopicID, len(rt.Partitions))
		var topicMessages, topicBytes int64
		for _, rp := range rt.Partitions {
			p := n.catalog.partition(rt.Topic, rp.Partition)
			var size int
			var messages int64
			var code int16
			switch {
			case fr.Version >= fetchTopicIDVersionMin && rt.Topic == "":
				code = kerr.UnknownTopicID.Code
				f.beginPartitionError(rp.Partition, code)
			case p == nil:
				code = errorCode(n.missingPartition(rt.Topic, rp.Partition))
				f.beginPartitionError(rp.Partition, code)
			case replica.id >= 0:
				size, messages, code = fetchReplicaPartition(&f, p, rp, replica, min(budget-bytes, int(rp.PartitionMaxBytes)), bytes == 0)
			default:
				size, messages, code = appendFetchPartition(&f, p, rp, min(budget-bytes, int(rp.PartitionMaxBytes)), bytes == 0)
			}
			if code != 0 {
				stats.errorCodes = append(stats.errorCodes, code)
				final = true
			}
			bytes += size
			topicMessages += messages
			topicBytes += int64(size)
		}
		f.endTopic()
		if topicBytes > 0 {
			stats.topics = append(stats.topics, fetchTopicStats{topic: rt.Topic, messages: topicMessages, bytes: topicBytes})
		}
	}
	return fetchResult{frame: f.end(), slot: slot, bytes: bytes, final: final}
}

// appendFetchPartition appends one partition of the response: its header,
// then up to maxBytes of record batches read from the log into the frame
// (at least one batch when first), or an error code with an empty record
// set. It returns the record bytes and records appended and the error code.
func appendFetchPartition(f *fetchFrame, p *partition, rp kmsg.FetchRequestTopicPartition, maxBytes int, first bool,
) (size int, messages int64, code int16) {
	partitionAt := len(f.buf)
	header, err := fetchPartitionState(p, rp)
	if err == nil {
		maxBytes = max(maxBytes, 0)
		prefixAt := f.beginPartition(header, maxBytes)
		reserved := len(f.buf) - prefixAt
		dataAt := len(f.buf)
		f.buf, err = p.readForFetch(rp.FetchOffset, maxBytes, first, p.highWatermark(), f.buf)
		if err == nil {
			size = len(f.buf) - dataAt
			messages = recordsIn(f.buf[dataAt:])
			f.endPartition(prefixAt, reserved, divergingEpoch{})
			return size, messages, 0
		}
		err = p.storageFailure("fetch", err)
	}
	f.buf = f.buf[:partitionAt]
	code = errorCode(err)
	f.beginPartitionError(rp.Partition, code)
	return 0, 0, code
}

// fetchPartitionState checks that the partition can serve the fetch and
// returns the header of its answer.
func fetchPartitionState(p *partition, rp kmsg.FetchRequestTopicPartition) (fetchPartitionHeader, error) {
	if p == nil {
		return fetchPartitionHeader{}, kerr.UnknownTopicOrPartition
	}
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); err != nil {
		return fetchPartitionHeader{}, err
	}
	if p.offline != nil {
		return fetchPartitionHeader{}, p.offlineError()
	}
	start := p.log.LogStartOffset()
	if rp.FetchOffset < start || rp.FetchOffset > p.log.LogEndOffset() {
		return fetchPartitionHeader{}, fmt.Errorf("%w: offset %d", kerr.OffsetOutOfRange, rp.FetchOffset)
	}
	hw := p.highWatermark()
	return fetchPartitionHeader{partition: rp.Partition, highWatermark: hw, lastStable: hw, logStartOffset: start}, nil
}

// checkLeaderEpoch fences requests that carry a stale or future leader epoch
// (KIP-320); -1 means the client does not know the epoch.
func checkLeaderEpoch(p *partition, epoch int32) error {
	switch {
	case epoch == -1 || epoch == p.leaderEpoch:
		return nil
	case epoch < p.leaderEpoch:
		return fmt.Errorf("%w: request epoch %d, leader epoch %d", kerr.FencedLeaderEpoch, epoch, p.leaderEpoch)
	default:
		return fmt.Errorf("%w: request epoch %d, leader epoch %d", kerr.UnknownLeaderEpoch, epoch, p.leaderEpoch)
	}
}

// fetchWaiter is a fetch parked until enough data arrives or its wait ends.
// States: parked (registered on partitions, timer set) and done (answered or
// withdrawn); done is terminal.
type fetchWaiter struct {
	node    *Node
	request *request
	fetch   *kmsg.FetchRequest
	// watched holds, for each partition the fetch reads, its state at the
	// last read, which wake compares to decide cheaply whether reading
	// again may pay off.
	watched []watchedPartition
	// bytes is the record bytes the last read found.
	bytes int64
	// rereads counts the reads wake made (tests check that appends too
	// small to satisfy the fetch cause none).
	rereads int
	timer   core.Timer
	done    bool
	// replica is set for a follower's fetch, which reads up to the log end
	// rather than the high watermark.
	replica bool
}

// watchedPartition is a partition a parked fetch reads, as it was when the
// fetch last read it.
type watchedPartition struct {
	partition     *partition
	sizeBytes     int64
	highWatermark int64
	logEnd        int64
	leaderEpoch   int32
	logStart      int64
	role          replicaRole
}

// visibleEnd is how far the waiter's fetch may read p: the log end for a
// follower, the high watermark for a consumer.
func (w *fetchWaiter) visibleEnd(p *partition) int64 {
	if w.replica {
		return p.log.LogEndOffset()
	}
	return p.highWatermark()
}

func (w *fetchWaiter) park(wait time.Duration) {
	for _, rt := range w.fetch.Topics {
		for _, rp := range rt.Partitions {
			if p := w.node.catalog.partition(rt.Topic, rp.Partition); p != nil {
				p.waiters = append(p.waiters, w)
				w.watched = append(w.watched, watchedPartition{partition: p})
			}
		}
	}
	w.looked()
	w.timer = w.node.env.Clock.AfterFunc(wait, func() { w.finish() })
	w.request.conn.park(w.withdraw)
}

// looked records the state of the watched partitions right after a read.
func (w *fetchWaiter) looked() {
	for i := range w.watched {
		watched := &w.watched[i]
		p := watched.partition
		if p.log == nil {
			continue
		}
		watched.sizeBytes, watched.logEnd, watched.logStart = p.log.Size(), p.log.LogEndOffset(), p.log.LogStartOffset()
		watched.highWatermark, watched.leaderEpoch, watched.role = w.visibleEnd(p), p.leaderEpoch, p.repl.role
	}
}

// wake re-evaluates the fetch after one of its partitions' high watermark
// advanced. Reading every partition again on each advance would cost a
// waiter with a large MinBytes one full read per append (in write-caching
// mode the high watermark moves with every append), so the read runs only
// when it may succeed; see mayBeReady.
func (w *fetchWaiter) wake() {
	if w.done || !w.mayBeReady() {
		return
	}
	w.rereads++
	built := w.node.buildFetch(w.request, w.fetch, false)
	if w.done {
		// Reading found corruption and took a partition offline, which
		// answered every waiter on it, this one too.
		w.request.conn.returnFrame(built.frame, built.slot)
		return
	}
	if built.final || int64(built.bytes) >= int64(w.fetch.MinBytes) {
		w.answer(built)
		return
	}
	w.request.conn.returnFrame(built.frame, built.slot)
	w.bytes = int64(built.bytes)
	w.looked()
}

// mayBeReady reports whether a read may now find MinBytes, or an error.
// What a read can find beyond the last one is bounded by the bytes
// appended since (the growth of the log files), as long as nothing was
// pending above the high watermark at the last read; bytes that were
// pending then and are now below the high watermark have a size that is
// not known here, so their exposure always reads again (in durable mode
// that is once per group-commit sync, not per append). A change of leader
// epoch or log start offset, or a partition closed, offline or shrunk by
// retention, reads again too: the answer may now be an error.
func (w *fetchWaiter) mayBeReady() bool {
	grownBytes := int64(0)
	for i := range w.watched {
		watched := &w.watched[i]
		p := watched.partition
		if p.closed || p.offline != nil || p.log == nil {
			return true
		}
		if p.leaderEpoch != watched.leaderEpoch || p.log.LogStartOffset() != watched.logStart {
			return true
		}
		if p.repl.role != watched.role {
			return true
		}
		hw, size := w.visibleEnd(p), p.log.Size()
		if size < watched.sizeBytes || (hw > watched.highWatermark && watched.highWatermark < watched.logEnd) {
			return true
		}
		if hw > watched.highWatermark {
			grownBytes += size - watched.sizeBytes
		}
	}
	return w.bytes+grownBytes >= int64(w.fetch.MinBytes)
}

// finish answers with whatever is available when the wait ends.
func (w *fetchWaiter) finish() {
	if w.done {
		return
	}
	built := w.node.buildFetch(w.request, w.fetch, false)
	if w.done {
		// Reading found corruption and took a partition offline, which
		// answered every waiter on it, this one too (sim seed 122 with
		// damage at rest: "Fetch answered twice").
		w.request.conn.returnFrame(built.frame, built.slot)
		return
	}
	w.answer(built)
}

// partitionGone answers early when a partition the fetch reads is closed
// (its topic was deleted).
func (w *fetchWaiter) partitionGone() { w.finish() }

func (w *fetchWaiter) answer(built fetchResult) {
	w.withdraw()
	w.request.respondFetch(built)
}

// withdraw unregisters the waiter; it runs on answer and when the
// connection closes first.
func (w *fetchWaiter) withdraw() {
	if w.done {
		return
	}
	w.done = true
	w.timer.Stop()
	for _, watched := range w.watched {
		watched.partition.removeWaiter(w)
	}
	w.watched = nil
}

func (p *partition) removeWaiter(w *fetchWaiter) {
	for i, other := range p.waiters {
		if other == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return
		}
	}
}

// wakeWaiters lets parked fetches on this partition re-check. Waking may
// answer and so unregister waiters, hence the copy.
func (p *partition) wakeWaiters() {
	if len(p.waiters) == 0 {
		return
	}
	waiters := append([]*fetchWaiter(nil), p.waiters...)
	for _, w := range waiters {
		w.wake()
	}
}
