package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core/record"
)

// scanReadAttemptsMax bounds the re-reads of a chunk whose headers come
// back inconsistent (a transient flip on read) during a startup scan.
const scanReadAttemptsMax = 4

// producerScanBytes is the read size used to replay batch headers into the
// producer table at startup.
const producerScanBytes = 1 << 20

// partition is one topic partition on this broker.
//
// Invariants: logStartOffset <= highWatermark <= logEndOffset; the newest
// batches of every producer that has not expired (producer.id.expiration.ms)
// are in producers, also after retention deleted them (the table is loaded
// from a snapshot and the log after it on open, and updated on every
// append); no producer snapshot lies above the durable end.
type partition struct {
	node      *Node
	topic     *topic
	index     int32
	dir       string
	log       *storage.Log
	producers *producerTable
	// snapshots are the producer snapshot files on disk, oldest first
	// (see producer_snapshot.go).
	snapshots []producerSnapshotFile
	// activeSegmentBase is the base offset of the active segment, to tell
	// a roll (which writes a producer snapshot) from a plain append.
	activeSegmentBase int64
	leaderEpoch       int32
	// waiters are fetches parked on this partition until it grows.
	waiters []*fetchWaiter
	// durableWaiters wait for the high watermark to reach an offset (the
	// purgatory; see durability.go), in the order they started waiting.
	durableWaiters []durableWaiter
	// highWatermarkSeen is the high watermark last announced to waiters;
	// it never moves backwards.
	highWatermarkSeen int64
	// closed is set when the partition is closed; completions that arrive
	// later are ignored.
	closed bool
	// offline is set when the partition's stored data is corrupt
	// (storage.ErrCorruption): it then serves nothing and writes nothing,
	// every byte stays as it is for a repair, and log may be nil (when the
	// corruption was found while opening). See offline.go.
	offline error
	// scrubCursor is where the scrubber resumes (offline.go).
	scrubCursor storage.ScrubCursor
	// loading is set on the placeholder of a partition that opens after
	// Start (startup.go); it has no log until then.
	loading bool
	// scratch is reused for reads that stay inside the broker.
	scratch []byte
	// repl is the partition's replication state in cluster mode
	// (replica.go).
	repl replication
}

// partitionDir is the live directory of a partition (see catalog_names.go
// for the names in every other state).
func partitionDir(logDir, topicName string, index int32) string {
	return path.Join(logDir, partitionDirName(topicName, index))
}

func openPartition(n *Node, t *topic, index int32) (*partition, error) {
	dir := partitionDir(n.cfg.LogDir, t.name, index)
	log, report, err := storage.OpenWithReport(n.env.FS, dir, t.config.storageConfig(), n.now())
	if errors.Is(err, storage.ErrCorruption) {
		// Internal partitions too: the group coordinator unloads the groups
		// of an offline __consumer_offsets partition (openGroups).
		return openOffline(n, t, index, dir, err), nil
	}
	if err != nil {
		return nil, err
	}
	logRecovery(n, dir, report)
	p := &partition{node: n, topic: t, index: index, dir: dir, log: log}
	// In cluster mode the high watermark is learned again from the ISR
	// (replica.go); until then nothing above the log start is committed
	// as far as this broker knows.
	p.repl.highWatermark = log.LogStartOffset()
	p.highWatermarkSeen = p.highWatermark()
	p.leaderEpoch = max(0, log.LatestEpoch())
	p.activeSegmentBase = p.currentSegmentBase()
	if err := p.loadProducerState(); err != nil {
		log.Close()
		if errors.Is(err, storage.ErrCorruption) {
			// The replay after the producer snapshot read damaged data
			// (bytes no read could read): offline, like corruption found
			// by recovery (sim seed 117 with damage at rest).
			return openOffline(n, t, index, dir, err), nil
		}
		return nil, err
	}
	return p, nil
}

// replayProducers rebuilds the idempotent producer table from the batch
// headers in the log from offset from on (the offset of the snapshot the
// table was loaded from), so that a batch written just before a crash and
// retried after it is recognized as a duplicate.
func (p *partition) replayProducers(from int64) error {
	nowMs := p.node.now().UnixMilli()
	return p.scanBatches(from, func(batch []byte, h *record.Header) error {
		if h.BaseOffset >= from {
			p.producers.record(h, batchTimestampMs(h, nowMs))
		}
		return nil
	})
}

