package storage

import (
	"encoding/binary"
	"math"
)

// Sizes of index file entries, as in Kafka.
const (
	indexEntryBytes     = 8  // relative offset uint32, position uint32
	timeIndexEntryBytes = 12 // timestamp int64, relative offset uint32
)

// noTimestamp is Kafka's "no timestamp" value; a segment without any larger
// timestamp has maxTimestamp noTimestamp.
const noTimestamp int64 = -1

// offsetEntry maps the base offset of a batch (relative to the segment's base
// offset) to the batch's position in the segment file.
type offsetEntry struct {
	relativeOffset uint32
	position       uint32
}

// timeEntry says that every batch before the batch at relativeOffset has a
// max timestamp <= timestamp. A search for the first batch with a timestamp
// >= t may therefore start at the last entry whose timestamp is < t.
type timeEntry struct {
	timestamp      int64
	relativeOffset uint32
}

// segmentIndex is the in-memory copy of a segment's offset and time indexes.
// It is a pure function of the sequence of batches in the segment (see
// observe), so recovery can rebuild it and compare.
type segmentIndex struct {
	offsets []offsetEntry
	times   []timeEntry
}

// observe updates the index for a batch about to be stored at position.
// bytesSinceEntry is the number of log bytes since the last offset entry (or
// since the start of the segment); prefixMaxTimestamp is the largest batch max
// timestamp before this batch. An entry is added once indexIntervalBytes bytes
// have accumulated; position 0 needs none, lookups fall back to it.
func (x *segmentIndex) observe(relativeOffset uint32, position, bytesSinceEntry, intervalBytes, prefixMaxTimestamp int64) {
	// bytesSinceEntry is zero at position 0 and when recovery re-observes the
	// batch that the last loaded entry points at; neither needs an entry.
	if bytesSinceEntry == 0 || bytesSinceEntry < intervalBytes {
		return
	}
	assert(position <= math.MaxUint32, "segment position overflows the index")
	if n := len(x.offsets); n > 0 {
		last := x.offsets[n-1]
		assert(relativeOffset > last.relativeOffset && uint32(position) > last.position, "index entries not increasing")
	}
	x.offsets = append(x.offsets, offsetEntry{relativeOffset: relativeOffset, position: uint32(position)})
	if prefixMaxTimestamp > x.lastTimestamp() {
		x.times = append(x.times, timeEntry{timestamp: prefixMaxTimestamp, relativeOffset: relativeOffset})
	}
}

// lastTimestamp returns the newest time entry's timestamp, or noTimestamp.
func (x *segmentIndex) lastTimestamp() int64 {
	if n := len(x.times); n > 0 {
		return x.times[n-1].timestamp
	}
	return noTimestamp
}

// lastPosition returns the position of the newest offset entry, or 0.
func (x *segmentIndex) lastPosition() int64 {
	if n := len(x.offsets); n > 0 {
		return int64(x.offsets[n-1].position)
	}
	return 0
}

// lookup returns the position of the last indexed batch whose base offset is
// at most relativeOffset, or 0: a batch boundary at or before the batch that
// holds relativeOffset.
func (x *segmentIndex) lookup(relativeOffset uint32) int64 {
	_, position := x.lookupEntry(relativeOffset)
	return position
}

// lookupEntry returns the last offset entry whose relative offset is at
// most relativeOffset, or (0, 0) if there is none. The batch at position has
// base offset entryOffset (relative to the segment).
func (x *segmentIndex) lookupEntry(relativeOffset uint32) (entryOffset uint32, position int64) {
	low, high := 0, len(x.offsets) // invariant: entries[:low] are <= target
	for low < high {
		middle := int(uint(low+high) >> 1)
		if x.offsets[middle].relativeOffset <= relativeOffset {
			low = middle + 1
		} else {
			high = middle
		}
	}
	if low == 0 {
		return 0, 0
	}
	e := x.offsets[low-1]
	return e.relativeOffset, int64(e.position)
}

// lookupTime returns the relative offset from which a scan for the first
// batch with max timestamp >= timestamp may start.
func (x *segmentIndex) lookupTime(timestamp int64) uint32 {
	low, high := 0, len(x.times)
	for low < high {
		middle := int(uint(low+high) >> 1)
		if x.times[middle].timestamp < timestamp {
			low = middle + 1
		} else {
			high = middle
		}
	}
	if low == 0 {
		return 0
	}
	return x.times[low-1].relativeOffset
}

// truncate drops the entries of batches at or after relativeOffset.
func (x *segmentIndex) truncate(relativeOffset uint32) {
	n := len(x.offsets)
	for n > 0 && x.offsets[n-1].relativeOffset >= relativeOffset {
		n--
	}
	x.offsets = x.offsets[:n]
	m := len(x.times)
	for m > 0 && x.times[m-1].relativeOffset >= relativeOffset {
		m--
	}
	x.times = x.times[:m]
}

// appendOffsets encodes the offset index file into buf.
func (x *segmentIndex) appendOffsets(buf []byte) []byte {
	for _, e := range x.offsets {
		buf = binary.BigEndian.AppendUint32(buf, e.relativeOffset)
		buf = binary.BigEndian.AppendUint32(buf, e.position)
	}
	return buf
}

// appendTimes encodes the time index file into buf.
func (x *segmentIndex) appendTimes(buf []byte) []byte {
	for _, e := range x.times {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.timestamp))
		buf = binary.BigEndian.AppendUint32(buf, e.relativeOffset)
	}
	return buf
}

// decodeIndexes parses index files and checks that they are plausible for a
// segment of logBytes bytes: whole entries, strictly increasing, positions
// inside the log, time entries only where offset entries are. ok is false if
// anything is off; the caller then rebuilds the index from the log.
func decodeIndexes(offsetData, timeData []byte, logBytes int64) (x segmentIndex, ok bool) {
	if len(offsetData)%indexEntryBytes != 0 || len(timeData)%timeIndexEntryBytes != 0 {
		return x, false
	}
	be := binary.BigEndian
	for i := 0; i < len(offsetData); i += indexEntryBytes {
		e := offsetEntry{relativeOffset: be.Uint32(offsetData[i:]), position: be.Uint32(offsetData[i+4:])}
		if int64(e.position) >= logBytes || e.position == 0 {
			return x, false
		}
		if n := len(x.offsets); n > 0 && (e.relativeOffset <= x.offsets[n-1].relativeOffset || e.position <= x.offsets[n-1].position) {
			return x, false
		}
		x.offsets = append(x.offsets, e)
	}
	for i := 0; i < len(timeData); i += timeIndexEntryBytes {
		e := timeEntry{timestamp: int64(be.Uint64(timeData[i:])), relativeOffset: be.Uint32(timeData[i+8:])}
		if e.timestamp <= x.lastTimestamp() || !x.hasOffsetEntry(e.relativeOffset) {
			return x, false
		}
		if n := len(x.times); n > 0 && e.relativeOffset <= x.times[n-1].relativeOffset {
			return x, false
		}
		x.times = append(x.times, e)
	}
	return x, true
}

// hasOffsetEntry reports whether an offset entry exists for relativeOffset.
func (x *segmentIndex) hasOffsetEntry(relativeOffset uint32) bool {
	low, high := 0, len(x.offsets)
	for low < high {
		middle := int(uint(low+high) >> 1)
		if x.offsets[middle].relativeOffset < relativeOffset {
			low = middle + 1
		} else {
			high = middle
		}
	}
	return low < len(x.offsets) && x.offsets[low].relativeOffset == relativeOffset
}
