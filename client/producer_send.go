package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partState is the producer's state for one partition. A batch lives in
// exactly one of open, queue or inflight until it finishes.
type partState struct {
	tp          TopicPartition
	open        *batch
	lingerTimer core.Timer
	// queue holds closed batches not in flight, in creation order (retried
	// batches go back to their place, ahead of newer ones).
	queue    []*batch
	inflight []*batch
	// drainFirst is set when a batch went back to the queue for a retry:
	// nothing more is sent until the batches in flight have returned, so
	// that the retry goes out before anything newer.
	drainFirst bool
	// backoff is set during retry.backoff.ms after a retriable error.
	backoff bool
	// nextSequence is the sequence number of the next batch to be numbered.
	nextSequence int32
	// batchIndexNext is the batch index (see batch.batchIndex) of the next
	// batch to be numbered. It only grows, across identities too: only
	// differences between batches of one identity are ever compared.
	batchIndexNext int64
}

// idempotentWindowBatchesMax is how many batches per producer and partition
// the broker remembers to recognise a retry as a duplicate (Kafka's broker
// keeps 5). A retry of a batch this many batches or more behind the newest
// one appended is refused with OUT_OF_ORDER_SEQUENCE_NUMBER even when the
// batch is in the log, so the idempotent producer never sends a batch more
// than idempotentWindowBatchesMax-1 batches past the oldest unresolved batch
// of its partition, as Kafka's Java producer does (sim seed 913354).
const idempotentWindowBatchesMax = 5

// batch is a group of records for one partition, sent together.
type batch struct {
	part    *partState
	order   uint64
	records []pendingRecord
	bytes   int
	// sequence is the base sequence, or -1 until the batch is first sent.
	// producerID and epoch are the identity it was numbered with.
	sequence   int32
	producerID int64
	epoch      int16
	// batchIndex counts the batches numbered before this one in its
	// partition; it is set with sequence. Sequences count records, so the
	// distance in batches between two batches, which the broker's
	// duplicate window is measured in, is the difference of their indexes.
	batchIndex int64
	encoded    []byte
	attempts   int
	// brokerErr is the Kafka error the broker answered the batch's last
	// attempt with, or nil when that attempt got no answer or succeeded
	// (Result.BrokerError).
	brokerErr error
	// attemptLeaderEpoch is the leader epoch the cluster metadata gave the
	// partition's leader when the last attempt was sent, -1 when unknown
	// (Result.BrokerErrorLeaderEpoch).
	attemptLeaderEpoch int32
	// maybeWritten is set once any attempt may have appended the batch.
	maybeWritten  bool
	inflight      bool
	expired       bool
	finished      bool
	deliveryTimer core.Timer
}

// idState is the life cycle of the idempotent producer's identity.
type idState uint8

const (
	idNone idState = iota
	idInitializing
	idReady
)

// producerIdentity is the producer id and epoch of an idempotent producer.
type producerIdentity struct {
	state idState
	id    int64
	epoch int16
	// resetPending is set when the identity must be replaced; sending stops
	// until every request in flight has returned.
	resetPending bool
	cause        error
}

func (id *producerIdentity) reset() {
	*id = producerIdentity{state: idNone, id: record.NoProducerID, epoch: record.NoProducerEpoch}
}

func (p *Producer) openBatch(ps *partState) {
	if ps.open != nil {
		panic("client: opening a second batch")
	}
	p.batchOrder++
	b := &batch{part: ps, order: p.batchOrder, sequence: -1}
	b.deliveryTimer = p.clock.AfterFunc(p.cfg.DeliveryTimeout, func() { p.onDeliveryTimeout(b) })
	ps.open = b
	if p.cfg.Linger > 0 {
		ps.lingerTimer = p.clock.AfterFunc(p.cfg.Linger, func() {
			ps.lingerTimer = nil
			if ps.open == b {
				p.closeOpen(ps)
				p.scheduleDrain()
			}
		})
	}
}

