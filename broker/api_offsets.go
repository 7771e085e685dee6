package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/planted"
)

// Special timestamps of ListOffsets.
const (
	listOffsetsLatest   = -1
	listOffsetsEarliest = -2
)

// handleListOffsets answers ListOffsets (key 2), versions 0-6: the latest
// offset (the high watermark), the earliest (the log start offset), or the
// first record whose timestamp is at or after the given one (KIP-79; the
// time index finds the batch, its records the record). v0 answers in its old
// array form with the one offset found.
func handleListOffsets(n *Node, r *request, req kmsg.Request) {
	lr := req.(*kmsg.ListOffsetsRequest)
	resp := lr.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range lr.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			p := n.catalog.partition(rt.Topic, rp.Partition)
			err := n.missingPartition(rt.Topic, rp.Partition)
			if p != nil {
				err = n.listOffset(p, rp, &sp)
			} else {
				sp.Timestamp, sp.Offset = -1, -1
			}
			sp.ErrorCode = errorCode(err)
			if err == nil && lr.Version == 0 && sp.Offset >= 0 {
				sp.OldStyleOffsets = []int64{sp.Offset}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	r.respond(resp)
}

func (n *Node) listOffset(p *partition, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	sp.Timestamp, sp.Offset = -1, -1
	if p == nil {
		return kerr.UnknownTopicOrPartition
	}
	if p.offline != nil {
		return p.offlineError()
	}
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); err != nil {
		return err
	}
	sp.LeaderEpoch = p.leaderEpoch
	switch {
	case rp.Timestamp == listOffsetsLatest:
		if err := p.checkHighWatermarkCaughtUp(); err != nil {
			return err
		}
		sp.Offset = p.highWatermark()
	case rp.Timestamp == listOffsetsEarliest:
		sp.Offset = p.log.LogStartOffset()
	case rp.Timestamp < 0:
		return fmt.Errorf("%w: timestamp %d", kerr.UnsupportedVersion, rp.Timestamp)
	default:
		return listOffsetForTimestamp(p, rp.Timestamp, sp)
	}
	return nil
}

// listOffsetForTimestamp answers a lookup by time as KIP-79 defines it and
// Kafka's LogSegment.findOffsetByTimestamp answers it: the first record
// whose timestamp is at or after timestamp, with that record's offset,
// timestamp and its batch's leader epoch. When no committed record
// qualifies, offset, timestamp and leader epoch are all -1, as Kafka's
// ListOffsets answers (an unknown TimestampAndOffset).
func listOffsetForTimestamp(p *partition, timestamp int64, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	sp.LeaderEpoch = -1
	match, ok, err := p.log.RecordForTimestamp(timestamp)
	if err != nil {
		return p.storageFailure("list offsets", err)
	}
	if planted.Is("time-lookup-batch-offset") {
		match.Offset, match.Timestamp, _, _ = p.log.OffsetForTimestamp(timestamp)
	}
	if ok && match.Offset < p.highWatermark() {
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = match.Offset, match.Timestamp, match.LeaderEpoch
		return nil
	}
	return p.checkHighWatermarkCaughtUp()
}

// checkHighWatermarkCaughtUp answers OFFSET_NOT_AVAILABLE while a new
// leader's high watermark is below the first offset of its epoch (KIP-207):
// the high watermark it inherited may be older than the one consumers
// already saw, and answering with it would send them back.
func (p *partition) checkHighWatermarkCaughtUp() error {
	if p.replicated() && p.repl.role == roleLeader && p.highWatermark() < p.repl.epochStartOffset {
		return fmt.Errorf("%w: the high watermark %d is below the leader epoch's start %d", kerr.OffsetNotAvailable,
			p.highWatermark(), p.repl.epochStartOffset)
	}
	return nil
}

// handleOffsetForLeaderEpoch answers OffsetForLeaderEpoch (key 23), versions
// 0-4: for a leader epoch, the largest epoch at most it that the log holds
// and the offset where the next epoch starts (KIP-101/279). Followers and
// consumers use it to detect divergent logs after a leader change.
func handleOffsetForLeaderEpoch(n *Node, r *request, req kmsg.Request) {
	or := req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := or.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range or.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p := n.catalog.partition(rt.Topic, rp.Partition)
			var err error
			if p == nil {
				err = n.missingPartition(rt.Topic, rp.Partition)
			} else if p.offline != nil {
				err = p.offlineError()
			} else if err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch); err == nil {
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	r.respond(resp)
}

// handleInitProducerID answers InitProducerId (key 22), versions 0-4, for
// idempotent producers: a producer id never handed out before (the id block
// is made durable first) with epoch 0. Transactional ids are not supported
// yet and are refused.
func handleInitProducerID(n *Node, r *request, req kmsg.Request) {
	ir := req.(*kmsg.InitProducerIDRequest)
	resp := ir.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if ir.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		r.respond(resp)
		return
	}
	if n.cluster != nil {
		id, ok := n.cluster.producerIDs.allocate()
		if !ok {
			// A block is on its way from the controller; retriable.
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		} else {
			resp.ProducerID, resp.ProducerEpoch = id, 0
		}
		r.respond(resp)
		return
	}
	id, err := n.producerIDs.allocate()
	if err != nil {
		n.log.Error("cannot allocate a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		r.respond(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	r.respond(resp)
}
