package broker

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/broker/storage"
)

// Offline partitions.
//
// A single broker cannot repair corrupt stored data: only a replica could.
// So when storage reports corruption at rest (storage.ErrCorruption: a
// batch that stays invalid over agreeing reads where valid data must be,
// found by recovery, by a read or by the scrubber), that one partition goes
// offline: it serves and writes nothing, answers KAFKA_STORAGE_ERROR, keeps
// every byte on disk untouched, and the rest of the broker keeps serving.
// In a cluster the other replicas repair it (replica_repair.go); a
// standalone broker's waits for an operator to restore the files or delete
// the topic.
//
// A __consumer_offsets partition goes offline the same way, wherever the
// damage is found (recovery, the startup replay of the group coordinator,
// a read or the scrubber). As Kafka's coordinator does when it loses a
// partition, the coordinator then unloads the groups whose offsets live in
// it (group.Coordinator.UnloadPartition): their state is unavailable, not
// lost or reset. FindCoordinator answers COORDINATOR_NOT_AVAILABLE for
// them, group requests NOT_COORDINATOR, and no offset fetch answers
// "nothing committed", which would make consumers reset. Groups in the
// other offsets partitions, and every other topic, keep being served.

// scrubBytesPerTick bounds how much of one partition the scrubber reads
// per tick (log.flush.offset.checkpoint.interval.ms, a second by default),
// so that scrubbing never competes with clients for the loop.
const scrubBytesPerTick = 1 << 20

// openOffline is the partition that recovery found corrupt: no log, only
// the error that explains why.
func openOffline(n *Node, t *topic, index int32, dir string, err error) *partition {
	p := &partition{node: n, topic: t, index: index, dir: dir}
	p.goOffline("recovery", err)
	return p
}

// logRecovery logs what recovery did to a partition's files, if anything.
func logRecovery(n *Node, dir string, report storage.RecoveryReport) {
	if report.TruncatedFile != "" || report.CopiedSegments > 0 || report.SyncFailureRecorded {
		n.log.Warn("recovered a partition after a crash", slog.String("dir", dir),
			slog.String("torn_tail_file", report.TruncatedFile), slog.Int64("cut_at", report.TruncatedPosition),
			slog.Int64("cut_bytes", report.TruncatedBytes), slog.Int("removed_segments", report.RemovedSegments),
			slog.Bool("after_failed_fsync", report.SyncFailureRecorded), slog.Int("copied_segments", report.CopiedSegments))
	}
}

// goOffline takes the partition offline because of err, which wraps
// storage.ErrCorruption. Its log is failed (nothing may write to it again)
// but not closed, and its waiters are answered with the storage error.
func (p *partition) goOffline(where string, err error) {
	assert(errors.Is(err, storage.ErrCorruption), "a partition goes offline only for corruption")
	if p.offline != nil {
		return
	}
	p.offline = err
	var corruption *storage.CorruptionError
	attrs := []any{slog.String("partition", p.String()), slog.String("found_by", where), slog.Any("err", err)}
	if errors.As(err, &corruption) {
		attrs = append(attrs, slog.String("file", corruption.File), slog.Int64("position", corruption.Position), slog.Int64("offset", corruption.Offset))
	}
	p.node.log.Error("partition offline: its stored data is corrupt; every byte is kept for a repair", attrs...)
	if p.log != nil {
		p.log.MarkFailed(err)
	}
	if p.topic.name == offsetsTopic && p.node.groups != nil {
		// Before the writes in flight fail, so that their completions
		// find the groups unloaded and change nothing in memory. At
		// startup openGroups unloads the partition itself.
		p.node.groups.UnloadPartition(p.index)
	}
	if c := p.node.cluster; c != nil && p.topic.partitions != nil {
		// A replica: on the next loop turn it leaves its role, and is
		// repaired at once if the image already has it out of service
		// (replica_repair.go); otherwise the heartbeat asks for that.
		t, index := p.topic, p.index
		p.node.catalog.later(func() {
			if int(index) < len(t.partitions) && t.partitions[index] == p && !p.closed {
				c.applyOffline(t, index)
			}
		})
	}
	storageErr := p.offlineError()
	p.failDurableWaiters(storageErr)
	// Answering a waiter withdraws it from every partition it watches, so
	// the list is taken first.
	waiters := p.waiters
	p.waiters = nil
	for _, w := range waiters {
		w.partitionGone()
	}
}

// offlineError is what a client is told about an offline partition.
func (p *partition) offlineError() error {
	return fmt.Errorf("%w: %s is offline: %v", kerr.KafkaStorageError, p, p.offline)
}

// checkCorruption takes the partition offline if err reports corruption at
// rest, and returns err.
func (p *partition) checkCorruption(where string, err error) error {
	if errors.Is(err, storage.ErrCorruption) {
		p.goOffline(where, err)
	}
	return err
}

// scrubOnce reads a little of the partition (it runs on the recovery
// point checkpoint's walk), so that corruption below the recovery point,
// which startup no longer reads, is found and reported instead of waiting
// for a consumer to trip on it. A read that never agreed is retried at the
// next tick.
func (p *partition) scrubOnce() {
	if p.closed || p.offline != nil || p.log == nil {
		return
	}
	next, _, err := p.log.Scrub(p.scrubCursor, scrubBytesPerTick)
	if err == nil {
		p.scrubCursor = next
		return
	}
	p.checkCorruption("scrubber", err)
}
