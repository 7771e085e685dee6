package storage

import (
	"fmt"
	"math"

	"github.com/kafkasim/kafkasim/core/record"
)

// modelBatch is one batch in the reference model of a log.
type modelBatch struct {
	id           uint64
	base, last   int64
	epoch        int32
	maxTimestamp int64
	sizeBytes    int64
}

// model is the reference: the list of batches a log must hold, with its
// start and end offsets. It knows nothing about segments or files.
type model struct {
	batches []modelBatch
	start   int64
	end     int64
	// epochList is the leader epoch cache the log must hold, maintained by
	// the rules of Kafka's LeaderEpochFileCache written out plainly.
	epochList []EpochEntry
}

func (m *model) append(b modelBatch) {
	m.batches = append(m.batches, b)
	m.end = b.last + 1
	m.assignEpoch(b.epoch, b.base)
}

// assignEpoch records that epoch starts at offset if it is newer than the
// latest; an older entry at the same offset is superseded.
func (m *model) assignEpoch(epoch int32, offset int64) {
	n := len(m.epochList)
	if epoch < 0 || (n > 0 && epoch <= m.epochList[n-1].Epoch) {
		return
	}
	if n > 0 && m.epochList[n-1].StartOffset == offset {
		m.epochList = m.epochList[:n-1]
	}
	m.epochList = append(m.epochList, EpochEntry{Epoch: epoch, StartOffset: offset})
}

// dropEpochsFrom removes the epochs that start at or after end.
func (m *model) dropEpochsFrom(end int64) {
	for n := len(m.epochList); n > 0 && m.epochList[n-1].StartOffset >= end; n-- {
		m.epochList = m.epochList[:n-1]
	}
}

// truncate applies TruncateTo's rule: batches holding offsets >= offset go.
// It returns false when no batch remains, where the end is up to the log.
func (m *model) truncate(offset int64) bool {
	n := len(m.batches)
	for n > 0 && m.batches[n-1].last >= offset {
		n--
	}
	m.batches = m.batches[:n]
	m.dropEpochsFrom(offset)
	if n > 0 {
		m.end = m.batches[n-1].last + 1
		return true
	}
	return false
}

// dropBefore removes batches wholly below start, for retention.
func (m *model) dropBefore(start int64) {
	n := 0
	for n < len(m.batches) && m.batches[n].last < start {
		n++
	}
	m.batches = m.batches[n:]
	m.start = start
	// The epoch covering the new start begins there; older ones go.
	covering := -1
	for i, e := range m.epochList {
		if e.StartOffset <= start {
			covering = i
		}
	}
	if covering >= 0 {
		m.epochList = append([]EpochEntry(nil), m.epochList[covering:]...)
		m.epochList[0].StartOffset = start
	}
}

// checkLog compares a log with the model: offsets, every batch read back in
// full (each validated, ids, offsets and epochs as appended), the size, the
// segment layout and the epoch cache. It returns a description of the first
// difference, or nil.
func checkLog(l *Log, m *model, maxBytes int) error {
	if l.LogStartOffset() != m.start || l.LogEndOffset() != m.end {
		return fmt.Errorf("log [%d, %d), model [%d, %d)", l.LogStartOffset(), l.LogEndOffset(), m.start, m.end)
	}
	got, err := scanLog(l, maxBytes)
	if err != nil {
		return err
	}
	if len(got) != len(m.batches) {
		return fmt.Errorf("log holds %d batches, model %d", len(got), len(m.batches))
	}
	var size int64
	for i, h := range got {
		want := m.batches[i]
		if h.id != want.id || h.header.BaseOffset != want.base || h.header.LastOffset() != want.last || h.header.PartitionLeaderEpoch != want.epoch {
			return fmt.Errorf("batch %d: got id %d [%d, %d] epoch %d, want id %d [%d, %d] epoch %d", i,
				h.id, h.header.BaseOffset, h.header.LastOffset(), h.header.PartitionLeaderEpoch, want.id, want.base, want.last, want.epoch)
		}
		size += want.sizeBytes
	}
	if err := checkSegments(l, size); err != nil {
		return err
	}
	return checkEpochs(l.EpochEntries(), m)
}

