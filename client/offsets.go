package client

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// needMetadata asks for a metadata refresh, at most one at a time and one
// per retry.backoff.ms.
func (c *Consumer) needMetadata() {
	if c.metaPending || c.closed {
		return
	}
	c.metaPending = true
	c.cluster.RefreshMetadata(func(error) {
		c.clock.AfterFunc(c.cfg.RetryBackoff, func() {
			c.metaPending = false
			c.scheduleFetch()
		})
	})
}

// resolve turns a partition's special start offset into a real one: the
// committed offset (OffsetFetch), else the log start or end (ListOffsets).
func (c *Consumer) resolve(cp *consumePart) {
	cp.resolving = true
	version := cp.version
	settle := func(offset int64, err error) {
		if c.closed || c.parts[cp.tp] != cp || cp.version != version {
			return
		}
		cp.resolving = false
		if err != nil {
			c.partitionFailed(cp, err)
			c.scheduleFetch()
			return
		}
		cp.position, cp.fetchOffset = offset, offset
		c.scheduleFetch()
	}
	switch cp.fetchOffset {
	case OffsetCommitted:
		c.fetchCommitted(cp.tp, func(offset int64, err error) {
			if err == nil && offset < 0 {
				c.resetToPolicy(cp, version)
				return
			}
			settle(offset, err)
		})
	case OffsetEarliest, OffsetLatest:
		c.listOffset(cp.tp, cp.fetchOffset, settle)
	default:
		panic(fmt.Sprintf("client: resolving offset %d", cp.fetchOffset))
	}
}

// resetToPolicy starts a partition without a committed offset where
// auto.offset.reset says.
func (c *Consumer) resetToPolicy(cp *consumePart, version uint64) {
	if c.closed || c.parts[cp.tp] != cp || cp.version != version {
		return
	}
	cp.resolving = false
	switch c.cfg.AutoOffsetReset {
	case ResetEarliest:
		cp.position, cp.fetchOffset = OffsetEarliest, OffsetEarliest
	case ResetLatest:
		cp.position, cp.fetchOffset = OffsetLatest, OffsetLatest
	default:
		cp.stopped = true
		c.reportError(fmt.Errorf("%v: no committed offset and auto.offset.reset=none", cp.tp))
	}
	c.scheduleFetch()
}

// listOffsetResult asks the partition's leader for the offset at which (a
// time, or OffsetEarliest or OffsetLatest), with the leader epoch the
// consumer knows so that a stale leader is fenced (KIP-320).
func (c *Consumer) listOffsetResult(tp TopicPartition, which int64, done func(OffsetResult)) {
	failed := func(err error) OffsetResult { return OffsetResult{Offset: -1, Timestamp: -1, Err: err} }
	node, epoch, ok := c.cluster.leader(tp.Topic, tp.Partition)
	if !ok {
		c.needMetadata()
		c.clock.AfterFunc(0, func() { done(failed(errNotSent(fmt.Errorf("%w: no leader for %v", ErrNoBroker, tp)))) })
		return
	}
	req := listOffsetsRequest([]TopicPartition{tp}, which, epoch, c.cfg.ReadCommitted)
	c.cluster.requestNode(node, req, 0, func(r kmsg.Response, err error) {
		if err != nil {
			done(failed(err))
			return
		}
		offsets, err := listOffsetsResult(r.(*kmsg.ListOffsetsResponse), which)
		if err != nil {
			done(failed(err))
			return
		}
		res, ok := offsets[tp]
		if !ok {
			done(failed(fmt.Errorf("%w: ListOffsets omitted %v", ErrProtocol, tp)))
			return
		}
		done(res)
	})
}

// OffsetForTime asks tp's leader for the first record whose timestamp is at
// or after timestamp (milliseconds, KIP-79), as Kafka's offsetsForTimes
// does; done runs later, exactly once, with the record's offset and
// timestamp, or -1 and -1 when no such record is below the high watermark.
// The position does not move: Seek there to read from it.
func (c *Consumer) OffsetForTime(tp TopicPartition, timestamp int64, done func(OffsetResult)) {
	if done == nil {
		panic("client: OffsetForTime with a nil callback")
	}
	if timestamp < 0 {
		c.clock.AfterFunc(0, func() {
			done(OffsetResult{Offset: -1, Timestamp: -1, Err: fmt.Errorf("%w: negative timestamp %d", ErrInvalidRecord, timestamp)})
		})
		return
	}
	c.listOffsetResult(tp, timestamp, done)
}