// closeOpen moves the open batch to the send queue.
func (p *Producer) closeOpen(ps *partState) {
	b := ps.open
	if b == nil || len(b.records) == 0 {
		panic("client: closing a missing or empty batch")
	}
	ps.open = nil
	if ps.lingerTimer != nil {
		ps.lingerTimer.Stop()
		ps.lingerTimer = nil
	}
	ps.queue = append(ps.queue, b)
	p.topics[ps.tp.Topic].partitioner.batchClosed(p.rand, ps.tp.Partition, p.cluster.partitionCount(ps.tp.Topic))
}

func (p *Producer) scheduleDrain() {
	if p.drainScheduled || p.closed {
		return
	}
	p.drainScheduled = true
	p.clock.AfterFunc(0, p.drain)
}

// drain sends every batch that may go now.
func (p *Producer) drain() {
	p.drainScheduled = false
	if p.closed {
		return
	}
	if p.cfg.Idempotent {
		if p.id.resetPending {
			if p.inflightTotal() == 0 {
				p.resetIdentity()
			}
			return
		}
		if p.id.state != idReady {
			p.initIdentity()
			return
		}
	}
	for {
		nodes, perNode := p.collect()
		if len(nodes) == 0 {
			return
		}
		for _, node := range nodes {
			p.sendProduce(node, perNode[node])
		}
	}
}

func (p *Producer) inflightTotal() int {
	total := 0
	for _, tp := range p.partOrder {
		total += len(p.parts[tp].inflight)
	}
	return total
}

// perPartitionInflightMax is the number of batches one partition may have in
// flight. With idempotence, withinWindow bounds further how far sends may run
// ahead of the oldest unresolved batch.
func (p *Producer) perPartitionInflightMax() int {
	return p.cfg.MaxInFlight
}

// collect picks, per leader, the head batch of every partition that may send
// now, within the request size and in-flight limits. It returns the leaders
// in order.
func (p *Producer) collect() ([]int32, map[int32][]*batch) {
	var nodes []int32
	perNode := make(map[int32][]*batch)
	bytes := make(map[int32]int)
	for _, tp := range p.partOrder {
		ps := p.parts[tp]
		if len(ps.queue) == 0 || ps.backoff || (ps.drainFirst && len(ps.inflight) > 0) ||
			len(ps.inflight) >= p.perPartitionInflightMax() || !p.withinWindow(ps.queue[0]) {
			continue
		}
		node, _, ok := p.cluster.leader(tp.Topic, tp.Partition)
		if !ok {
			p.needMetadata()
			continue
		}
		if p.nodeInflight[node] >= p.cfg.MaxInFlight {
			continue
		}
		b := ps.queue[0]
		if !p.prepare(b) {
			continue
		}
		if len(perNode[node]) > 0 && bytes[node]+len(b.encoded) > p.cfg.MaxRequestBytes {
			continue
		}
		if _, seen := perNode[node]; !seen {
			nodes = append(nodes, node)
		}
		perNode[node] = append(perNode[node], b)
		bytes[node] += len(b.encoded)
	}
	slices.Sort(nodes)
	return nodes, perNode
}

// withinWindow reports whether the idempotent producer may send b, the head
// of its partition's queue, now: b (numbered now if it has no sequence yet)
// must lie fewer than idempotentWindowBatchesMax batches past the oldest
// batch of the partition whose outcome is still unknown. Counting batches in
// flight is not enough: when later batches are acknowledged while an
// earlier one waits for its retry, new batches would run ahead of it without
// limit, and its retry would then fall outside the broker's window.
func (p *Producer) withinWindow(b *batch) bool {
	if !p.cfg.Idempotent {
		return true
	}
	ps := b.part
	oldest, ok := ps.oldestUnresolvedIndex()
	if !ok {
		return true
	}
	index := b.batchIndex
	if b.sequence < 0 {
		index = ps.batchIndexNext
	}
	return index-oldest < idempotentWindowBatchesMax
}