// currentSegmentBase returns the base offset of the active segment.
func (p *partition) currentSegmentBase() int64 {
	return p.log.ActiveSegmentBaseOffset()
}

// rolledAt reports whether the append that gave a batch base offset base
// rolled a new segment (which then starts at base).
func (p *partition) rolledAt(base int64) bool {
	return base > p.activeSegmentBase && p.currentSegmentBase() == base
}

// replayRecords calls fn with the key and value of every record in the log,
// in order (used to rebuild the group coordinator from __consumer_offsets).
func (p *partition) replayRecords(fn func(key, value []byte) error) error {
	var reader record.Reader
	return p.scanBatches(p.log.LogStartOffset(), func(batch []byte, _ *record.Header) error {
		_, err := reader.Records(batch, func(r *record.Record) error { return fn(r.Key, r.Value) })
		return err
	})
}

// scanBatches calls fn with every batch in the log from the one holding
// offset from, in order.
func (p *partition) scanBatches(from int64, fn func(batch []byte, h *record.Header) error) error {
	end := p.log.LogEndOffset()
	for offset := max(from, p.log.LogStartOffset()); offset < end; {
		data, err := p.readVerified(offset, end)
		if err != nil {
			return fmt.Errorf("broker: scanning %s: %w", p.dir, err)
		}
		for len(data) > 0 {
			h, err := record.ParseHeader(data)
			if err != nil {
				return fmt.Errorf("broker: scanning %s: %w", p.dir, err)
			}
			if err := fn(data[:h.TotalBytes()], &h); err != nil {
				return fmt.Errorf("broker: scanning %s at offset %d: %w", p.dir, h.BaseOffset, err)
			}
			offset = h.NextOffset()
			data = data[h.TotalBytes():]
		}
	}
	p.scratch = p.scratch[:0]
	return nil
}

// readVerified reads the batches at offset for a startup scan, checking
// their headers like a fetch does and re-reading a chunk that comes back
// inconsistent, so that one flipped bit on read does not fail a boot.
func (p *partition) readVerified(offset, end int64) ([]byte, error) {
	var err error
	for range scanReadAttemptsMax {
		var data []byte
		data, err = p.log.Read(offset, producerScanBytes, end, p.scratch[:0])
		p.scratch = data
		if err == nil && len(data) == 0 {
			err = fmt.Errorf("%w: no batch at offset %d", storage.ErrCorruptLog, offset)
		}
		if err == nil {
			_, err = p.checkBatches(data, offset, offset)
		}
		if err == nil {
			err = validateAll(data)
		}
		if err == nil || !errors.Is(err, storage.ErrCorruptLog) {
			return data, err
		}
	}
	// Every read failed its checks: a flip on read does not repeat four
	// times, so the stored batches are damaged, in a field the CRC does
	// not cover (a partition leader epoch changed at rest failed every
	// boot of sim seed 29 with damage at rest).
	return nil, fmt.Errorf("%w: %d reads at offset %d failed their checks: %w", storage.ErrCorruption, scanReadAttemptsMax, offset, err)
}

// validateAll checks the CRC of every batch in data (whole batches), since
// replay trusts producer ids, sequences and records inside them.
func validateAll(data []byte) error {
	for len(data) > 0 {
		size, err := record.BatchSize(data)
		if err == nil {
			_, err = record.Validate(data[:min(size, len(data))])
		}
		if err != nil {
			return fmt.Errorf("%w: %v", storage.ErrCorruptLog, err)
		}
		data = data[size:]
	}
	return nil
}

func (p *partition) String() string { return p.topic.name + "-" + strconv.Itoa(int(p.index)) }

// appendResult is the outcome of appending one produced batch.
type appendResult struct {
	baseOffset    int64
	lastOffset    int64
	duplicate     bool  // a retry of a batch already in the log
	logAppendTime int64 // -1 unless the topic uses LogAppendTime
}

