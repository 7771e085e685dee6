package client

import (
	"fmt"
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// ProducerConfig configures a Producer. Start from DefaultProducerConfig;
// each field names the Kafka setting it mirrors.
type ProducerConfig struct {
	// Acks is acks: 0 (no response; every record's outcome is
	// OutcomeIndefinite), 1 (the leader appended) or -1 (all in-sync
	// replicas have it). Default -1.
	Acks int16
	// Linger is linger.ms: how long a batch waits for more records before it
	// is sent. Default 5ms.
	Linger time.Duration
	// BatchBytes is batch.size: a batch is sent once its records reach this
	// many (uncompressed) bytes. A larger record gets a batch of its own.
	// Default 16384.
	BatchBytes int
	// Idempotent is enable.idempotence: producer id, epoch and per-partition
	// sequence numbers let the broker drop retried duplicates. Requires
	// Acks -1, Retries > 0 and MaxInFlight <= 5. Default false.
	Idempotent bool
	// Compression is compression.type. Default record.CodecNone.
	Compression record.Codec
	// Retries is retries: how many times a batch is resent after a
	// retriable error. Default 1<<30 (bounded in practice by
	// DeliveryTimeout).
	Retries int
	// RetryBackoff is retry.backoff.ms, the wait before resending to a
	// partition. Default 100ms.
	RetryBackoff time.Duration
	// DeliveryTimeout is delivery.timeout.ms: a batch that is not
	// acknowledged this long after its first record was produced fails with
	// ErrDeliveryTimeout. A batch in flight is given until its response or
	// request timeout. Default 120s.
	DeliveryTimeout time.Duration
	// RequestTimeout is request.timeout.ms for Produce requests, also sent
	// to the broker as the Produce timeout. Default 30s.
	RequestTimeout time.Duration
	// MaxInFlight is max.in.flight.requests.per.connection: Produce requests
	// outstanding per broker, and batches outstanding per partition. At most
	// 5. Default 5. With Idempotent, a partition also never sends a batch 5
	// or more batches past its oldest batch whose outcome is unknown, so that
	// every retry stays within the broker's duplicate window.
	MaxInFlight int
	// MaxRequestBytes is max.request.size: bigger records are refused with
	// ErrRecordTooLarge, and a request carries batches up to this size.
	// Default 1 MiB.
	MaxRequestBytes int
	// BufferedRecordsMax bounds the records produced but not yet completed
	// (in the spirit of buffer.memory); beyond it Produce fails with
	// ErrBufferFull. Default 100000.
	BufferedRecordsMax int
	// Partitioner is partitioner.class. Default PartitionerDefault.
	Partitioner Partitioner
}

// DefaultProducerConfig returns Kafka's defaults (linger 5ms, batch 16 KiB,
// acks all, no idempotence, no compression).
func DefaultProducerConfig() ProducerConfig {
	return ProducerConfig{
		Acks:               -1,
		Linger:             5 * time.Millisecond,
		BatchBytes:         16384,
		Compression:        record.CodecNone,
		Retries:            1 << 30,
		RetryBackoff:       retryBackoffDefault,
		DeliveryTimeout:    120 * time.Second,
		RequestTimeout:     requestTimeoutDefault,
		MaxInFlight:        5,
		MaxRequestBytes:    1 << 20,
		BufferedRecordsMax: 100_000,
	}
}

func (cfg *ProducerConfig) validate() error {
	switch {
	case cfg.Acks != 0 && cfg.Acks != 1 && cfg.Acks != -1:
		return fmt.Errorf("%w: acks %d (want 0, 1 or -1)", ErrInvalidConfig, cfg.Acks)
	case cfg.Linger < 0 || cfg.RetryBackoff < 0:
		return fmt.Errorf("%w: negative linger or retry backoff", ErrInvalidConfig)
	case cfg.DeliveryTimeout <= 0 || cfg.RequestTimeout <= 0:
		return fmt.Errorf("%w: delivery and request timeouts must be positive", ErrInvalidConfig)
	case cfg.BatchBytes <= 0 || cfg.MaxRequestBytes <= 0 || cfg.MaxRequestBytes > requestBytesMax:
		return fmt.Errorf("%w: batch.size %d, max.request.size %d", ErrInvalidConfig, cfg.BatchBytes, cfg.MaxRequestBytes)
	case cfg.MaxInFlight < 1 || cfg.MaxInFlight > inflightRequestsMax:
		return fmt.Errorf("%w: max.in.flight %d (want 1..%d)", ErrInvalidConfig, cfg.MaxInFlight, inflightRequestsMax)
	case cfg.Retries < 0:
		return fmt.Errorf("%w: negative retries", ErrInvalidConfig)
	case cfg.BufferedRecordsMax < 1 || cfg.BufferedRecordsMax > producerBufferedRecordsMax:
		return fmt.Errorf("%w: buffered records %d (want 1..%d)", ErrInvalidConfig, cfg.BufferedRecordsMax, producerBufferedRecordsMax)
	case cfg.Compression < record.CodecNone || cfg.Compression > record.CodecZstd:
		return fmt.Errorf("%w: compression %v", ErrInvalidConfig, cfg.Compression)
	case cfg.Partitioner > PartitionerManual:
		return fmt.Errorf("%w: partitioner %d", ErrInvalidConfig, cfg.Partitioner)
	case cfg.Idempotent && (cfg.Acks != -1 || cfg.Retries == 0):
		return fmt.Errorf("%w: idempotence needs acks=-1 and retries > 0", ErrInvalidConfig)
	}
	return nil
}

// Producer sends records to partition leaders in batches. See the package
// documentation and docs/client.md.
type Producer struct {
	cluster *Cluster
	cfg     ProducerConfig
	clock   core.Clock
	rand    *core.Rand
	builder record.Builder
	parts   map[TopicPartition]*partState
	// partOrder lists parts' keys in order, so that iteration is
	// deterministic.
	partOrder []TopicPartition
	topics    map[string]*topicState
	// topicOrder lists topics' keys in order.
	topicOrder   []string
	buffered     int
	nodeInflight map[int32]int
	id           producerIdentity
	// batchOrder numbers batches in creation order.
	batchOrder     uint64
	drainScheduled bool
	meta           producerMeta
	flushWaiters   []func()
	closed         bool
}

// topicState is the per-topic state: partitioner and records waiting for the
// topic's partition count.
type topicState struct {
	partitioner topicPartitioner
	waiting     []pendingRecord
	waitTimer   core.Timer
}

// producerMeta rate-limits the producer's metadata refreshes.
type producerMeta struct {
	pending bool
	backoff bool
}

// pendingRecord is a record with its completion callback.
type pendingRecord struct {
	rec  Record
	done func(Result)
}

// NewProducer returns a producer that sends through cluster. Closing the
// producer does not close the cluster.
func NewProducer(cluster *Cluster, cfg ProducerConfig) (*Producer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Producer{
		cluster:      cluster,
		cfg:          cfg,
		clock:        cluster.env.Clock,
		rand:         cluster.env.Rand.Fork(),
		parts:        make(map[TopicPartition]*partState),
		topics:       make(map[string]*topicState),
		nodeInflight: make(map[int32]int),
	}
	p.id.reset()
	cluster.onMetadata(p.onMetadata)
	return p, nil
}

// Produce sends rec; done runs later, exactly once, with its Result. Records
// to one partition are acknowledged in the order they were produced.
func (p *Producer) Produce(rec Record, done func(Result)) {
	if done == nil {
		panic("client: Produce with a nil callback")
	}
	pr := pendingRecord{rec: rec, done: done}
	if err := p.admit(&pr.rec); err != nil {
		p.clock.AfterFunc(0, func() { pr.done(failedResult(&pr.rec, err, OutcomeDefiniteFailure)) })
		return
	}
	p.buffered++
	if pr.rec.Timestamp == 0 {
		pr.rec.Timestamp = p.clock.Now().UnixMilli()
	}
	ts := p.topic(pr.rec.Topic)
	if len(ts.waiting) > 0 || p.cluster.partitionCount(pr.rec.Topic) == 0 {
		p.wait(ts, pr)
		return
	}
	p.route(ts, pr)
}

// admit checks a record before it is buffered.
func (p *Producer) admit(rec *Record) error {
	switch {
	case p.closed:
		return ErrClosed
	case rec.Topic == "":
		return fmt.Errorf("%w: empty topic", ErrInvalidRecord)
	case rec.sizeBytes()+record.HeaderBytes > p.cfg.MaxRequestBytes:
		return fmt.Errorf("%w: %d bytes, max.request.size is %d", ErrRecordTooLarge, rec.sizeBytes(), p.cfg.MaxRequestBytes)
	case p.buffered >= p.cfg.BufferedRecordsMax:
		return fmt.Errorf("%w: %d records", ErrBufferFull, p.buffered)
	case p.cfg.Partitioner == PartitionerManual && rec.Partition < 0:
		return fmt.Errorf("%w: partition %d", ErrInvalidRecord, rec.Partition)
	}
	if _, ok := p.topics[rec.Topic]; !ok && len(p.topics) >= topicsMax {
		return fmt.Errorf("%w: more than %d topics", ErrInvalidRecord, topicsMax)
	}
	return nil
}

// failedResult is the Result of a record that failed.
func failedResult(rec *Record, err error, outcome Outcome) Result {
	if outcome == OutcomeOK || err == nil {
		panic("client: failedResult without a failure")
	}
	r := *rec
	r.Offset = -1
	return Result{Record: r, Topic: r.Topic, Partition: r.Partition, Offset: -1, Err: err, Outcome: outcome,
		ProducerID: -1, ProducerEpoch: -1, Sequence: -1}
}

// topic returns the state of topic, creating it and registering interest in
// its metadata.
func (p *Producer) topic(name string) *topicState {
	ts, ok := p.topics[name]
	if ok {
		return ts
	}
	if err := p.cluster.addInterest(name); err != nil {
		panic(fmt.Sprintf("client: admit let through topic %q: %v", name, err))
	}
	ts = &topicState{partitioner: topicPartitioner{sticky: -1}}
	p.topics[name] = ts
	i, _ := slices.BinarySearch(p.topicOrder, name)
	p.topicOrder = slices.Insert(p.topicOrder, i, name)
	return ts
}

// wait parks a record until its topic's partition count is known, for at
// most DeliveryTimeout counted from the oldest parked record.
func (p *Producer) wait(ts *topicState, pr pendingRecord) {
	ts.waiting = append(ts.waiting, pr)
	if ts.waitTimer == nil {
		topic := pr.rec.Topic
		ts.waitTimer = p.clock.AfterFunc(p.cfg.DeliveryTimeout, func() { p.onWaitTimeout(topic) })
	}
	p.needMetadata()
}

func (p *Producer) onWaitTimeout(topic string) {
	ts := p.topics[topic]
	ts.waitTimer = nil
	waiting := ts.waiting
	ts.waiting = nil
	err := fmt.Errorf("%w: no metadata for topic %q", ErrDeliveryTimeout, topic)
	if t, ok := p.cluster.Topic(topic); ok && t.Err != nil {
		err = fmt.Errorf("%w: topic %q: %w", ErrDeliveryTimeout, topic, t.Err)
	}
	for i := range waiting {
		p.complete(&waiting[i], failedResult(&waiting[i].rec, err, OutcomeDefiniteFailure))
	}
}

// routeWaiting routes the parked records of topics whose partition count is
// now known.
func (p *Producer) routeWaiting() {
	for _, name := range p.topicOrder {
		ts := p.topics[name]
		if len(ts.waiting) == 0 || p.cluster.partitionCount(name) == 0 {
			continue
		}
		if ts.waitTimer != nil {
			ts.waitTimer.Stop()
			ts.waitTimer = nil
		}
		waiting := ts.waiting
		ts.waiting = nil
		for _, pr := range waiting {
			p.route(ts, pr)
		}
	}
}

// route partitions a record and appends it to its partition's open batch.
func (p *Producer) route(ts *topicState, pr pendingRecord) {
	n := p.cluster.partitionCount(pr.rec.Topic)
	if n <= 0 {
		panic("client: route without a partition count")
	}
	partition := ts.partitioner.pick(p.cfg.Partitioner, p.rand, &pr.rec, n)
	if partition < 0 || partition >= n {
		p.complete(&pr, failedResult(&pr.rec, fmt.Errorf("%w: partition %d of %d", ErrInvalidRecord, partition, n), OutcomeDefiniteFailure))
		return
	}
	pr.rec.Partition = partition
	ps := p.part(TopicPartition{pr.rec.Topic, partition})
	size := pr.rec.sizeBytes()
	if ps.open != nil && ps.open.bytes+size > p.cfg.BatchBytes {
		p.closeOpen(ps)
	}
	if ps.open == nil {
		p.openBatch(ps)
	}
	ps.open.records = append(ps.open.records, pr)
	ps.open.bytes += size
	if ps.open.bytes >= p.cfg.BatchBytes || p.cfg.Linger == 0 || len(p.flushWaiters) > 0 {
		p.closeOpen(ps)
	}
	p.scheduleDrain()
}

// part returns the state of a partition, creating it.
func (p *Producer) part(tp TopicPartition) *partState {
	ps, ok := p.parts[tp]
	if ok {
		return ps
	}
	ps = &partState{tp: tp}
	p.parts[tp] = ps
	i, _ := slices.BinarySearchFunc(p.partOrder, tp, compareTopicPartition)
	p.partOrder = slices.Insert(p.partOrder, i, tp)
	return ps
}

// complete hands a record its Result.
func (p *Producer) complete(pr *pendingRecord, res Result) {
	if p.buffered <= 0 {
		panic("client: completing a record with none buffered")
	}
	p.buffered--
	pr.done(res)
	p.maybeFlushed()
}

// Flush sends every buffered record without waiting for linger; done runs
// once every record produced before the call has completed.
func (p *Producer) Flush(done func()) {
	if done == nil {
		panic("client: Flush with a nil callback")
	}
	p.flushWaiters = append(p.flushWaiters, done)
	for _, tp := range p.partOrder {
		if ps := p.parts[tp]; ps.open != nil {
			p.closeOpen(ps)
		}
	}
	p.scheduleDrain()
	p.clock.AfterFunc(0, p.maybeFlushed)
}

// maybeFlushed runs the Flush callbacks once nothing is buffered.
func (p *Producer) maybeFlushed() {
	if p.buffered != 0 || len(p.flushWaiters) == 0 {
		return
	}
	waiters := p.flushWaiters
	p.flushWaiters = nil
	for _, w := range waiters {
		w()
	}
}

// Buffered returns the number of records produced and not yet completed.
func (p *Producer) Buffered() int { return p.buffered }

// Close fails every record not yet completed: records never sent with
// OutcomeDefiniteFailure, records whose batch was sent with
// OutcomeIndefinite (both with ErrClosed). Flush first to deliver them. The
// cluster stays open.
func (p *Producer) Close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, name := range p.topicOrder {
		ts := p.topics[name]
		if ts.waitTimer != nil {
			ts.waitTimer.Stop()
		}
		waiting := ts.waiting
		ts.waiting = nil
		for i := range waiting {
			p.complete(&waiting[i], failedResult(&waiting[i].rec, ErrClosed, OutcomeDefiniteFailure))
		}
		p.cluster.removeInterest(name)
	}
	for _, tp := range p.partOrder {
		p.failPartition(p.parts[tp], ErrClosed, true)
	}
	if p.buffered != 0 {
		panic(fmt.Sprintf("client: %d records left after Close", p.buffered))
	}
}
