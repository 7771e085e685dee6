package raft

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

// entryLog is a node's in-memory copy of its log. It keeps every entry:
// snapshots and log truncation at the front are not implemented yet.
type entryLog struct {
	entries []Entry
}

// endOffset returns the offset the next appended entry will get.
func (l *entryLog) endOffset() int64 { return int64(len(l.entries)) }

// lastEpoch returns the epoch of the last entry, or 0 for an empty log.
func (l *entryLog) lastEpoch() int32 {
	if len(l.entries) == 0 {
		return 0
	}
	return l.entries[len(l.entries)-1].Epoch
}

// epochAt returns the epoch of the entry at offset, which must exist.
func (l *entryLog) epochAt(offset int64) int32 {
	assertf(offset >= 0 && offset < l.endOffset(), "epochAt(%d) outside [0, %d)", offset, l.endOffset())
	return l.entries[offset].Epoch
}

// endOffsetForEpoch answers KIP-101's OffsetForLeaderEpoch question on this
// log: the largest epoch not above epoch that the log holds, and the offset
// just past its last entry. A log holding nothing at or below epoch answers
// (0, 0), which makes a follower truncate everything (offset 0 is the log
// start while snapshots do not exist).
func (l *entryLog) endOffsetForEpoch(epoch int32) (int32, int64) {
	for i := len(l.entries) - 1; i >= 0; i-- {
		if l.entries[i].Epoch <= epoch {
			return l.entries[i].Epoch, int64(i) + 1
		}
	}
	return 0, 0
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

// truncate removes every entry at or after offset.
func (l *entryLog) truncate(offset int64) {
	assertf(offset >= 0 && offset <= l.endOffset(), "truncate to %d outside [0, %d]", offset, l.endOffset())
	l.entries = l.entries[:offset:offset]
}

// slice returns the entries in [from, to), sharing memory with the log. The
// caller must not modify them; the log never modifies an entry in place.
func (l *entryLog) slice(from, to int64) []Entry {
	assertf(0 <= from && from <= to && to <= l.endOffset(), "slice [%d, %d) outside [0, %d]", from, to, l.endOffset())
	return l.entries[from:to]
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