// append stores one batch from a producer. It returns the batch's original
// result for a retried duplicate of an idempotent producer. Errors wrap
// Kafka error codes.
func (p *partition) append(batch []byte, now time.Time) (appendResult, error) {
	result := appendResult{logAppendTime: -1}
	if p.offline != nil {
		return result, p.offlineError()
	}
	h, err := p.validateProduced(batch)
	if err != nil {
		return result, err
	}
	original, err := p.producers.check(&h)
	if errors.Is(err, errDuplicateSequence) {
		// The original may not be durable yet: the caller parks an acks=all
		// retry on lastOffset exactly as it would the original.
		result.baseOffset = original.firstOffset
		result.lastOffset = original.lastOffset
		result.duplicate = true
		return result, nil
	}
	if err != nil {
		return result, err
	}
	if batch, err = p.compressForTopic(batch, &h); err != nil {
		return result, err
	}
	timestampMs := batchTimestampMs(&h, now.UnixMilli())
	if p.topic.config.logAppendTime {
		result.logAppendTime = now.UnixMilli()
		timestampMs = result.logAppendTime
		record.SetMaxTimestampLogAppend(batch, result.logAppendTime)
	}
	durableBefore := p.log.DurableEndOffset()
	// validateProduced checked the CRC, and compressForTopic and the
	// timestamp setter keep it right: the log does not compute it again.
	base, last, err := p.log.AppendValidated(batch, p.leaderEpoch, now)
	if err != nil {
		return result, p.storageFailure("append", err)
	}
	h.BaseOffset = base
	if h.LastOffset() != last {
		panic(fmt.Sprintf("broker: %s: append returned last offset %d, header says %d", p, last, h.LastOffset()))
	}
	if p.rolledAt(base) {
		// The table holds exactly the batches below base: the snapshot is
		// taken before the new batch is recorded.
		p.snapshotAtRoll(base)
	}
	p.producers.record(&h, timestampMs)
	result.baseOffset = base
	result.lastOffset = last
	p.afterAppend(durableBefore)
	return result, nil
}

// validateProduced checks a produced batch before anything else looks at
// it: valid (CRC and framing), within max.message.bytes, records numbered
// 0..n-1, and neither transactional nor a control batch.
func (p *partition) validateProduced(batch []byte) (record.Header, error) {
	h, err := record.Validate(batch)
	if err != nil {
		return h, fmt.Errorf("%w: %v", kerr.CorruptMessage, err)
	}
	if err := p.checkBatchBytes(batch); err != nil {
		return h, err
	}
	if h.RecordCount < 1 || int64(h.LastOffsetDelta) != int64(h.RecordCount)-1 {
		// Producers number a batch's records 0..n-1; anything else would
		// give its records offsets that the header does not account for.
		return h, fmt.Errorf("%w: %d records but lastOffsetDelta %d", kerr.InvalidRecord, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Attributes.IsTransactional() || h.Attributes.IsControl() {
		return h, fmt.Errorf("%w: transactions are not supported yet", kerr.InvalidRecord)
	}
	return h, nil
}

// compressForTopic rewrites a batch with the codec the topic's
// compression.type names when the batch arrived in another one, as Kafka's
// LogValidator does; compression.type=producer keeps every batch as sent.
// The records and every header field that offsets and idempotence depend
// on are kept (record.Recompress), and the rewritten batch must still fit
// max.message.bytes. A batch whose records cannot be read back is
// CORRUPT_MESSAGE.
func (p *partition) compressForTopic(batch []byte, h *record.Header) ([]byte, error) {
	codec, recompress := p.topic.config.targetCodec()
	if !recompress || h.Attributes.Compression() == codec {
		return batch, nil
	}
	out, err := record.Recompress(batch, codec)
	switch {
	case errors.Is(err, record.ErrCorrupt) || errors.Is(err, record.ErrTruncated):
		return nil, fmt.Errorf("%w: recompressing with %v: %v", kerr.CorruptMessage, codec, err)
	case err != nil:
		// The only other failure is a result above record.BatchBytesMax.
		return nil, fmt.Errorf("%w: recompressing with %v: %v", kerr.MessageTooLarge, codec, err)
	}
	if err := p.checkBatchBytes(out); err != nil {
		return nil, fmt.Errorf("recompressed with %v: %w", codec, err)
	}
	return out, nil
}

// checkBatchBytes answers MESSAGE_TOO_LARGE for a batch above the topic's
// max.message.bytes.
func (p *partition) checkBatchBytes(batch []byte) error {
	if len(batch) > int(p.topic.config.maxMessageBytes) {
		return fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d",
			kerr.MessageTooLarge, len(batch), p.topic.config.maxMessageBytes)
	}
	return nil
}

// checkBatches verifies the headers of batches read at expected (the first
// may start before fetched, the offset the caller asked for) and returns
// the offset after the last one.
func (p *partition) checkBatches(data []byte, fetched, expected int64) (int64, error) {
	for len(data) > 0 {
		h, err := record.ParseHeader(data)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", storage.ErrCorruptLog, p, err)
		}
		contiguous := h.BaseOffset == expected || (expected == fetched && h.BaseOffset <= fetched && fetched <= h.LastOffset())
		if !contiguous || h.PartitionLeaderEpoch > p.leaderEpoch || h.TotalBytes() > len(data) {
			return 0, fmt.Errorf("%w: %s: batch [%d, %d] epoch %d read where offset %d (epoch <= %d) was expected",
				storage.ErrCorruptLog, p, h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch, expected, p.leaderEpoch)
		}
		expected = h.NextOffset()
		data = data[h.TotalBytes():]
	}
	return expected, nil
}