// assertWithinWindow checks, as b goes into flight, the bound withinWindow
// keeps: a broken bound would surface only much later, as a refused retry.
func (p *Producer) assertWithinWindow(b *batch) {
	if !p.cfg.Idempotent {
		return
	}
	oldest, ok := b.part.oldestUnresolvedIndex()
	if !ok || b.batchIndex-oldest >= idempotentWindowBatchesMax {
		panic(fmt.Sprintf("client: batch %d of %v sent %d batches past the oldest unresolved one (%v)",
			b.batchIndex, b.part.tp, b.batchIndex-oldest, ok))
	}
}

// oldestUnresolvedIndex returns the smallest batch index among the
// partition's numbered batches that have not finished, which are those in
// flight and the numbered ones waiting in the queue for a retry. Batches are
// numbered at the head of the queue in creation order, and retries go back
// to their place in that order, so the numbered batches of the queue come
// first and the scan stops at the first one without a sequence.
func (ps *partState) oldestUnresolvedIndex() (int64, bool) {
	oldest, found := int64(0), false
	consider := func(b *batch) {
		if b.finished {
			panic("client: a finished batch is still queued or in flight")
		}
		if !found || b.batchIndex < oldest {
			oldest, found = b.batchIndex, true
		}
	}
	for _, b := range ps.inflight {
		if b.sequence < 0 {
			panic("client: an idempotent batch in flight has no sequence")
		}
		consider(b)
	}
	for _, b := range ps.queue {
		if b.sequence < 0 {
			break
		}
		consider(b)
	}
	return oldest, found
}

// prepare numbers (once) and encodes (once) the batch at the head of its
// partition's queue. A batch that cannot be encoded fails definitively.
func (p *Producer) prepare(b *batch) bool {
	if b.encoded != nil {
		return true
	}
	ps := b.part
	spec := record.NewBatchSpec(p.cfg.Compression)
	if p.cfg.Idempotent {
		b.sequence = ps.nextSequence
		b.batchIndex = ps.batchIndexNext
		ps.batchIndexNext++
		b.producerID, b.epoch = p.id.id, p.id.epoch
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = b.producerID, b.epoch, b.sequence
		ps.nextSequence = int32((int64(ps.nextSequence) + int64(len(b.records))) % (sequenceMax + 1))
	}
	records := make([]record.Record, len(b.records))
	for i := range b.records {
		records[i] = b.records[i].rec.toBatchRecord()
	}
	encoded, err := p.builder.AppendBatch(nil, spec, records)
	if err != nil {
		ps.queue = ps.queue[1:]
		p.finishFailed(b, fmt.Errorf("%w: %w", ErrInvalidRecord, err))
		return false
	}
	b.encoded = encoded
	return true
}

// sendProduce sends one Produce request holding batches, all led by node.
func (p *Producer) sendProduce(node int32, batches []*batch) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = p.cfg.Acks
	req.TimeoutMillis = int32(p.cfg.RequestTimeout.Milliseconds())
	for _, b := range batches {
		ps := b.part
		if ps.queue[0] != b {
			panic("client: sending a batch that is not at the head of its queue")
		}
		ps.queue = ps.queue[1:]
		ps.inflight = append(ps.inflight, b)
		b.inflight = true
		p.assertWithinWindow(b)
		b.attempts++
		// A new attempt: an error the broker gave an earlier one no longer
		// says what happened to the batch (this attempt may append it).
		b.brokerErr = nil
		b.attemptLeaderEpoch = -1
		if leader, epoch, ok := p.cluster.leader(ps.tp.Topic, ps.tp.Partition); ok && leader == node {
			b.attemptLeaderEpoch = epoch
		}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != ps.tp.Topic {
			t := kmsg.NewProduceRequestTopic()
			t.Topic = ps.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		part := kmsg.NewProduceRequestTopicPartition()
		part.Partition = ps.tp.Partition
		part.Records = b.encoded
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, part)
	}
	p.nodeInflight[node]++
	p.cluster.requestNode(node, req, p.cfg.RequestTimeout, func(resp kmsg.Response, err error) {
		p.nodeInflight[node]--
		if p.nodeInflight[node] < 0 {
			panic("client: negative produce requests in flight")
		}
		p.onProduceResponse(batches, resp, err)
	})
}