// listOffset asks the partition's leader for its earliest or latest offset.
func (c *Consumer) listOffset(tp TopicPartition, which int64, done func(int64, error)) {
	c.listOffsetResult(tp, which, func(res OffsetResult) { done(res.Offset, res.Err) })
}

// listOffsetsRequest asks for the offset at timestamp (-1 latest, -2
// earliest) of each partition.
func listOffsetsRequest(tps []TopicPartition, timestamp int64, leaderEpoch int32, readCommitted bool) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if readCommitted {
		req.IsolationLevel = 1
	}
	for _, tp := range tps {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewListOffsetsRequestTopic()
			t.Topic = tp.Topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition = tp.Partition
		p.CurrentLeaderEpoch = leaderEpoch
		p.Timestamp = timestamp
		p.MaxNumOffsets = 1
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, p)
	}
	return req
}

// OffsetResult is one partition's answer to ListOffsets.
type OffsetResult struct {
	// Offset is the offset found. A lookup by time (KIP-79) answers -1
	// when no record at or after the time is below the high watermark.
	Offset int64
	// Timestamp is, for a lookup by time, the found record's timestamp in
	// milliseconds (-1 when none); for the special lookups it is -1.
	Timestamp int64
	Err       error
}

// listOffsetsResult reads a ListOffsets response to a request for
// timestamp. Only a lookup by time may answer no offset (-1).
func listOffsetsResult(resp *kmsg.ListOffsetsResponse, timestamp int64) (map[TopicPartition]OffsetResult, error) {
	out := make(map[TopicPartition]OffsetResult)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			res := OffsetResult{Offset: p.Offset, Timestamp: p.Timestamp, Err: kafkaError(p.ErrorCode)}
			if res.Err == nil && p.Offset < 0 && (timestamp < 0 || p.Offset != -1) {
				return nil, fmt.Errorf("%w: ListOffsets gave offset %d", ErrProtocol, p.Offset)
			}
			out[TopicPartition{t.Topic, p.Partition}] = res
		}
	}
	return out, nil
}

// fetchCommitted asks the group coordinator for tp's committed offset (-1
// when none).
func (c *Consumer) fetchCommitted(tp TopicPartition, done func(int64, error)) {
	c.cluster.findCoordinator(c.cfg.Group, func(node int32, err error) {
		if err != nil {
			done(-1, err)
			return
		}
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = c.cfg.Group
		t := kmsg.NewOffsetFetchRequestTopic()
		t.Topic = tp.Topic
		t.Partitions = []int32{tp.Partition}
		req.Topics = append(req.Topics, t)
		c.cluster.requestNode(node, req, 0, func(r kmsg.Response, err error) {
			if err != nil {
				c.cluster.forgetCoordinator(c.cfg.Group)
				done(-1, err)
				return
			}
			resp := r.(*kmsg.OffsetFetchResponse)
			if err := kafkaError(resp.ErrorCode); err != nil {
				c.coordinatorError(err)
				done(-1, err)
				return
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rt.Topic == tp.Topic && rp.Partition == tp.Partition {
						done(rp.Offset, kafkaError(rp.ErrorCode))
						return
					}
				}
			}
			done(-1, nil)
		})
	})
}

// coordinatorError forgets the coordinator after errors that say it moved.
func (c *Consumer) coordinatorError(err error) {
	if staleMetadata(err) {
		c.cluster.forgetCoordinator(c.cfg.Group)
	}
}

