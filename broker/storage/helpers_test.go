package storage

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// testDir is the partition directory the tests use on every disk.
const testDir = "topic-0"

// epoch0 is a fixed instant the tests count time from.
var epoch0 = time.UnixMilli(1_700_000_000_000)

// at returns epoch0 plus ms milliseconds.
func at(ms int64) time.Time { return epoch0.Add(time.Duration(ms) * time.Millisecond) }

// makeBatch builds a valid v2 batch of records records around opaque
// payload bytes that encode id, so a test can recognise the batch when it
// reads it back. The records section is not decodable Kafka records; the
// log never decodes it.
func makeBatch(id uint64, records int, payloadBytes int, maxTimestamp int64) []byte {
	if payloadBytes < 8 {
		payloadBytes = 8
	}
	b := make([]byte, record.HeaderBytes+payloadBytes)
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)-record.LengthPrefixBytes))
	be.PutUint32(b[12:], 0xffffffff) // partition leader epoch: unset
	b[16] = record.Magic
	be.PutUint32(b[23:], uint32(records-1))
	be.PutUint64(b[27:], uint64(maxTimestamp))
	be.PutUint64(b[35:], uint64(maxTimestamp))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(records))
	for i := record.HeaderBytes; i < len(b); i += 8 {
		var word [8]byte
		be.PutUint64(word[:], id*0x9e3779b97f4a7c15+uint64(i))
		copy(b[i:], word[:])
	}
	be.PutUint64(b[record.HeaderBytes:], id)
	be.PutUint32(b[17:], record.ComputeCRC(b))
	return b
}

// batchID returns the id that makeBatch stored in a batch.
func batchID(b []byte) uint64 { return binary.BigEndian.Uint64(b[record.HeaderBytes:]) }

// newDisk returns a perfect simulated disk.
func newDisk(seed uint64) *sim.Disk { return sim.NewDisk(core.NewRand(seed), sim.DiskOptions{}) }

// smallConfig is a config with small segments and dense indexes, so that
// tests exercise rolling and index lookups with few bytes.
func smallConfig() Config {
	c := DefaultConfig()
	c.SegmentBytesMax = 1024
	c.IndexIntervalBytes = 200
	c.IndexBytesMax = 4096
	return c
}

func mustOpen(t testing.TB, fsys core.FS, config Config) *Log {
	t.Helper()
	l, err := Open(fsys, testDir, config, epoch0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, batch []byte, epoch int32, now time.Time) (int64, int64) {
	t.Helper()
	base, last, err := l.Append(batch, epoch, now)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return base, last
}

// storedBatch is one batch as read back from the log.
type storedBatch struct {
	header record.Header
	id     uint64
}

// readAll reads every batch from the log start to the log end through Read
// with the given maxBytes, validating each batch, and fails the test on any
// inconsistency.
func readAll(t testing.TB, l *Log, maxBytes int) []storedBatch {
	t.Helper()
	var out []storedBatch
	var buf []byte
	offset := l.LogStartOffset()
	for offset < l.LogEndOffset() {
		var err error
		buf, err = l.Read(offset, maxBytes, l.LogEndOffset(), buf[:0])
		if err != nil {
			t.Fatalf("Read(%d): %v", offset, err)
		}
		if len(buf) == 0 {
			t.Fatalf("Read(%d) returned nothing below the log end %d", offset, l.LogEndOffset())
		}
		for rest := buf; len(rest) > 0; {
			size, err := record.BatchSize(rest)
			if err != nil || size > len(rest) {
				t.Fatalf("Read(%d) returned a partial batch: %v", offset, err)
			}
			h, err := record.Validate(rest[:size])
			if err != nil {
				t.Fatalf("Read(%d) returned an invalid batch: %v", offset, err)
			}
			if h.LastOffset() < offset {
				t.Fatalf("Read(%d) returned batch [%d, %d] before the offset", offset, h.BaseOffset, h.LastOffset())
			}
			out = append(out, storedBatch{header: h, id: batchID(rest[:size])})
			offset = h.NextOffset()
			rest = rest[size:]
		}
	}
	return out
}

// isErr reports whether err matches target, for table tests.
func isErr(err, target error) bool { return errors.Is(err, target) }
