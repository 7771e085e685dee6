package quorum

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// Names of the files in the metadata log directory, as KRaft names them: a
// segment is named by the offset of its first entry, a snapshot by its end
// offset and epoch ("00000000000000001000-0000000003.checkpoint").
const (
	quorumStateFile  = "quorum-state"
	segmentSuffix    = ".log"
	checkpointSuffix = ".checkpoint"
)

// quorumStateBytesMax, logBytesMax and snapshotBytesMax bound what a
// restart reads, so that a garbled file cannot make it allocate without
// bound.
const (
	quorumStateBytesMax = 64 << 10
	logBytesMax         = 1 << 30
	snapshotBytesMax    = 1 << 30
)

// snapshotHeaderBytes is the size of the header a checkpoint file's data
// starts with: the snapshot's end offset (int64) and epoch (int32), so that
// a file whose name and contents disagree is caught rather than believed.
const snapshotHeaderBytes = 12

// quorumState is the quorum-state file's contents. The field names are
// KRaft's, so that an operator who knows Kafka reads it at a glance.
type quorumState struct {
	ClusterID   string `json:"clusterId"`
	LeaderID    int32  `json:"leaderId"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	VotedID     int32  `json:"votedId"`
}

// store is the durable half of one Raft node: the quorum state, written
// atomically on every change; the newest snapshot of the state machine, a
// checkpoint file; and the metadata log from the snapshot's offset on, one
// segment file of Kafka v2 record batches of one record each (the entry's
// data is the record's value, its offset the batch's base offset and its
// epoch the batch's partition leader epoch: KRaft's own layout).
//
// Between the I/O steps of a compaction or an install, and after a crash in
// one, the directory may hold more: an older snapshot, an older segment, a
// temporary file. openStore reads any such state back to the one-segment
// layout; doc.go's "Crash safety" says why every intermediate state is
// valid.
//
// A store is used from one goroutine at a time: the loop while it opens, and
// afterwards only the I/O job in flight (core.IO's contract: work touches
// nothing but what it was built with).
type store struct {
	fs        core.FS
	dir       string
	clusterID string
	// log is the open segment, whose first entry is baseOffset (the log
	// start offset, the newest snapshot's offset).
	log        core.File
	baseOffset int64
	// positions[i] is the file position of entry baseOffset+i; sizeBytes is
	// the file's length, the position of the next entry.
	positions []int64
	sizeBytes int64
	// snapshotOffset and snapshotEpoch name the newest durable snapshot
	// (zero without one).
	snapshotOffset int64
	snapshotEpoch  int32
	// scratch is reused to encode appended entries.
	scratch []byte
}

// segmentName returns the name of the segment whose first entry is base.
func segmentName(base int64) string { return fmt.Sprintf("%020d%s", base, segmentSuffix) }

// checkpointName returns the name of the snapshot (offset, epoch).
func checkpointName(offset int64, epoch int32) string {
	return fmt.Sprintf("%020d-%010d%s", offset, epoch, checkpointSuffix)
}

// parseSegmentName returns the base offset a segment's name gives.
func parseSegmentName(name string) (int64, bool) {
	var base int64
	if len(name) != 20+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "%020d", &base); err != nil || segmentName(base) != name {
		return 0, false
	}
	return base, true
}

// parseCheckpointName returns the snapshot id a checkpoint file's name
// gives.
func parseCheckpointName(name string) (int64, int32, bool) {
	var offset int64
	var epoch int32
	if !strings.HasSuffix(name, checkpointSuffix) {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(name, "%020d-%010d", &offset, &epoch); err != nil || checkpointName(offset, epoch) != name {
		return 0, 0, false
	}
	return offset, epoch, offset > 0
}

// directory is what a listing of the metadata log directory found, each
// list sorted by offset.
type directory struct {
	segments    []int64
	checkpoints []raft.Snapshot // ids only
	temporaries []string
}

func listDirectory(fsys core.FS, dir string) (directory, error) {
	var found directory
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return found, fmt.Errorf("quorum: list %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir {
			continue
		}
		if strings.HasSuffix(e.Name, core.TempSuffix) {
			found.temporaries = append(found.temporaries, e.Name)
		} else if base, ok := parseSegmentName(e.Name); ok {
			found.segments = append(found.segments, base)
		} else if offset, epoch, ok := parseCheckpointName(e.Name); ok {
			found.checkpoints = append(found.checkpoints, raft.Snapshot{Offset: offset, Epoch: epoch})
		}
	}
	slices.Sort(found.segments)
	slices.SortFunc(found.checkpoints, func(a, b raft.Snapshot) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Epoch, b.Epoch))
	})
	return found, nil
}

// openStore opens (or creates) the metadata log directory and returns what
// the node restarts from: the quorum state, the newest valid snapshot (with
// its data) and the log entries that continue it, starting at its offset.
// It first brings the directory back to one snapshot and one segment that
// starts at the snapshot's offset (finishing a compaction or an install that
// a crash interrupted), and cuts a torn tail off the segment: only a prefix
// of an append that was not synced can be missing, and Raft's Ready rule
// means no other node was told about anything past the last sync.
func openStore(fsys core.FS, dir, clusterID string) (*store, raft.Restored, error) {
	restored := raft.Restored{HardState: raft.HardState{VotedFor: raft.NoNode, LeaderID: raft.NoNode}}
	if err := core.MkdirAllDurable(fsys, dir); err != nil {
		return nil, restored, fmt.Errorf("quorum: create %s: %w", dir, err)
	}
	if err := syncDirectory(fsys, dir); err != nil {
		return nil, restored, err
	}
	hard, err := readQuorumState(fsys, dir, clusterID)
	if err != nil {
		return nil, restored, err
	}
	restored.HardState = hard
	found, err := listDirectory(fsys, dir)
	if err != nil {
		return nil, restored, err
	}
	for _, name := range found.temporaries {
		// A write that a crash interrupted before its rename: nothing
		// refers to it.
		if err := fsys.Remove(path.Join(dir, name)); err != nil {
			return nil, restored, fmt.Errorf("quorum: remove %s: %w", name, err)
		}
	}
	snapshot, err := loadNewestSnapshot(fsys, dir, found.checkpoints)
	if err != nil {
		return nil, restored, err
	}
	read, err := readLogFrom(fsys, dir, found.segments, snapshot, hard.Epoch)
	if err != nil {
		return nil, restored, err
	}
	s := &store{fs: fsys, dir: dir, clusterID: clusterID, snapshotOffset: snapshot.Offset, snapshotEpoch: snapshot.Epoch}
	if err := s.settle(found, read); err != nil {
		return nil, restored, err
	}
	restored.Snapshot = snapshot
	restored.Entries = read.entries
	return s, restored, nil
}

// syncDirectory makes everything the directory shows durable before the
// node reads any of it. After a process crash the page cache may still hold
// writes that were never synced (an append whose sync the crash cut, a
// rename whose directory sync failed but took effect); a restarted node
// that acted on them (voted in the epoch it read, told the leader the log
// end it read) and then lost power would come back without them, with an
// older epoch or a shorter log than it announced. Syncing first makes what
// it reads what survives, as PostgreSQL syncs its data directory after a
// crash.
func syncDirectory(fsys core.FS, dir string) error {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("quorum: list %s: %w", dir, err)
	}
	for _, entry := range entries {
		if entry.IsDir {
			continue
		}
		name := path.Join(dir, entry.Name)
		file, err := fsys.Open(name)
		if err != nil {
			return fmt.Errorf("quorum: open %s: %w", name, err)
		}
		err = file.Sync()
		file.Close()
		if err != nil {
			return fmt.Errorf("quorum: sync %s at startup: %w", name, err)
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("quorum: sync %s at startup: %w", dir, err)
	}
	return nil
}

// loadNewestSnapshot reads the newest checkpoint whose checksum and header
// hold. A damaged newer one is passed over for an older one (the log must
// then still reach back to it, which readLogFrom checks); if every
// checkpoint is damaged the node cannot rebuild its state machine and
// refuses to start.
func loadNewestSnapshot(fsys core.FS, dir string, checkpoints []raft.Snapshot) (raft.Snapshot, error) {
	var damaged []string
	for i := len(checkpoints) - 1; i >= 0; i-- {
		id := checkpoints[i]
		name := checkpointName(id.Offset, id.Epoch)
		data, err := core.ReadFileChecked(fsys, path.Join(dir, name), snapshotBytesMax+snapshotHeaderBytes)
		if err == nil && len(data) >= snapshotHeaderBytes &&
			int64(binary.BigEndian.Uint64(data)) == id.Offset && int32(binary.BigEndian.Uint32(data[8:])) == id.Epoch {
			id.Data = data[snapshotHeaderBytes:]
			return id, nil
		}
		if err == nil {
			err = errors.New("its header names another snapshot")
		}
		damaged = append(damaged, fmt.Sprintf("%s (%v)", name, err))
	}
	if len(damaged) > 0 {
		return raft.Snapshot{}, fmt.Errorf("quorum: no valid metadata snapshot in %s: %s; the node cannot rebuild the metadata state and will not start (move the directory away to fetch everything again from the leader)", dir, strings.Join(damaged, ", "))
	}
	return raft.Snapshot{}, nil
}

// readLogFrom reads the segments that hold the log from snapshot's offset
// on and returns the entries from there. Segments starting after the
// snapshot's offset must follow the log without a gap: a later segment
// holds, from its base offset on, what the log held when it was written,
// and every later append, so it takes precedence from its base on. Entries
// that do not continue the snapshot (a crash installed a fetched snapshot
// but did not yet remove the log it replaced) are dropped.
func readLogFrom(fsys core.FS, dir string, segments []int64, snapshot raft.Snapshot, epochMax int32) (logRead, error) {
	start := -1
	for i, base := range segments {
		if base <= snapshot.Offset {
			start = i
		}
	}
	if start < 0 {
		if len(segments) > 0 {
			return logRead{}, fmt.Errorf("quorum: the metadata log in %s starts at %d, after its snapshot at %d: the entries between are lost", dir, segments[0], snapshot.Offset)
		}
		return logRead{}, nil
	}
	var read logRead
	var entries []raft.Entry
	first := segments[start]
	for _, base := range segments[start:] {
		if end := first + int64(len(entries)); base > end {
			return logRead{}, fmt.Errorf("quorum: the metadata log in %s ends at %d and the next segment starts at %d: the entries between are lost", dir, end, base)
		}
		name := path.Join(dir, segmentName(base))
		data, segment, positions, valid, err := readSegment(fsys, name, base, epochMax)
		if err != nil {
			return logRead{}, err
		}
		read.positions, read.validBytes = positions, valid
		read.lastBase, read.lastBytes = base, int64(len(data))
		entries = append(entries[:base-first], segment...)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Epoch < entries[i-1].Epoch {
			// Segments that disagree: keep the prefix whose epochs rise.
			entries = entries[:i]
			break
		}
	}
	end := first + int64(len(entries))
	continues := snapshot.Offset == first ||
		(snapshot.Offset <= end && entries[snapshot.Offset-1-first].Epoch == snapshot.Epoch)
	if continues {
		read.entries = slices.Clip(entries[snapshot.Offset-first:])
	}
	return read, nil
}

// segmentReadsMax bounds the reads of a segment whose valid prefix ends
// before its end.
const segmentReadsMax = 8

// readSegment reads and parses one segment, and keeps the longest valid
// prefix of several reads when one ends early. What ends a segment's valid
// prefix is either a torn tail (the same on every read) or a read that came
// back changed or failed (a flipped bit on the way, a transient error), which
// the next read does not repeat. Cutting the log there would throw away
// synced, committed entries, which the simulator's bit flips on read once
// did: a restarted voter lost six committed entries and a later leader
// overwrote them (cluster seed 170).
func readSegment(fsys core.FS, name string, base int64, epochMax int32) ([]byte, []raft.Entry, []int64, int64, error) {
	var (
		best          []byte
		bestEntries   []raft.Entry
		bestPositions []int64
		bestValid     int64 = -1
		lastErr       error
	)
	for range segmentReadsMax {
		data, err := core.ReadFile(fsys, name, logBytesMax)
		if err != nil {
			lastErr = err
			continue
		}
		entries, positions, valid := parseLog(data, base, epochMax)
		if valid > bestValid {
			best, bestEntries, bestPositions, bestValid = data, entries, positions, valid
		}
		if valid == int64(len(data)) {
			break
		}
	}
	if bestValid < 0 {
		return nil, nil, nil, 0, fmt.Errorf("quorum: read %s: %w", name, lastErr)
	}
	return best, bestEntries, bestPositions, bestValid, nil
}

// logRead is what readLogFrom found: the entries from the snapshot's
// offset on, and the last segment it read, for a restart that keeps that
// segment (its base offset, length, valid prefix and entry positions).
type logRead struct {
	entries    []raft.Entry
	lastBase   int64
	lastBytes  int64
	validBytes int64
	positions  []int64
}

// settle leaves the directory as the one snapshot s names and one segment
// that starts at its offset and holds exactly read's entries, and opens
// that segment for appending. When the directory already is so (the usual
// restart: the last segment starts at the snapshot's offset) it only cuts a
// torn tail; otherwise it writes the segment anew (temporary file, sync,
// rename, directory sync) and only then removes the other segments and
// snapshots.
func (s *store) settle(found directory, read logRead) error {
	var err error
	reuse := len(found.segments) > 0 && read.lastBase == s.snapshotOffset && found.segments[len(found.segments)-1] == s.snapshotOffset
	if reuse {
		name := path.Join(s.dir, segmentName(s.snapshotOffset))
		if s.log, err = s.fs.Open(name); err != nil {
			return fmt.Errorf("quorum: open %s: %w", name, err)
		}
		if read.validBytes < read.lastBytes {
			// Cut the torn tail now, durably, so that the next append does
			// not land behind garbage.
			if err := s.log.Truncate(read.validBytes); err != nil {
				return fmt.Errorf("quorum: cut the torn tail of %s at %d: %w", name, read.validBytes, err)
			}
			if err := s.log.Sync(); err != nil {
				return fmt.Errorf("quorum: sync %s: %w", name, err)
			}
		}
		s.positions, s.sizeBytes = read.positions, read.validBytes
	} else {
		encoded, positions, err := encodeEntries(nil, 0, read.entries)
		if err != nil {
			return err
		}
		if s.log, err = s.writeSegment(s.snapshotOffset, encoded); err != nil {
			return err
		}
		s.positions, s.sizeBytes = positions, int64(len(encoded))
	}
	s.baseOffset = s.snapshotOffset
	return s.removeStale()
}

// writeSegment writes a whole segment durably and atomically and returns it
// open for appending.
func (s *store) writeSegment(base int64, data []byte) (core.File, error) {
	name := segmentName(base)
	if err := core.WriteFileAtomic(s.fs, s.dir, name, data); err != nil {
		return nil, fmt.Errorf("quorum: write %s: %w", name, err)
	}
	file, err := s.fs.Open(path.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("quorum: open %s: %w", name, err)
	}
	return file, nil
}

// removeStale removes every segment but the open one and every snapshot
// but the newest, then makes the removals durable. It runs only once the
// open segment and the newest snapshot are durable, so a crash part way
// leaves extra files that the next open removes again.
func (s *store) removeStale() error {
	found, err := listDirectory(s.fs, s.dir)
	if err != nil {
		return err
	}
	removed := false
	for _, base := range found.segments {
		if base != s.baseOffset {
			if err := s.fs.Remove(path.Join(s.dir, segmentName(base))); err != nil {
				return fmt.Errorf("quorum: remove segment %d: %w", base, err)
			}
			removed = true
		}
	}
	for _, id := range found.checkpoints {
		if id.Offset != s.snapshotOffset || id.Epoch != s.snapshotEpoch {
			if err := s.fs.Remove(path.Join(s.dir, checkpointName(id.Offset, id.Epoch))); err != nil {
				return fmt.Errorf("quorum: remove snapshot %d-%d: %w", id.Offset, id.Epoch, err)
			}
			removed = true
		}
	}
	if !removed {
		return nil
	}
	return s.fs.SyncDir(s.dir)
}

// readQuorumState reads the quorum-state file; a missing one is a node that
// never ran. A file that fails its checksum is an error: guessing an epoch
// or a vote could make the node vote twice.
func readQuorumState(fsys core.FS, dir, clusterID string) (raft.HardState, error) {
	hard := raft.HardState{VotedFor: raft.NoNode, LeaderID: raft.NoNode}
	data, err := core.ReadFileChecked(fsys, path.Join(dir, quorumStateFile), quorumStateBytesMax)
	if errors.Is(err, fs.ErrNotExist) {
		return hard, nil
	}
	if err != nil {
		return hard, fmt.Errorf("quorum: read %s: %w", quorumStateFile, err)
	}
	var state quorumState
	if err := json.Unmarshal(data, &state); err != nil {
		return hard, fmt.Errorf("quorum: %s is not valid: %w", quorumStateFile, err)
	}
	if state.ClusterID != clusterID {
		return hard, fmt.Errorf("quorum: %s belongs to cluster %q, this node is configured for %q", path.Join(dir, quorumStateFile), state.ClusterID, clusterID)
	}
	return raft.HardState{Epoch: state.LeaderEpoch, VotedFor: state.VotedID, LeaderID: state.LeaderID}, nil
}

// parseLog decodes the longest valid prefix of a segment whose first entry
// is base: batches of one record each, offsets dense from base, epochs never
// decreasing and never past the quorum state's epoch. It returns the
// entries, their positions and the length of the valid prefix.
func parseLog(data []byte, base int64, epochMax int32) ([]raft.Entry, []int64, int64) {
	var entries []raft.Entry
	var positions []int64
	position := 0
	for position < len(data) {
		size, err := record.BatchSize(data[position:])
		if err != nil || size > len(data)-position {
			break
		}
		header, records, err := record.DecodeRecords(data[position : position+size])
		if err != nil || len(records) != 1 {
			break
		}
		epoch := header.PartitionLeaderEpoch
		if header.BaseOffset != base+int64(len(entries)) || epoch > epochMax ||
			(len(entries) > 0 && epoch < entries[len(entries)-1].Epoch) || !epochKeyMatches(records[0].Key, epoch) {
			break
		}
		entries = append(entries, raft.Entry{Offset: header.BaseOffset, Epoch: epoch, Data: records[0].Value})
		positions = append(positions, int64(position))
		position += size
	}
	return entries, positions, int64(position)
}

// epochKey is an entry's epoch as its record's key. A batch's partition
// leader epoch lies outside the batch's CRC, so a bit flipped there on the
// way from the disk passed every check, and a restarted voter handed Raft
// an entry of epoch 0 after a snapshot of epoch 1 (cluster seed 5003810);
// the key repeats the epoch inside the CRC.
func epochKey(epoch int32) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(epoch))
}

// epochKeyMatches reports whether a record's key agrees with its batch's
// epoch. A record without a key comes from before the key was written and
// is taken as it is.
func epochKeyMatches(key []byte, epoch int32) bool {
	return key == nil || (len(key) == 4 && int32(binary.BigEndian.Uint32(key)) == epoch)
}

// encodeEntries appends entries to dst as batches and returns the
// positions they start at, counted from startBytes for dst's first byte.
func encodeEntries(dst []byte, startBytes int64, entries []raft.Entry) ([]byte, []int64, error) {
	positions := make([]int64, 0, len(entries))
	for _, e := range entries {
		positions = append(positions, startBytes+int64(len(dst)))
		spec := record.NewBatchSpec(record.CodecNone)
		spec.BaseOffset = e.Offset
		spec.PartitionLeaderEpoch = e.Epoch
		var err error
		if dst, err = record.AppendBatch(dst, spec, []record.Record{{Key: epochKey(e.Epoch), Value: e.Data}}); err != nil {
			return nil, nil, fmt.Errorf("quorum: encode entry %d: %w", e.Offset, err)
		}
	}
	return dst, positions, nil
}

// writeQuorumState makes hard durable, atomically.
func (s *store) writeQuorumState(hard raft.HardState) error {
	data, err := json.Marshal(quorumState{ClusterID: s.clusterID, LeaderID: hard.LeaderID, LeaderEpoch: hard.Epoch, VotedID: hard.VotedFor})
	if err != nil {
		return err
	}
	return core.WriteFileChecked(s.fs, s.dir, quorumStateFile, data)
}

// endOffset is the offset after the last entry written.
func (s *store) endOffset() int64 { return s.baseOffset + int64(len(s.positions)) }

// truncate removes every entry at or after offset. Raft never truncates
// below its high watermark, which is at or beyond the log start.
func (s *store) truncate(offset int64) error {
	if offset >= s.endOffset() {
		return nil
	}
	if offset < s.baseOffset {
		return fmt.Errorf("quorum: truncate to %d, below the log start %d", offset, s.baseOffset)
	}
	position := s.positions[offset-s.baseOffset]
	if err := s.log.Truncate(position); err != nil {
		return err
	}
	s.sizeBytes = position
	s.positions = s.positions[:offset-s.baseOffset]
	return nil
}

// append writes entries at the log's end. On a failed write the store's view
// may be ahead of the file; the host halts the node on any error, so the
// next life rereads the file.
func (s *store) append(entries []raft.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	for i, e := range entries {
		if want := s.endOffset() + int64(i); e.Offset != want {
			return fmt.Errorf("quorum: append of offset %d at log end %d", e.Offset, want)
		}
	}
	var positions []int64
	var err error
	if s.scratch, positions, err = encodeEntries(s.scratch[:0], s.sizeBytes, entries); err != nil {
		return err
	}
	if _, err := s.log.Write(s.scratch); err != nil {
		return err
	}
	s.positions = append(s.positions, positions...)
	s.sizeBytes += int64(len(s.scratch))
	return nil
}

// sync makes every appended entry durable.
func (s *store) sync() error { return s.log.Sync() }

// close releases the log file.
func (s *store) close() error { return s.log.Close() }

// writeSnapshot makes a snapshot of the state machine durable, atomically
// (temporary file, sync, rename, directory sync), as its own checkpoint
// file. It changes nothing else: the log and older snapshots stay until
// compact, which runs only after Raft accepted the snapshot.
func (s *store) writeSnapshot(offset int64, epoch int32, data []byte) error {
	if offset <= 0 || epoch < 0 {
		return fmt.Errorf("quorum: snapshot id %d-%d", offset, epoch)
	}
	contents := make([]byte, snapshotHeaderBytes, snapshotHeaderBytes+len(data))
	binary.BigEndian.PutUint64(contents, uint64(offset))
	binary.BigEndian.PutUint32(contents[8:], uint32(epoch))
	contents = append(contents, data...)
	return core.WriteFileChecked(s.fs, s.dir, checkpointName(offset, epoch), contents)
}

// compact drops the entries below offset, which a durable snapshot
// (offset, epoch) covers: it writes the entries from offset on as a new
// segment named by offset (temporary file, sync, rename, directory sync),
// switches to it, and only then removes the old segment and the older
// snapshots. Every entry was synced before (the host compacts between
// Readies), so the copy holds exactly the durable log from offset on.
func (s *store) compact(offset int64, epoch int32) error {
	if offset <= s.baseOffset || offset > s.endOffset() {
		return fmt.Errorf("quorum: compact at %d, outside the log (%d to %d)", offset, s.baseOffset, s.endOffset())
	}
	from := s.sizeBytes
	if offset < s.endOffset() {
		from = s.positions[offset-s.baseOffset]
	}
	tail := make([]byte, s.sizeBytes-from)
	if len(tail) > 0 {
		if _, err := s.log.ReadAt(tail, from); err != nil {
			return fmt.Errorf("quorum: read the log from %d: %w", offset, err)
		}
	}
	file, err := s.writeSegment(offset, tail)
	if err != nil {
		return err
	}
	positions := make([]int64, 0, s.endOffset()-offset)
	for _, p := range s.positions[offset-s.baseOffset:] {
		positions = append(positions, p-from)
	}
	s.log.Close()
	s.log, s.baseOffset, s.positions, s.sizeBytes = file, offset, positions, int64(len(tail))
	s.snapshotOffset, s.snapshotEpoch = offset, epoch
	return s.removeStale()
}

// install makes a snapshot fetched from the leader durable and replaces the
// whole log with an empty segment at its offset (Ready's step 2): the
// snapshot first, then the new segment, then the removal of the old
// segment and snapshots.
func (s *store) install(snapshot raft.Snapshot) error {
	if err := s.writeSnapshot(snapshot.Offset, snapshot.Epoch, snapshot.Data); err != nil {
		return err
	}
	file, err := s.writeSegment(snapshot.Offset, nil)
	if err != nil {
		return err
	}
	s.log.Close()
	s.log, s.baseOffset, s.positions, s.sizeBytes = file, snapshot.Offset, nil, 0
	s.snapshotOffset, s.snapshotEpoch = snapshot.Offset, snapshot.Epoch
	return s.removeStale()
}
