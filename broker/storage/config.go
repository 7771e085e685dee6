package storage

import (
	"fmt"
	"math"

	"github.com/kafkasim/kafkasim/core/record"
)

// Limits on Config values. Positions inside a segment are stored as uint32 in
// the offset index, and Kafka bounds segment.bytes by a Java int, so a segment
// holds at most segmentBytesLimit bytes.
const (
	segmentBytesLimit     = math.MaxInt32
	indexIntervalBytesMax = math.MaxInt32
	// indexBytesMin lets an index hold at least one entry of either kind.
	indexBytesMin = timeIndexEntryBytes
	// indexBytesLimit bounds the in-memory copy of one segment's indexes.
	indexBytesLimit = 1 << 30
)

// Config holds a partition log's settings. Each field names the Kafka
// setting it mirrors. Build one with DefaultConfig and override fields.
type Config struct {
	// SegmentBytesMax is the size at which the active segment is rolled
	// (log.segment.bytes, default 1 GiB). A batch larger than this is
	// rejected with ErrBatchTooLarge.
	SegmentBytesMax int64

	// SegmentAgeMsMax rolls the active segment once it was created (or
	// reopened) this many milliseconds ago and holds data (log.roll.ms,
	// default 7 days).
	SegmentAgeMsMax int64

	// IndexIntervalBytes is how many log bytes lie between two offset index
	// entries (log.index.interval.bytes, default 4096).
	IndexIntervalBytes int64

	// IndexBytesMax bounds each index file of a segment; a full index rolls
	// the segment (log.index.size.max.bytes, default 10 MiB).
	IndexBytesMax int64

	// RetentionBytes deletes the oldest segments while the log is larger than
	// this (log.retention.bytes, default -1: unlimited).
	RetentionBytes int64

	// RetentionMs deletes segments whose newest timestamp is older than this
	// (log.retention.ms, default 7 days; -1: unlimited).
	RetentionMs int64

	// FlushIntervalMessages syncs the log after this many records were
	// appended since the last sync (log.flush.interval.messages; 1 syncs on
	// every append; default math.MaxInt64: only explicit Syncs).
	FlushIntervalMessages int64
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	const dayMs = 24 * 60 * 60 * 1000
	return Config{
		SegmentBytesMax:       1 << 30,
		SegmentAgeMsMax:       7 * dayMs,
		IndexIntervalBytes:    4096,
		IndexBytesMax:         10 << 20,
		RetentionBytes:        -1,
		RetentionMs:           7 * dayMs,
		FlushIntervalMessages: math.MaxInt64,
	}
}

// Validate returns an error naming the first field that is out of range.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytesMax < record.HeaderBytes || c.SegmentBytesMax > segmentBytesLimit:
		return configError("SegmentBytesMax", c.SegmentBytesMax, record.HeaderBytes, segmentBytesLimit)
	case c.SegmentAgeMsMax < 1:
		return configError("SegmentAgeMsMax", c.SegmentAgeMsMax, 1, math.MaxInt64)
	case c.IndexIntervalBytes < 0 || c.IndexIntervalBytes > indexIntervalBytesMax:
		return configError("IndexIntervalBytes", c.IndexIntervalBytes, 0, indexIntervalBytesMax)
	case c.IndexBytesMax < indexBytesMin || c.IndexBytesMax > indexBytesLimit:
		return configError("IndexBytesMax", c.IndexBytesMax, indexBytesMin, indexBytesLimit)
	case c.RetentionBytes < -1:
		return configError("RetentionBytes", c.RetentionBytes, -1, math.MaxInt64)
	case c.RetentionMs < -1:
		return configError("RetentionMs", c.RetentionMs, -1, math.MaxInt64)
	case c.FlushIntervalMessages < 1:
		return configError("FlushIntervalMessages", c.FlushIntervalMessages, 1, math.MaxInt64)
	}
	return nil
}

func configError(field string, value, low, high int64) error {
	return fmt.Errorf("%w: %s is %d, must be in [%d, %d]", ErrConfig, field, value, low, high)
}

// offsetEntriesMax is how many offset index entries fit in IndexBytesMax.
func (c Config) offsetEntriesMax() int { return int(c.IndexBytesMax / indexEntryBytes) }

// timeEntriesMax is how many time index entries fit in IndexBytesMax.
func (c Config) timeEntriesMax() int { return int(c.IndexBytesMax / timeIndexEntryBytes) }
