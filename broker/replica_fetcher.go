package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// fetchVersion is the Fetch version followers send: 15, with the replica's
// id and broker epoch in ReplicaState (KIP-903) and topics by id (KIP-516).
const fetchVersion = 15

// replicaFetcher copies the partitions one leader leads to this broker's
// followers of them. States: idle, fetching (one Fetch in flight), backing
// off. A Fetch goes out only when every partition it would carry is
// durable up to its log end (in durable mode), so that the offset a
// follower fetches from, which the leader counts towards the high
// watermark, never names data a crash could take away.
type replicaFetcher struct {
	cluster *cluster
	leader  int32
	channel *quorum.Channel
	// partitions are the followers fetching from leader, in topic and
	// partition order.
	partitions []*partition
	// inFlight maps each partition of the Fetch in flight to the leader
	// epoch it was sent in; nil when none is. sent counts the Fetches, so
	// that a late answer to an abandoned one is recognized.
	inFlight map[*partition]int32
	sent     int64
	backoff  core.Timer
	// stallTimer lets the partitions whose last fetch failed try again
	// after replica.fetch.backoff.ms; the others go on fetching meanwhile.
	stallTimer core.Timer
}

// follow adds a follower to its leader's fetcher.
func (c *cluster) follow(p *partition, leader int32) {
	f := c.fetchers[leader]
	if f == nil {
		f = &replicaFetcher{cluster: c, leader: leader}
		c.fetchers[leader] = f
	}
	if !slices.Contains(f.partitions, p) {
		f.partitions = append(f.partitions, p)
		slices.SortFunc(f.partitions, func(a, b *partition) int {
			if n := strings.Compare(a.topic.name, b.topic.name); n != 0 {
				return n
			}
			return int(a.index - b.index)
		})
	}
	f.maybeSend()
}

// unfollow removes a partition from its leader's fetcher.
func (c *cluster) unfollow(p *partition, leader int32) {
	f := c.fetchers[leader]
	if f == nil {
		return
	}
	f.partitions = slices.DeleteFunc(f.partitions, func(other *partition) bool { return other == p })
	delete(f.inFlight, p)
}

// fetchAgain lets a follower's fetcher send its next Fetch once the
// follower's sync completed.
func (c *cluster) fetchAgain(p *partition) {
	if f := c.fetchers[p.repl.state.Leader]; f != nil {
		f.maybeSend()
	}
}

// stopFetchers closes every fetcher's connection.
func (c *cluster) stopFetchers() {
	ids := make([]int32, 0, len(c.fetchers))
	for id := range c.fetchers { // order-independent: sorted below
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		f := c.fetchers[id]
		if f.backoff != nil {
			f.backoff.Stop()
		}
		if f.stallTimer != nil {
			f.stallTimer.Stop()
		}
		if f.channel != nil {
			f.channel.Close()
		}
	}
}

// ready reports whether p may be in the next Fetch, and whether it holds
// the Fetch back (data not durable yet).
func (f *replicaFetcher) ready(p *partition) (include, wait bool) {
	if p.closed || p.log == nil || p.offline != nil || p.repl.role != roleFollower || p.repl.fetchStalled {
		return false, false
	}
	if p.log.SyncInFlight() || (!p.writeCaching() && p.log.DurableEndOffset() < p.log.LogEndOffset()) {
		return false, true
	}
	if p.log.LatestEpoch() > p.leaderEpoch {
		// The image is older than the log: this broker has not applied
		// the leadership its own data comes from, and fetching with a
		// stale epoch from a stale leader could truncate committed data.
		return false, false
	}
	return true, false
}

