package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/planted"
)

func (c *Consumer) scheduleFetch() {
	if c.fetchPending || c.closed {
		return
	}
	c.fetchPending = true
	c.clock.AfterFunc(0, c.fetch)
}

// fetch resolves start offsets and sends one Fetch per leader that has none
// in flight, for every partition with a known position and buffer room.
func (c *Consumer) fetch() {
	c.fetchPending = false
	if c.closed {
		return
	}
	perNode := make(map[int32][]*consumePart)
	var nodes []int32
	for _, tp := range c.partOrder {
		cp := c.parts[tp]
		if cp.stopped || cp.backoff || cp.resolving || cp.fetching {
			continue
		}
		if cp.fetchOffset < 0 {
			c.resolve(cp)
			continue
		}
		if c.buffered >= c.cfg.BufferedRecordsMax || len(cp.buffered) > 0 {
			continue
		}
		node, _, ok := c.cluster.leader(tp.Topic, tp.Partition)
		if !ok {
			if c.cfg.OnFetchError != nil && c.cluster.partitionError(tp) != nil {
				c.cfg.OnFetchError(tp, cp.fetchOffset, c.cluster.noLeaderError(tp))
			}
			c.needMetadata()
			continue
		}
		if c.nodeFetching[node] {
			continue
		}
		if _, seen := perNode[node]; !seen {
			nodes = append(nodes, node)
		}
		perNode[node] = append(perNode[node], cp)
	}
	slices.Sort(nodes)
	for _, node := range nodes {
		c.sendFetch(node, perNode[node])
	}
}

// fetchedPart remembers what a Fetch asked for one partition.
type fetchedPart struct {
	cp      *consumePart
	offset  int64
	version uint64
	// epoch is the leader epoch the request carried for the partition.
	epoch int32
}

func (c *Consumer) sendFetch(node int32, parts []*consumePart) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(c.cfg.MaxWait.Milliseconds())
	req.MinBytes = c.cfg.MinBytes
	req.MaxBytes = c.cfg.MaxBytes
	if c.cfg.ReadCommitted {
		req.IsolationLevel = 1
	}
	req.SessionID = 0
	req.SessionEpoch = -1 // No fetch session: every fetch is full.
	asked := make([]fetchedPart, 0, len(parts))
	for _, cp := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != cp.tp.Topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = cp.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		_, epoch, _ := c.cluster.leader(cp.tp.Topic, cp.tp.Partition)
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = cp.tp.Partition
		fp.CurrentLeaderEpoch = epoch
		fp.FetchOffset = cp.fetchOffset
		fp.LogStartOffset = -1
		fp.PartitionMaxBytes = c.cfg.MaxPartitionBytes
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, fp)
		cp.fetching = true
		asked = append(asked, fetchedPart{cp: cp, offset: cp.fetchOffset, version: cp.version, epoch: epoch})
	}
	c.nodeFetching[node] = true
	c.fetchCount++
	id := c.fetchCount
	if c.cfg.OnFetchSent != nil {
		c.cfg.OnFetchSent(id)
	}
	c.cluster.requestNode(node, req, c.cfg.MaxWait+c.cfg.RequestTimeout, func(r kmsg.Response, err error) {
		c.nodeFetching[node] = false
		if c.cfg.OnFetchReceived != nil {
			c.cfg.OnFetchReceived(id)
		}
		c.fetchID = id
		c.onFetch(asked, r, err)
	})
}

// onFetch applies one Fetch response.
func (c *Consumer) onFetch(asked []fetchedPart, r kmsg.Response, err error) {
	results := make(map[TopicPartition]*kmsg.FetchResponseTopicPartition)
	if err == nil {
		resp := r.(*kmsg.FetchResponse)
		err = kafkaError(resp.ErrorCode)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				rp := &resp.Topics[i].Partitions[j]
				results[TopicPartition{resp.Topics[i].Topic, rp.Partition}] = rp
			}
		}
	}
	for _, a := range asked {
		cp := a.cp
		cp.fetching = false
		if rp := results[cp.tp]; err == nil && rp != nil && rp.ErrorCode == 0 && c.cfg.OnFetchAnswer != nil {
			c.cfg.OnFetchAnswer(FetchAnswer{ID: c.fetchID, Partition: cp.tp, LeaderEpoch: a.epoch, HighWatermark: rp.HighWatermark})
		}
		if c.closed || c.parts[cp.tp] != cp || cp.version != a.version || cp.fetchOffset != a.offset {
			continue // Reassigned or sought since the request left.
		}
		rp := results[cp.tp]
		switch {
		case err != nil:
			c.partitionFailed(cp, err)
		case rp == nil:
			// The broker may omit partitions it has nothing for.
		default:
			c.applyFetched(cp, rp)
		}
	}
	c.schedulePoll()
	c.scheduleFetch()
}

// partitionFailed handles a fetch error for one partition.
func (c *Consumer) partitionFailed(cp *consumePart, err error) {
	if c.cfg.OnFetchError != nil {
		c.cfg.OnFetchError(cp.tp, cp.fetchOffset, err)
	}
	if errors.Is(err, kerr.OffsetOutOfRange) {
		switch c.cfg.AutoOffsetReset {
		case ResetEarliest:
			c.resetPart(cp, OffsetEarliest)
		case ResetLatest:
			c.resetPart(cp, OffsetLatest)
		default:
			cp.stopped = true
			c.reportError(fmt.Errorf("%v at offset %d: %w", cp.tp, cp.fetchOffset, err))
		}
		return
	}
	if staleMetadata(err) {
		c.needMetadata()
	}
	c.backoff(cp)
}

