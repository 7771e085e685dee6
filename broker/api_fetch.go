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

// handleFetch answers Fetch (key 1), versions 4-12.
//
// Fetch sessions (KIP-227) are not created: the response carries session id
// 0, which tells clients to keep sending full fetch requests; a request that
// names a session gets FETCH_SESSION_ID_NOT_FOUND. Reads stop at the high
// watermark. The response respects MaxBytes and each partition's
// PartitionMaxBytes, except that the first batch of the first partition with
// data is returned whole, so that consumers make progress (KIP-74). When less
// than MinBytes is available the request is parked until a partition it reads
// grows or MaxWaitMillis passes (long polling).
func handleFetch(n *Node, r *request, req kmsg.Request) {
	fr := req.(*kmsg.FetchRequest)
	if fr.Version >= 7 && fr.SessionID != 0 {
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		r.respond(resp)
		return
	}
	resp, bytes, final := n.buildFetch(fr)
	waitMs := min(int64(fr.MaxWaitMillis), fetchWaitMsMax)
	if final || int64(bytes) >= int64(fr.MinBytes) || waitMs <= 0 {
		r.respond(resp)
		return
	}
	w := &fetchWaiter{node: n, request: r, fetch: fr}
	w.park(time.Duration(waitMs) * time.Millisecond)
}

// buildFetch reads every requested partition. final is true when an error
// makes waiting pointless.
func (n *Node) buildFetch(fr *kmsg.FetchRequest) (resp *kmsg.FetchResponse, bytes int, final bool) {
	resp = fr.ResponseKind().(*kmsg.FetchResponse)
	budget := int(fr.MaxBytes)
	if fr.Version < 3 || budget <= 0 {
		budget = int(n.cfg.RequestBytesMax)
	}
	for _, rt := range fr.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			p := n.catalog.partition(rt.Topic, rp.Partition)
			err := n.fetchPartition(fr, p, rp, &sp, min(budget-bytes, int(rp.PartitionMaxBytes)), bytes == 0)
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				sp.RecordBatches = []byte{}
				final = true
			}
			bytes += len(sp.RecordBatches)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, bytes, final
}

func (n *Node) fetchPartition(fr *kmsg.FetchRequest, p *partition, rp kmsg.FetchRequestTopicPartition,
	sp *kmsg.FetchResponseTopicPartition, maxBytes int, first bool,
) error {
	if p == nil {
		return kerr.UnknownTopicOrPartition
	}
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); err != nil {
		return err
	}
	hw := p.highWatermark()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, p.log.LogStartOffset()
	if rp.FetchOffset < p.log.LogStartOffset() || rp.FetchOffset > p.log.LogEndOffset() {
		return fmt.Errorf("%w: offset %d", kerr.OffsetOutOfRange, rp.FetchOffset)
	}
	data, err := p.read(rp.FetchOffset, max(maxBytes, 0), first, nil)
	if err != nil {
		return p.storageFailure("fetch", err)
	}
	if data == nil {
		data = []byte{} // null record bytes read as a size of -1 by librdkafka
	}
	sp.RecordBatches = data
	return nil
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
	node       *Node
	request    *request
	fetch      *kmsg.FetchRequest
	partitions []*partition
	timer      core.Timer
	done       bool
}

func (w *fetchWaiter) park(wait time.Duration) {
	for _, rt := range w.fetch.Topics {
		for _, rp := range rt.Partitions {
			if p := w.node.catalog.partition(rt.Topic, rp.Partition); p != nil {
				p.waiters = append(p.waiters, w)
				w.partitions = append(w.partitions, p)
			}
		}
	}
	w.timer = w.node.env.Clock.AfterFunc(wait, func() { w.finish() })
	w.request.conn.park(w.withdraw)
}

// wake re-evaluates the fetch after one of its partitions grew.
func (w *fetchWaiter) wake() {
	if w.done {
		return
	}
	resp, bytes, final := w.node.buildFetch(w.fetch)
	if final || int64(bytes) >= int64(w.fetch.MinBytes) {
		w.answer(resp)
	}
}

// finish answers with whatever is available when the wait ends.
func (w *fetchWaiter) finish() {
	if w.done {
		return
	}
	resp, _, _ := w.node.buildFetch(w.fetch)
	w.answer(resp)
}

// partitionGone answers early when a partition the fetch reads is closed
// (its topic was deleted).
func (w *fetchWaiter) partitionGone() { w.finish() }

func (w *fetchWaiter) answer(resp *kmsg.FetchResponse) {
	w.withdraw()
	w.request.respond(resp)
}

// withdraw unregisters the waiter; it runs on answer and when the
// connection closes first.
func (w *fetchWaiter) withdraw() {
	if w.done {
		return
	}
	w.done = true
	w.timer.Stop()
	for _, p := range w.partitions {
		p.removeWaiter(w)
	}
	w.partitions = nil
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
