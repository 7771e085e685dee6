package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/planted"
	"github.com/kafkasim/kafkasim/core/record"
)

// legacyMagicOffset is where both the v2 batch header and the legacy (v0,
// v1) message format keep their magic byte.
const legacyMagicOffset = 16

// handleProduce answers Produce (key 0), versions 0-11.
//
// Each partition's records must be exactly one v2 record batch (versions 0-2
// nominally carry the legacy message-set format, which is not accepted: such
// batches fail with CORRUPT_MESSAGE). The batch is validated (header, CRC,
// size against max.message.bytes), checked against the producer's idempotence
// state, stamped with its offset and leader epoch, and appended as received:
// compressed batches stay compressed. acks=0 gets no response; acks=1 is
// answered after the write; acks=all waits in the purgatory until the high
// watermark passes every batch of the request (in durable mode, until the
// group commit made them durable; durability.go), or answers
// REQUEST_TIMED_OUT for the partitions still waiting after the request's
// timeout. A retried duplicate of an idempotent producer waits the same way
// for its original. An acks=0 request with an error closes the connection,
// as in Kafka, since the producer sees no answer. acks=all is refused with
// NOT_ENOUGH_REPLICAS while the ISR (the leader alone on a standalone
// broker) is smaller than min.insync.replicas.
// Transactional batches are rejected until transactions exist.
func handleProduce(n *Node, r *request, req kmsg.Request) {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	now := n.now()
	failed := false
	// waits are the partitions an acks=all answer must wait for, by their
	// place in the response (filled in once the response is complete).
	type waitAt struct {
		topic, partition int
		wait             produceWait
	}
	var waits []waitAt
	for _, rt := range pr.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			result, err := n.producePartition(pr, rt.Topic, rp, now)
			n.metrics.produced(rt.Topic, rp.Records, result, err)
			sp.BaseOffset = result.baseOffset
			sp.LogAppendTime = result.logAppendTime
			p := n.catalog.partition(rt.Topic, rp.Partition)
			sp.LogStartOffset = -1
			if p != nil && !unknownLogStart(err) {
				sp.LogStartOffset = p.log.LogStartOffset()
			}
			setError(&sp.ErrorCode, &sp.ErrorMessage, err)
			if err != nil {
				sp.BaseOffset, sp.LogAppendTime = -1, -1
				failed = true
			} else if pr.Acks == -1 && result.lastOffset >= p.highWatermark() && !(result.duplicate && planted.Is("dup-before-durable")) {
				waits = append(waits, waitAt{topic: len(resp.Topics), partition: len(st.Partitions),
					wait: produceWait{partition: p, endOffset: result.lastOffset + 1}})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(waits) > 0 {
		parked := make([]produceWait, len(waits))
		for i, w := range waits {
			parked[i] = w.wait
			parked[i].response = &resp.Topics[w.topic].Partitions[w.partition]
		}
		n.parkProduce(r, resp, pr.TimeoutMillis, parked)
		return
	}
	if pr.Acks == 0 {
		r.respond(nil)
		if failed {
			// Kafka's way to tell an acks=0 producer that something went
			// wrong (say, a stale leader): it cannot see an error code, but
			// it sees the connection close and refreshes its metadata.
			r.conn.close()
		}
		return
	}
	r.respond(resp)
}

func (n *Node) producePartition(pr *kmsg.ProduceRequest, topicName string, rp kmsg.ProduceRequestTopicPartition, now time.Time) (appendResult, error) {
	failed := appendResult{baseOffset: -1, lastOffset: -1, logAppendTime: -1}
	if pr.Acks != 0 && pr.Acks != 1 && pr.Acks != -1 {
		return failed, fmt.Errorf("%w: acks=%d", kerr.InvalidRequiredAcks, pr.Acks)
	}
	if pr.TransactionID != nil {
		return failed, fmt.Errorf("%w: transactions are not supported yet", kerr.TransactionalIDAuthorizationFailed)
	}
	p := n.catalog.partition(topicName, rp.Partition)
	if p == nil {
		return failed, fmt.Errorf("%w: %s-%d", n.missingPartition(topicName, rp.Partition), topicName, rp.Partition)
	}
	if p.topic.internal {
		return failed, fmt.Errorf("%w: %s is internal", kerr.InvalidTopicException, topicName)
	}
	if isr := p.isrSize(); pr.Acks == -1 && isr < int(p.topic.config.minInsyncReplicas) {
		return failed, fmt.Errorf("%w: ISR has %d replicas, min.insync.replicas is %d",
			kerr.NotEnoughReplicas, isr, p.topic.config.minInsyncReplicas)
	}
	if len(rp.Records) > legacyMagicOffset && rp.Records[legacyMagicOffset] < record.Magic {
		// Message format v0/v1 puts its magic byte at the same place. A
		// Produce v3+ request may only carry v2 batches: Kafka answers
		// INVALID_RECORD (ProduceRequest.validateRecords); older requests
		// carry the legacy format by definition, which this broker does not
		// convert, so they get UNSUPPORTED_FOR_MESSAGE_FORMAT.
		if pr.Version >= 3 {
			return failed, fmt.Errorf("%w: %w: produce requests v3 and later are only allowed to contain record batches with magic version 2, not v%d",
				kerr.InvalidRecord, errRefusedBeforeLog, rp.Records[legacyMagicOffset])
		}
		return failed, fmt.Errorf("%w: %w: message format v%d; this broker stores only v2 record batches (Produce v3+ clients)",
			kerr.UnsupportedForMessageFormat, errRefusedBeforeLog, rp.Records[legacyMagicOffset])
	}
	size, err := record.BatchSize(rp.Records)
	if err != nil {
		return failed, fmt.Errorf("%w: %v", kerr.CorruptMessage, err)
	}
	if size > len(rp.Records) {
		return failed, fmt.Errorf("%w: batch of %d bytes is truncated to %d", kerr.CorruptMessage, size, len(rp.Records))
	}
	if size < len(rp.Records) {
		return failed, fmt.Errorf("%w: a partition's records must be exactly one batch (%d of %d bytes)",
			kerr.InvalidRecord, size, len(rp.Records))
	}
	return p.append(rp.Records, now)
}

// errRefusedBeforeLog marks the produce errors Kafka raises in KafkaApis,
// before the log is reached, which answer log start -1.
var errRefusedBeforeLog = errors.New("refused before the log")

// unknownLogStart reports whether a failed produce answers log start -1, as
// Kafka's ReplicaManager.appendToLocalLog does for the errors it raises
// before the log is reached (UNKNOWN_LOG_APPEND_INFO); for errors of the
// log's own validation (LogValidator) it answers the real log start.
func unknownLogStart(err error) bool {
	if errors.Is(err, errRefusedBeforeLog) {
		return true
	}
	for _, code := range []*kerr.Error{kerr.UnknownTopicOrPartition, kerr.NotLeaderForPartition,
		kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.CorruptMessage, kerr.KafkaStorageError} {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// setError fills a response's error code and, where the version has one,
// its error message.
func setError(code *int16, message **string, err error) {
	*code = errorCode(err)
	if err != nil && message != nil {
		text := err.Error()
		*message = &text
	}
}

// asKafkaError finds the Kafka error code an error wraps.
func asKafkaError(err error) (*kerr.Error, bool) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke, true
	}
	return nil, false
}