// backoff pauses a partition for retry.backoff.ms.
func (c *Consumer) backoff(cp *consumePart) {
	if cp.backoff {
		return
	}
	cp.backoff = true
	c.clock.AfterFunc(c.cfg.RetryBackoff, func() {
		cp.backoff = false
		c.scheduleFetch()
	})
}

// applyFetched decodes the batches of one partition, keeping records at or
// after the fetch offset, skipping control batches and, with read_committed,
// aborted transactions.
func (c *Consumer) applyFetched(cp *consumePart, rp *kmsg.FetchResponseTopicPartition) {
	if err := kafkaError(rp.ErrorCode); err != nil {
		c.partitionFailed(cp, err)
		return
	}
	aborted := newAbortTracker(rp.AbortedTransactions, c.cfg.ReadCommitted)
	rest := rp.RecordBatches
	for len(rest) >= record.LengthPrefixBytes {
		size, err := record.BatchSize(rest)
		if err != nil {
			c.corrupt(cp, err)
			return
		}
		if size > len(rest) {
			break // A partial batch at the end of a size-limited fetch.
		}
		if err := c.applyBatch(cp, rest[:size], &aborted); err != nil {
			c.corrupt(cp, err)
			return
		}
		rest = rest[size:]
	}
}

// corrupt backs off a partition whose fetched data failed validation; the
// next fetch reads it again from the same offset.
func (c *Consumer) corrupt(cp *consumePart, err error) {
	err = fmt.Errorf("%w: %w", ErrCorruptFetch, err)
	if c.cfg.OnFetchError != nil {
		c.cfg.OnFetchError(cp.tp, cp.fetchOffset, err)
	}
	c.reportError(fmt.Errorf("%v at offset %d: %w", cp.tp, cp.fetchOffset, err))
	c.backoff(cp)
}

// applyBatch adds the wanted records of one batch.
func (c *Consumer) applyBatch(cp *consumePart, b []byte, aborted *abortTracker) error {
	// Validate checks the CRC before any covered field (the control and
	// transactional flags, the offset delta) decides what to skip: a flipped
	// bit must fail the batch, not make it look like a control batch.
	h, err := record.Validate(b)
	if err != nil {
		return err
	}
	if h.NextOffset() <= cp.fetchOffset {
		return nil // Entirely before the position (a re-sent older batch).
	}
	if h.Attributes.IsControl() {
		if err := aborted.control(&h, b); err != nil {
			return err
		}
		cp.fetchOffset = h.NextOffset()
		return nil
	}
	if aborted.skip(&h) {
		cp.fetchOffset = h.NextOffset()
		return nil
	}
	start := len(cp.buffered)
	_, err = c.reader.Records(b, func(r *record.Record) error {
		if r.Offset < cp.fetchOffset && !planted.Is("keep-records-below-fetch-offset") {
			return nil
		}
		kept := r.Clone()
		cp.buffered = append(cp.buffered, Record{
			Topic: cp.tp.Topic, Partition: cp.tp.Partition, Offset: kept.Offset, Timestamp: kept.Timestamp,
			Key: kept.Key, Value: kept.Value, Headers: kept.Headers, LeaderEpoch: h.PartitionLeaderEpoch,
			FetchID: c.fetchID,
		})
		return nil
	})
	if err != nil {
		cp.buffered = cp.buffered[:start] // Keep nothing of a bad batch.
		return err
	}
	c.buffered += len(cp.buffered) - start
	cp.fetchOffset = h.NextOffset()
	return nil
}

// abortTracker follows the aborted transactions of one fetch response
// (read_committed): a producer's transactional batches are skipped from the
// first offset of its aborted transaction up to its abort marker.
type abortTracker struct {
	enabled bool
	pending []kmsg.FetchResponseTopicPartitionAbortedTransaction
	active  map[int64]bool
}

func newAbortTracker(list []kmsg.FetchResponseTopicPartitionAbortedTransaction, enabled bool) abortTracker {
	pending := slices.Clone(list)
	slices.SortFunc(pending, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		switch {
		case a.FirstOffset < b.FirstOffset:
			return -1
		case a.FirstOffset > b.FirstOffset:
			return 1
		}
		return 0
	})
	return abortTracker{enabled: enabled, pending: pending, active: make(map[int64]bool)}
}

// skip reports whether a data batch belongs to an aborted transaction.
func (t *abortTracker) skip(h *record.Header) bool {
	if !t.enabled || !h.Attributes.IsTransactional() {
		return false
	}
	for len(t.pending) > 0 && t.pending[0].FirstOffset <= h.LastOffset() {
		t.active[t.pending[0].ProducerID] = true
		t.pending = t.pending[1:]
	}
	return t.active[h.ProducerID]
}

// control ends a producer's aborted transaction at its abort marker.
func (t *abortTracker) control(h *record.Header, b []byte) error {
	if !t.enabled {
		return nil
	}
	_, err := record.Records(b, func(r *record.Record) error {
		cr, err := record.ParseControlRecord(r)
		if err == nil && cr.Type == record.ControlAbort {
			delete(t.active, h.ProducerID)
		}
		return err
	})
	return err
}