// checkSegments checks the segment layout: sorted, non-overlapping, each
// within SegmentBytesMax, sizes adding up.
func checkSegments(l *Log, sizeBytes int64) error {
	var total int64
	segments := l.Segments()
	for i, s := range segments {
		if s.SizeBytes > l.config.SegmentBytesMax || s.NextOffset < s.BaseOffset {
			return fmt.Errorf("segment %d is %+v", i, s)
		}
		if i > 0 && s.BaseOffset < segments[i-1].NextOffset {
			return fmt.Errorf("segment %d %+v overlaps %+v", i, s, segments[i-1])
		}
		total += s.SizeBytes
	}
	if total != sizeBytes || l.Size() != sizeBytes {
		return fmt.Errorf("segments hold %d bytes (Size %d), model %d", total, l.Size(), sizeBytes)
	}
	return nil
}

// checkEpochs compares the epoch cache with the model's. Recovery rebuilds
// the entries of the range it validates from the batches, so the first entry
// may start anywhere from the log start to the first batch of its epoch.
func checkEpochs(got []EpochEntry, m *model) error {
	want := m.epochList
	if len(got) != len(want) {
		return fmt.Errorf("epochs %v, model %v", got, want)
	}
	for i := range got {
		ok := got[i] == want[i]
		if i == 0 && got[i].Epoch == want[i].Epoch {
			firstBase := want[i].StartOffset
			for _, b := range m.batches {
				if b.epoch == want[i].Epoch {
					firstBase = max(firstBase, b.base)
					break
				}
			}
			ok = got[i].StartOffset >= m.start && got[i].StartOffset <= firstBase
		}
		if !ok {
			return fmt.Errorf("epochs %v, model %v", got, want)
		}
	}
	return nil
}

// scanReadAttemptsMax bounds how often scanLog repeats a Read that failed
// with ErrCorruptLog or returned a batch whose CRC does not match: on a disk
// that flips bits on read, either may happen, and a consumer retries.
const scanReadAttemptsMax = 16

// scanLog reads the whole log through Read and validates every batch. A
// read that reports ErrCorruptLog or returns an invalid batch is retried;
// a batch that is valid but wrong (offsets, epoch, contents) is returned as
// read, for the caller to compare with the model.
func scanLog(l *Log, maxBytes int) ([]storedBatch, error) {
	var out []storedBatch
	var buf []byte
	offset := l.LogStartOffset()
	for offset < l.LogEndOffset() {
		var batches []storedBatch
		var err error
		for range scanReadAttemptsMax {
			buf, batches, err = readBatches(l, offset, maxBytes, buf[:0])
			if err == nil {
				break
			}
		}
		if err != nil {
			return out, err
		}
		if len(batches) == 0 {
			// Only a gap (after a truncation to a segment that follows one)
			// remains; the caller compares the batches with the model.
			break
		}
		out = append(out, batches...)
		offset = batches[len(batches)-1].header.NextOffset()
	}
	return out, nil
}

// readBatches does one Read at offset and splits and validates the result.
func readBatches(l *Log, offset int64, maxBytes int, buf []byte) ([]byte, []storedBatch, error) {
	buf, err := l.Read(offset, maxBytes, math.MaxInt64, buf)
	if err != nil {
		return buf, nil, fmt.Errorf("Read(%d): %w", offset, err)
	}
	var out []storedBatch
	for rest := buf; len(rest) > 0; {
		size, err := record.BatchSize(rest)
		if err != nil || size > len(rest) {
			return buf, nil, fmt.Errorf("Read(%d) returned a partial batch", offset)
		}
		h, err := record.Validate(rest[:size])
		if err != nil {
			return buf, nil, fmt.Errorf("Read(%d) returned an invalid batch: %w", offset, err)
		}
		if h.LastOffset() < offset {
			return buf, nil, fmt.Errorf("Read(%d) returned batch [%d, %d]", offset, h.BaseOffset, h.LastOffset())
		}
		out = append(out, storedBatch{header: h, id: batchID(rest[:size])})
		offset = h.NextOffset()
		rest = rest[size:]
	}
	return buf, out, nil
}