// onProduceResponse settles every batch of one Produce request.
func (p *Producer) onProduceResponse(batches []*batch, resp kmsg.Response, err error) {
	if p.closed {
		return
	}
	results := make(map[TopicPartition]*kmsg.ProduceResponseTopicPartition)
	if pr, ok := resp.(*kmsg.ProduceResponse); ok && err == nil {
		for i := range pr.Topics {
			for j := range pr.Topics[i].Partitions {
				rp := &pr.Topics[i].Partitions[j]
				results[TopicPartition{pr.Topics[i].Topic, rp.Partition}] = rp
			}
		}
	}
	for _, b := range batches {
		if b.finished {
			continue
		}
		p.removeInflight(b)
		switch {
		case err != nil:
			p.attemptFailed(b, err)
		case resp == nil:
			// acks=0: the broker never answers, so nothing is known.
			p.finishBatch(b, OutcomeIndefinite, -1, nil)
		default:
			p.settle(b, results[b.part.tp])
		}
	}
	p.scheduleDrain()
}

func (p *Producer) removeInflight(b *batch) {
	ps := b.part
	i := slices.Index(ps.inflight, b)
	if i < 0 || !b.inflight {
		panic("client: a returning batch is not in flight")
	}
	ps.inflight = slices.Delete(ps.inflight, i, i+1)
	b.inflight = false
}

// settle handles the broker's answer for one batch.
func (p *Producer) settle(b *batch, rp *kmsg.ProduceResponseTopicPartition) {
	if rp == nil {
		p.attemptFailed(b, errSent(fmt.Errorf("%w: no result for %v", ErrProtocol, b.part.tp)))
		return
	}
	err := kafkaError(rp.ErrorCode)
	switch {
	case err == nil && rp.BaseOffset >= 0:
		p.finishBatch(b, OutcomeOK, rp.BaseOffset, nil)
	case err == nil:
		p.attemptFailed(b, errSent(fmt.Errorf("%w: negative base offset %d", ErrProtocol, rp.BaseOffset)))
	case errors.Is(err, kerr.DuplicateSequenceNumber):
		// The broker has the batch but no longer knows its offset.
		p.finishBatch(b, OutcomeIndefinite, -1, err)
	default:
		p.attemptFailed(b, err)
	}
}

// attemptFailed decides between retrying a batch, resetting the idempotent
// identity, and failing the batch.
func (p *Producer) attemptFailed(b *batch, err error) {
	var kafkaErr *kerr.Error
	if errors.As(err, &kafkaErr) {
		b.brokerErr = kafkaErr
	}
	if attemptMaybeWrote(err) {
		b.maybeWritten = true
	}
	if staleMetadata(err) {
		p.needMetadata()
	}
	if p.cfg.Idempotent && sequenceError(err) {
		if errors.Is(err, kerr.OutOfOrderSequenceNumber) && p.earlierUnresolved(b) && !b.expired {
			// An earlier batch of ours is being retried; this one follows it.
			p.retry(b)
			return
		}
		p.requeue(b)
		p.requestReset(err)
		return
	}
	if produceRetriable(err) && b.attempts <= p.cfg.Retries && !b.expired {
		p.retry(b)
		return
	}
	if b.expired {
		err = fmt.Errorf("%w: last error: %w", ErrDeliveryTimeout, err)
	}
	p.finishFailed(b, err)
}

// earlierUnresolved reports whether a batch numbered before b is still
// unacknowledged.
func (p *Producer) earlierUnresolved(b *batch) bool {
	ps := b.part
	for _, other := range slices.Concat(ps.inflight, ps.queue) {
		if other.order < b.order && other.sequence >= 0 {
			return true
		}
	}
	return false
}