// storageFailure logs a disk error and maps it for the client. After
// storage.ErrLogFailed the node halts: the files' contents are unknown, and
// only a restart's recovery may touch them again.
// storageFailureError is the error storageFailure returns for err, without
// its effects, for a caller that must queue an answer before they happen.
func (p *partition) storageFailureError(err error) error {
	if errors.Is(err, storage.ErrCorruption) {
		return fmt.Errorf("%w: %s is offline: %v", kerr.KafkaStorageError, p, err)
	}
	return fmt.Errorf("%w: %v", storageErrorCode(err), err)
}

func (p *partition) storageFailure(op string, err error) error {
	if errors.Is(err, storage.ErrCorruption) {
		// Corrupt data at rest takes this partition offline, not the node.
		p.goOffline(op, err)
		return p.offlineError()
	}
	if errors.Is(err, storage.ErrLogFailed) {
		p.failDurableWaiters(fmt.Errorf("%w: %s failed: %v", kerr.KafkaStorageError, p, err))
		p.node.halt(fmt.Errorf("%s %s: %w", op, p, err))
	}
	code := storageErrorCode(err)
	if code == kerr.KafkaStorageError {
		p.node.storageLog.log(p.node, slog.LevelError, "storage error", slog.String("partition", p.String()), slog.String("op", op), slog.Any("err", err))
	}
	return fmt.Errorf("%w: %v", code, err)
}

// enforceRetention runs on the node's retention timer: it expires idle
// producers (producer.id.expiration.ms), makes sure a producer snapshot
// covers what retention may delete, deletes old segments, and then the
// producer snapshots the new log start made unnecessary.
func (p *partition) enforceRetention(now time.Time) {
	if p.offline != nil || p.log == nil {
		return // every byte is kept for a repair, or not opened yet
	}
	if removed := p.producers.expire(now.UnixMilli(), p.producerIDExpirationMs()); removed > 0 {
		p.node.log.Debug("producer ids expired", slog.String("partition", p.String()), slog.Int("producers", removed))
	}
	if !p.saveProducerStateBeforeRetention() {
		return
	}
	// Nothing above the high watermark goes: a replicated partition may
	// still need it (a follower has not fetched it, or a leader change
	// makes it the log's truth), as Kafka's retention keeps it.
	deleted, err := p.log.DeleteOldSegmentsBelow(now, p.highWatermark())
	if err != nil {
		p.storageFailure("retention", err)
		return
	}
	if deleted > 0 {
		p.node.log.Info("retention deleted segments", slog.String("partition", p.String()), slog.Int("segments", deleted))
	}
	p.removeSnapshotsBelow(p.log.LogStartOffset())
}

// sync makes everything appended durable: through the group commit in
// durable mode, inline in caching mode (the log.flush.interval.ms timer).
func (p *partition) sync() {
	if p.offline != nil || p.log == nil {
		return
	}
	if !p.writeCaching() {
		p.scheduleSync()
		return
	}
	if err := p.log.Sync(); err != nil {
		p.storageFailure("sync", err)
	}
}

func (p *partition) close() error {
	p.closed = true
	p.failDurableWaiters(fmt.Errorf("%w: %s was closed", kerr.NotLeaderForPartition, p))
	// Answering a waiter withdraws it from every partition it watches, so
	// the list is taken first.
	waiters := p.waiters
	p.waiters = nil
	for _, w := range waiters {
		w.partitionGone()
	}
	if p.log == nil {
		return nil // opened offline: there is no log to close
	}
	return p.log.Close()
}