// Commit stores offsets as the group's committed offsets (OffsetCommit).
// Each offset is the next record to consume, as in Kafka. With a
// subscription the commit carries the member id and generation, so a commit
// from a member that lost its partitions is refused. done runs later with
// the first error.
func (c *Consumer) Commit(offsets []PartitionOffset, done func(error)) {
	if c.cfg.Group == "" || c.closed {
		err := fmt.Errorf("%w: Commit needs a group and an open consumer", ErrInvalidConfig)
		c.clock.AfterFunc(0, func() { done(err) })
		return
	}
	for _, po := range offsets {
		if po.Offset < 0 || po.Topic == "" || po.Partition < 0 {
			err := fmt.Errorf("%w: commit %+v", ErrInvalidRecord, po)
			c.clock.AfterFunc(0, func() { done(err) })
			return
		}
	}
	generation, memberID := int32(-1), ""
	if c.group != nil {
		generation, memberID = c.group.generation, c.group.memberID
	}
	c.sendCommit(c.commitRequest(generation, memberID, offsets), done)
}

// commitRequest builds the OffsetCommit of offsets for the consumer's group
// under the membership given (generation -1 and no member id for a
// consumer outside the group's membership).
func (c *Consumer) commitRequest(generation int32, memberID string, offsets []PartitionOffset) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = c.cfg.Group
	req.Generation, req.MemberID = generation, memberID
	req.RetentionTimeMillis = -1
	for _, po := range offsets {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != po.Topic {
			t := kmsg.NewOffsetCommitRequestTopic()
			t.Topic = po.Topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = po.Partition, po.Offset, -1
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, p)
	}
	return req
}

// sendCommit sends an OffsetCommit to the group's coordinator. Commits
// leave in the order they were made, as Kafka's consumer sends them: each
// waits until the one before it was handed to its connection, which sends
// requests in order, so that a commit looking up the coordinator is never
// overtaken by a later one that found it cached (sim seed 603303: an
// auto-commit of 3004 overtook an explicit commit of 3003, and the group's
// committed offset went back to 3003).
func (c *Consumer) sendCommit(req *kmsg.OffsetCommitRequest, done func(error)) {
	c.commitQueue = append(c.commitQueue, pendingCommit{req: req, done: done})
	if len(c.commitQueue) == 1 {
		c.sendHeadCommit()
	}
}

// pendingCommit is a commit waiting for the ones before it to leave.
type pendingCommit struct {
	req  *kmsg.OffsetCommitRequest
	done func(error)
}

// sendHeadCommit finds the coordinator for the oldest queued commit, hands
// the commit to its connection and goes on with the next.
func (c *Consumer) sendHeadCommit() {
	head := c.commitQueue[0]
	c.cluster.findCoordinator(c.cfg.Group, func(node int32, err error) {
		c.commitQueue = c.commitQueue[1:]
		if err != nil {
			head.done(err)
		} else {
			c.requestCommit(node, head.req, head.done)
		}
		if len(c.commitQueue) > 0 {
			c.sendHeadCommit()
		}
	})
}

// requestCommit sends one OffsetCommit to node and reports its outcome.
func (c *Consumer) requestCommit(node int32, req *kmsg.OffsetCommitRequest, done func(error)) {
	c.cluster.requestNode(node, req, 0, func(r kmsg.Response, err error) {
		if err != nil {
			c.cluster.forgetCoordinator(c.cfg.Group)
			done(err)
			return
		}
		for _, t := range r.(*kmsg.OffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				if err := kafkaError(p.ErrorCode); err != nil {
					c.coordinatorError(err)
					done(fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, err))
					return
				}
			}
		}
		done(nil)
	})
}

// Positions returns the delivered position of every assigned partition
// whose position is known, in partition order.
func (c *Consumer) Positions() []PartitionOffset {
	var out []PartitionOffset
	for _, tp := range c.partOrder {
		if cp := c.parts[tp]; cp.position >= 0 {
			out = append(out, PartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: cp.position})
		}
	}
	return out
}

// CommitPositions commits Positions(): everything delivered by Poll so far.
func (c *Consumer) CommitPositions(done func(error)) {
	positions := c.Positions()
	if len(positions) == 0 {
		c.clock.AfterFunc(0, func() { done(nil) })
		return
	}
	c.Commit(positions, done)
}