// requeue puts a batch back in its queue, at its place in creation order.
func (p *Producer) requeue(b *batch) {
	ps := b.part
	i, _ := slices.BinarySearchFunc(ps.queue, b.order, func(x *batch, order uint64) int {
		switch {
		case x.order < order:
			return -1
		case x.order > order:
			return 1
		}
		return 0
	})
	ps.queue = slices.Insert(ps.queue, i, b)
}

// retry requeues b and holds its partition back for retry.backoff.ms.
func (p *Producer) retry(b *batch) {
	ps := b.part
	p.requeue(b)
	ps.drainFirst = true
	if ps.backoff {
		return
	}
	ps.backoff = true
	p.clock.AfterFunc(p.cfg.RetryBackoff, func() {
		ps.backoff = false
		if len(ps.inflight) == 0 {
			ps.drainFirst = false
		}
		p.scheduleDrain()
	})
}

// finishFailed fails a batch that is in no list any more. An idempotent
// batch that holds a sequence number leaves a gap the broker would never
// accept past, so the identity must be replaced.
func (p *Producer) finishFailed(b *batch, err error) {
	outcome := OutcomeDefiniteFailure
	if b.maybeWritten || b.inflight {
		outcome = OutcomeIndefinite
	}
	p.finishBatch(b, outcome, -1, err)
	if p.cfg.Idempotent && b.sequence >= 0 && !p.closed {
		p.requestReset(err)
	}
}

// finishBatch completes every record of b.
func (p *Producer) finishBatch(b *batch, outcome Outcome, baseOffset int64, err error) {
	if b.finished {
		panic("client: batch finished twice")
	}
	b.finished = true
	b.deliveryTimer.Stop()
	ps := b.part
	if len(ps.inflight) == 0 && !ps.backoff {
		ps.drainFirst = false
	}
	for i := range b.records {
		pr := &b.records[i]
		if outcome == OutcomeOK {
			rec := pr.rec
			rec.Offset = baseOffset + int64(i)
			p.complete(pr, b.identify(i, Result{Record: rec, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Outcome: OutcomeOK}))
			continue
		}
		if err == nil {
			err = fmt.Errorf("%w: acks=0 gives no acknowledgement", ErrRequestTimeout)
		}
		p.complete(pr, b.identify(i, failedResult(&pr.rec, err, outcome)))
	}
}

// identify fills in the identity and batch size that the i-th record of b
// was last sent with (see Result.Sequence).
func (b *batch) identify(i int, res Result) Result {
	res.ProducerID, res.ProducerEpoch, res.Sequence = -1, -1, -1
	res.BrokerErrorLeaderEpoch = -1
	if b.sequence >= 0 {
		res.ProducerID, res.ProducerEpoch = b.producerID, b.epoch
		res.Sequence = int32((int64(b.sequence) + int64(i)) % (sequenceMax + 1))
	}
	if b.encoded != nil {
		res.BatchBytes, res.BatchRecords = len(b.encoded), len(b.records)
	}
	if res.Outcome != OutcomeOK {
		res.BrokerError = b.brokerErr
		if b.brokerErr != nil {
			res.BrokerErrorLeaderEpoch = b.attemptLeaderEpoch
		}
	}
	return res
}

// onDeliveryTimeout fails a batch whose delivery timeout expired, unless it
// is in flight, in which case its response (or request timeout) decides.
func (p *Producer) onDeliveryTimeout(b *batch) {
	if b.finished || p.closed {
		return
	}
	b.expired = true
	if b.inflight {
		return
	}
	ps := b.part
	if ps.open == b {
		ps.open = nil
		if ps.lingerTimer != nil {
			ps.lingerTimer.Stop()
			ps.lingerTimer = nil
		}
	} else {
		i := slices.Index(ps.queue, b)
		if i < 0 {
			panic("client: an expiring batch is in no list")
		}
		ps.queue = slices.Delete(ps.queue, i, i+1)
	}
	p.finishFailed(b, ErrDeliveryTimeout)
	p.scheduleDrain()
}