// maybeSend sends the next Fetch if none is in flight, nothing backs off
// and every partition is durable.
func (f *replicaFetcher) maybeSend() {
	c := f.cluster
	if f.inFlight != nil || f.backoff != nil || c.node.stopped || len(f.partitions) == 0 {
		return
	}
	var carried []*partition
	for _, p := range f.partitions {
		include, wait := f.ready(p)
		if wait {
			return // the sync's completion calls maybeSend again
		}
		if include {
			carried = append(carried, p)
		}
	}
	if len(carried) == 0 {
		return
	}
	if !f.connect() {
		f.backOff()
		return
	}
	req := f.request(carried)
	f.inFlight = make(map[*partition]int32, len(carried))
	for _, p := range carried {
		f.inFlight[p] = p.leaderEpoch
	}
	f.sent++
	seq := f.sent
	f.channel.Send(req, func(resp kmsg.Response, err error) { f.answered(seq, resp, err) })
}

// connect makes sure the channel goes to the leader's current address.
func (f *replicaFetcher) connect() bool {
	host, port, ok := f.cluster.brokerEndpoint(f.leader)
	if !ok {
		return false
	}
	address := fmt.Sprintf("%s:%d", host, port)
	if f.channel != nil && f.channel.Address() == address {
		return true
	}
	if f.channel != nil {
		f.channel.Close()
	}
	n := f.cluster.node
	timeout := time.Duration(n.cfg.QuorumRequestTimeoutMs+n.cfg.ReplicaFetchWaitMaxMs) * time.Millisecond
	f.channel = quorum.NewChannel(n.env, n.log, address, fmt.Sprintf("replica-fetcher-%d", n.cfg.NodeID), timeout)
	return true
}

// request builds the Fetch for the carried partitions.
func (f *replicaFetcher) request(carried []*partition) *kmsg.FetchRequest {
	n := f.cluster.node
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.ReplicaID = -1
	req.ReplicaState.ID = n.cfg.NodeID
	req.ReplicaState.Epoch = f.cluster.lifecycle.brokerEpoch
	req.MaxWaitMillis = int32(n.cfg.ReplicaFetchWaitMaxMs)
	req.MinBytes = 1
	req.MaxBytes = int32(n.cfg.ReplicaFetchResponseMaxBytes)
	req.SessionID, req.SessionEpoch = 0, -1
	for _, p := range carried {
		if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].TopicID != p.topic.id {
			rt := kmsg.NewFetchRequestTopic()
			rt.TopicID = p.topic.id
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = p.leaderEpoch
		rp.FetchOffset = p.log.LogEndOffset()
		rp.LastFetchedEpoch = max(p.log.LatestEpoch(), -1)
		rp.LogStartOffset = p.log.LogStartOffset()
		rp.PartitionMaxBytes = int32(n.cfg.ReplicaFetchMaxBytes)
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// backOff waits replica.fetch.backoff.ms before the next Fetch and lets
// stalled partitions try again then.
func (f *replicaFetcher) backOff() { f.afterBackoff(&f.backoff) }

// afterBackoff sets the timer in slot, unless one is set, to clear every
// partition's stall after replica.fetch.backoff.ms and send again: the
// whole fetcher's backoff (backOff, which maybeSend waits for) or only the
// stalled partitions' (retryStalled).
func (f *replicaFetcher) afterBackoff(slot *core.Timer) {
	if *slot != nil {
		return
	}
	n := f.cluster.node
	*slot = n.env.Clock.AfterFunc(time.Duration(n.cfg.ReplicaFetchBackoffMs)*time.Millisecond, func() {
		*slot = nil
		if n.stopped {
			return
		}
		for _, p := range f.partitions {
			p.repl.fetchStalled = false
		}
		f.maybeSend()
	})
}

// answered takes a Fetch's answer.
func (f *replicaFetcher) answered(seq int64, resp kmsg.Response, err error) {
	n := f.cluster.node
	if n.stopped || f.inFlight == nil || seq != f.sent {
		return
	}
	sent := f.inFlight
	f.inFlight = nil
	if err == nil && resp.(*kmsg.FetchResponse).ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.(*kmsg.FetchResponse).ErrorCode)
	}
	if err != nil {
		n.log.Debug("replica fetch failed", slog.Int("leader", int(f.leader)), slog.Any("err", err))
		f.backOff()
		return
	}
	stalled := false
	for _, rt := range resp.(*kmsg.FetchResponse).Topics {
		t := n.catalog.byID[rt.TopicID]
		if t == nil {
			continue
		}
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			if rp.Partition < 0 || int(rp.Partition) >= len(t.partitions) {
				continue
			}
			p := t.partitions[rp.Partition]
			epoch, ok := sent[p]
			if !ok || p.closed || p.repl.role != roleFollower || p.repl.state.Leader != f.leader || p.leaderEpoch != epoch {
				continue // the partition moved on while the Fetch was out
			}
			if !p.fetched(rp) {
				p.repl.fetchStalled = true
				stalled = true
			}
		}
	}
	if stalled {
		f.retryStalled()
	}
	f.maybeSend()
}

