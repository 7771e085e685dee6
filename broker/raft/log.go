package raft

import "slices"

// Entry is one record of the metadata log. Offsets are dense and start at 0;
// Epoch is the leader epoch in which the entry was first appended. An entry
// with nil Data is the marker a new leader appends at the start of its epoch
// (KRaft's LeaderChange control record): committing it is how a leader learns
// that everything before it is committed too.
type Entry struct {
	Offset int64
	Epoch  int32
	Data   []byte
}

// IsLeaderChange reports whether the entry is a new leader's epoch marker
// rather than a proposed record.
func (e Entry) IsLeaderChange() bool { return e.Data == nil }

// entryLog is a node's in-memory copy of its log from its log start offset
// on. Entries below the log start are covered by the snapshot at the log
// start (KIP-630); only the epoch of the last of them is kept, because the
// log matching property needs it at the boundary.
type entryLog struct {
	startOffset int64 // offset of entries[0]; 0 without a snapshot
	startEpoch  int32 // epoch of the entry at startOffset-1; 0 without a snapshot
	entries     []Entry
}

// endOffset returns the offset the next appended entry will get.
func (l *entryLog) endOffset() int64 { return l.startOffset + int64(len(l.entries)) }

// lastEpoch returns the epoch of the last entry: of the snapshot's last
// entry when the log holds none after it, or 0 for a log that never held any.
func (l *entryLog) lastEpoch() int32 {
	if len(l.entries) == 0 {
		return l.startEpoch
	}
	return l.entries[len(l.entries)-1].Epoch
}

// epochAt returns the epoch of the entry at offset, which must be held.
func (l *entryLog) epochAt(offset int64) int32 {
	assertf(offset >= l.startOffset && offset < l.endOffset(), "epochAt(%d) outside [%d, %d)", offset, l.startOffset, l.endOffset())
	return l.entries[offset-l.startOffset].Epoch
}

// endOffsetForEpoch answers KIP-101's OffsetForLeaderEpoch question on this
// log: the largest epoch not above epoch that the log holds, and the offset
// just past its last entry. When no entry after the log start qualifies, the
// answer is the snapshot's boundary (its epoch and offset; (0, 0) without a
// snapshot, which makes a follower truncate everything). Callers must not
// ask about an epoch below the snapshot's: the log no longer knows where it
// ended (a leader answers such a Fetch with its snapshot instead).
func (l *entryLog) endOffsetForEpoch(epoch int32) (int32, int64) {
	for i := len(l.entries) - 1; i >= 0; i-- {
		if l.entries[i].Epoch <= epoch {
			return l.entries[i].Epoch, l.startOffset + int64(i) + 1
		}
	}
	return l.startEpoch, l.startOffset
}

// append adds entries that must continue the log exactly: dense offsets and
// epochs that never go down (the log matching property depends on both).
func (l *entryLog) append(entries ...Entry) {
	for _, e := range entries {
		assertf(e.Offset == l.endOffset(), "append at offset %d, log ends at %d", e.Offset, l.endOffset())
		assertf(e.Epoch >= l.lastEpoch(), "append of epoch %d after epoch %d", e.Epoch, l.lastEpoch())
		l.entries = append(l.entries, e)
	}
}

// truncate removes every entry at or after offset, never one below the log
// start: those are covered by the snapshot, which is committed.
func (l *entryLog) truncate(offset int64) {
	assertf(offset >= l.startOffset && offset <= l.endOffset(), "truncate to %d outside [%d, %d]", offset, l.startOffset, l.endOffset())
	l.entries = l.entries[: offset-l.startOffset : offset-l.startOffset]
}

// compact drops the entries below offset, which a snapshot of epoch (the
// epoch of the entry at offset-1) now covers. The kept entries are copied so
// that the dropped ones can be collected.
func (l *entryLog) compact(offset int64, epoch int32) {
	assertf(offset > l.startOffset && offset <= l.endOffset(), "compact to %d outside (%d, %d]", offset, l.startOffset, l.endOffset())
	assertf(l.epochAt(offset-1) == epoch, "compact to %d with epoch %d, the log holds epoch %d there", offset, epoch, l.epochAt(offset-1))
	l.entries = slices.Clone(l.entries[offset-l.startOffset:])
	l.startOffset, l.startEpoch = offset, epoch
}

// reset replaces the whole log with an empty one that continues a snapshot
// ending at offset with epoch, as a follower does when it installs one.
func (l *entryLog) reset(offset int64, epoch int32) {
	assertf(offset >= 0 && epoch >= 0, "reset to a snapshot at %d of epoch %d", offset, epoch)
	l.entries = nil
	l.startOffset, l.startEpoch = offset, epoch
}

// slice returns the entries in [from, to), sharing memory with the log. The
// caller must not modify them; the log never modifies an entry in place.
func (l *entryLog) slice(from, to int64) []Entry {
	assertf(l.startOffset <= from && from <= to && to <= l.endOffset(), "slice [%d, %d) outside [%d, %d]", from, to, l.startOffset, l.endOffset())
	return l.entries[from-l.startOffset : to-l.startOffset]
}

// upToDate reports whether a candidate whose log ends with lastEpoch and
// endOffset is at least as up to date as this log (Raft section 5.4.1): the
// later last epoch wins, and with equal epochs the longer log. Comparing
// lengths alone would let a voter holding many uncommitted entries of an old
// epoch win against one holding the committed entries of a newer epoch.
func (l *entryLog) upToDate(lastEpoch int32, endOffset int64) bool {
	if lastEpoch != l.lastEpoch() {
		return lastEpoch > l.lastEpoch()
	}
	return endOffset >= l.endOffset()
}