// failPartition fails every batch of a partition (on Close).
func (p *Producer) failPartition(ps *partState, err error, includeInflight bool) {
	var all []*batch
	if includeInflight {
		all = append(all, ps.inflight...)
		ps.inflight = nil
	}
	all = append(all, ps.queue...)
	ps.queue = nil
	if ps.open != nil {
		all = append(all, ps.open)
		ps.open = nil
		if ps.lingerTimer != nil {
			ps.lingerTimer.Stop()
			ps.lingerTimer = nil
		}
	}
	for _, b := range all {
		p.finishFailed(b, err)
	}
}

// requestReset stops sending until the batches in flight return, then
// replaces the producer id and epoch (see resetIdentity).
func (p *Producer) requestReset(cause error) {
	if p.id.resetPending {
		return
	}
	p.id.resetPending = true
	p.id.cause = cause
	p.scheduleDrain()
}

// resetIdentity fails every batch numbered under the old identity (they are
// never renumbered, so no record can be written twice under two identities),
// restarts every partition's sequence at zero, and asks for a new identity.
// Batches never sent survive and are numbered under the new identity.
func (p *Producer) resetIdentity() {
	cause := fmt.Errorf("%w: %w", ErrProducerReset, p.id.cause)
	var failed []*batch
	for _, tp := range p.partOrder {
		ps := p.parts[tp]
		if len(ps.inflight) != 0 {
			panic("client: identity reset with batches in flight")
		}
		var keep []*batch
		for _, b := range ps.queue {
			if b.sequence < 0 {
				keep = append(keep, b)
			} else {
				failed = append(failed, b)
			}
		}
		ps.queue = keep
		ps.nextSequence = 0
		ps.drainFirst = false
	}
	p.id.reset()
	// The callbacks run last, once the state is consistent: they may produce.
	for _, b := range failed {
		p.finishBatch(b, outcomeOf(b), -1, cause)
	}
	p.scheduleDrain()
}

func outcomeOf(b *batch) Outcome {
	if b.maybeWritten {
		return OutcomeIndefinite
	}
	return OutcomeDefiniteFailure
}

// initIdentity asks for a producer id and epoch (InitProducerId). On failure
// it tries again after retry.backoff.ms; the batches' delivery timeouts bound
// the wait.
func (p *Producer) initIdentity() {
	if p.id.state != idNone {
		return
	}
	p.id.state = idInitializing
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60_000
	req.ProducerID = record.NoProducerID
	req.ProducerEpoch = record.NoProducerEpoch
	p.cluster.requestAny(req, p.cfg.RequestTimeout, func(r kmsg.Response, err error) {
		if p.closed {
			return
		}
		if err == nil {
			resp := r.(*kmsg.InitProducerIDResponse)
			if err = kafkaError(resp.ErrorCode); err == nil && resp.ProducerID < 0 {
				err = fmt.Errorf("%w: producer id %d", ErrProtocol, resp.ProducerID)
			}
			if err == nil {
				p.id = producerIdentity{state: idReady, id: resp.ProducerID, epoch: resp.ProducerEpoch}
				p.scheduleDrain()
				return
			}
		}
		p.id.state = idNone
		p.clock.AfterFunc(p.cfg.RetryBackoff, p.scheduleDrain)
	})
}

// onMetadata runs after every metadata update.
func (p *Producer) onMetadata() {
	if p.closed {
		return
	}
	p.routeWaiting()
	p.scheduleDrain()
}

// needMetadata asks for a metadata refresh, at most one per
// retry.backoff.ms.
func (p *Producer) needMetadata() {
	if p.meta.pending || p.meta.backoff || p.closed {
		return
	}
	p.meta.pending = true
	p.cluster.RefreshMetadata(func(error) {
		p.meta.pending = false
		p.meta.backoff = true
		p.clock.AfterFunc(p.cfg.RetryBackoff, func() {
			p.meta.backoff = false
			if p.closed {
				return
			}
			for _, name := range p.topicOrder {
				if len(p.topics[name].waiting) > 0 {
					p.needMetadata()
					break
				}
			}
			p.scheduleDrain()
		})
	})
}