// retryStalled lets the partitions whose fetch failed try again after
// replica.fetch.backoff.ms, as Kafka's fetcher delays only the partitions
// in error: the others keep fetching. Backing off the whole fetcher for
// one partition that keeps failing (its leader's copy offline, answering
// NOT_LEADER_FOR_PARTITION) held back every other partition of that
// leader, __consumer_offsets too, and each commit took a second or more
// (sim seed 599).
func (f *replicaFetcher) retryStalled() { f.afterBackoff(&f.stallTimer) }

// fetched applies one partition of a Fetch answer to a follower: an error,
// a divergence to truncate, or batches to append. It returns false when
// the partition should back off.
func (p *partition) fetched(rp *kmsg.FetchResponseTopicPartition) bool {
	if p.log.SyncInFlight() {
		// Nothing in flight was expected (the Fetch waited for it); the
		// answer is dropped and the same offset fetched again.
		return true
	}
	switch {
	case rp.ErrorCode == kerr.OffsetOutOfRange.Code:
		return p.restartAt(rp.LogStartOffset)
	case rp.ErrorCode != 0:
		p.node.log.Debug("replica fetch of a partition failed", slog.String("partition", p.String()),
			slog.String("err", kerr.ErrorForCode(rp.ErrorCode).Error()))
		return false
	case (rp.DivergingEpoch.Epoch != -1 || rp.DivergingEpoch.EndOffset != -1) &&
		rp.DivergingEpoch.EndOffset <= rp.LogStartOffset && rp.LogStartOffset > p.log.LogStartOffset():
		// The leader's retention deleted the epochs this follower would
		// have to compare below its log start: it names its log start as
		// the end of an epoch it no longer knows. What this follower holds
		// below that cannot be checked, and may differ from what the
		// leader held there (sim seed 48: a deposed leader kept its own
		// suffix below the new leader's log start, and the replicas
		// diverged below the high watermark). Kafka moves the follower's
		// log start up; this follower starts over at the leader's.
		return p.restartAt(rp.LogStartOffset)
	case rp.DivergingEpoch.Epoch != -1 || rp.DivergingEpoch.EndOffset != -1:
		return p.truncateDiverged(rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset)
	}
	if !p.appendFetched(rp.RecordBatches) {
		return false
	}
	hw := min(rp.HighWatermark, p.log.LogEndOffset())
	if hw > p.repl.highWatermark {
		p.repl.highWatermark = hw
		p.highWatermarkAdvanced()
	}
	if start := min(rp.LogStartOffset, p.repl.highWatermark); start > p.log.LogStartOffset() {
		// The follower's log start follows the leader's, as Kafka's does:
		// otherwise a replica elected later would serve records the old
		// leader's retention had deleted, and that consumers had been
		// reset past (sim seed 100250: a poll skip over records that came
		// back).
		if err := p.log.IncrementLogStartOffset(start); err != nil {
			p.storageFailure("log start", err)
			return false
		}
		p.removeSnapshotsBelow(p.log.LogStartOffset())
	}
	return true
}

// appendFetched appends the whole batches of a Fetch answer one by one
// (so that a roll between two of them snapshots the producer table as the
// leader's append does), records them in the producer table and schedules
// the group commit.
func (p *partition) appendFetched(data []byte) bool {
	now := p.node.now()
	durableBefore := p.log.DurableEndOffset()
	appended := false
	for len(data) > 0 {
		size, err := record.BatchSize(data)
		if err != nil || size > len(data) {
			break // a partial batch at the end: fetched again next time
		}
		batch := data[:size]
		data = data[size:]
		h, err := record.ParseHeader(batch)
		if err != nil {
			break
		}
		if h.BaseOffset < p.log.LogEndOffset() {
			continue // already here (a Fetch that started inside a batch)
		}
		if _, err := p.log.AppendReplicated(batch, now); err != nil {
			if errors.Is(err, storage.ErrCorruptBatch) || errors.Is(err, storage.ErrStaleEpoch) {
				p.node.log.Warn("leader sent a batch this follower refuses", slog.String("partition", p.String()), slog.Any("err", err))
			} else {
				p.storageFailure("replicate", err)
			}
			break
		}
		appended = true
		if p.rolledAt(h.BaseOffset) {
			p.snapshotAtRoll(h.BaseOffset)
		}
		p.producers.record(&h, batchTimestampMs(&h, now.UnixMilli()))
	}
	if appended {
		p.afterAppend(durableBefore)
	}
	return p.offline == nil
}

// truncateDiverged truncates a follower whose log diverged from the
// leader's, as Kafka's fetcher does with a DivergingEpoch: the leader
// holds epoch up to endOffset. If this log holds that epoch too, it is
// cut at the smaller of the two ends (the true divergence point); if not,
// it is cut at the end of its own largest epoch below, and the next Fetch
// asks again with that epoch. Never to the high watermark (KIP-101).
func (p *partition) truncateDiverged(epoch int32, endOffset int64) bool {
	leo := p.log.LogEndOffset()
	target := min(endOffset, leo)
	if epoch >= 0 {
		ownEpoch, ownEnd := p.log.EndOffsetForEpoch(epoch)
		switch {
		case ownEpoch == epoch:
			target = min(endOffset, ownEnd)
		case ownEpoch >= 0 && ownEnd >= 0:
			target = min(ownEnd, leo)
		}
	}
	if target < 0 {
		target = p.log.LogStartOffset()
	}
	return p.truncateTo(target)
}

// truncateTo cuts the log at target, then rebuilds the producer table from
// what is left and lowers the high watermark if the cut went below it
// (only an unclean election can make that happen).
func (p *partition) truncateTo(target int64) bool {
	if target >= p.log.LogEndOffset() {
		// No batch goes; an epoch this broker assigned when it led, with
		// no batch, does (storage.Log.AssignLeaderEpoch).
		if err := p.log.ForgetEpochsFrom(target); err != nil {
			p.storageFailure("truncate", err)
			return false
		}
		return true
	}
	p.node.log.Info("truncating a diverged replica", slog.String("partition", p.String()),
		slog.Int64("from", p.log.LogEndOffset()), slog.Int64("to", target), slog.Int64("high_watermark", p.repl.highWatermark))
	if err := p.log.TruncateTo(target, p.node.now()); err != nil {
		p.storageFailure("truncate", err)
		return false
	}
	return p.afterTruncation()
}

// restartAt empties a follower's log and restarts it at the leader's log
// start, when the offset it fetched is out of the leader's range.
func (p *partition) restartAt(leaderStart int64) bool {
	if leaderStart < 0 {
		return false
	}
	p.node.log.Info("restarting a replica at the leader's log start", slog.String("partition", p.String()),
		slog.Int64("from", p.log.LogEndOffset()), slog.Int64("log_start", leaderStart))
	if err := p.log.TruncateFullyAndStartAt(leaderStart, p.node.now()); err != nil {
		p.storageFailure("truncate", err)
		return false
	}
	return p.afterTruncation()
}

// afterTruncation rebuilds what depends on the log's end.
func (p *partition) afterTruncation() bool {
	p.activeSegmentBase = p.currentSegmentBase()
	if err := p.loadProducerState(); err != nil {
		p.storageFailure("truncate", err)
		return false
	}
	end := p.log.LogEndOffset()
	p.repl.highWatermark = max(min(p.repl.highWatermark, end), p.log.LogStartOffset())
	p.highWatermarkSeen = p.repl.highWatermark
	return true
}
