package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/kafkasim/kafkasim/core"
)

// Producer state snapshots, kept as Kafka's ProducerStateManager keeps them.
//
// A snapshot file is named by its offset, `<20-digit offset>.snapshot`, and
// holds the producer table as it was after every batch below that offset
// (and none at or above it). One is written at every segment roll, at the
// new segment's base offset: roll has just synced everything below it, so
// the snapshot never names data that a crash can take away. Opening a
// partition loads the newest usable snapshot and replays only the batch
// headers from its offset on, so startup reads the active segment rather
// than the whole log.
//
// Retention deletes batches the table was built from; their producers are
// still remembered because a snapshot at or above the new log start holds
// them. Retention keeps the newest snapshot at or below the log start and
// deletes older ones, so the number of files follows the number of segments.
//
// Snapshots above the log end (a power loss cut the log below them) are
// deleted on open, and entries of batches at or above the log end are
// dropped, so a retry of a lost batch is appended again instead of being
// acknowledged as a duplicate of an offset that no longer exists. A corrupt
// or oversized snapshot is a warning: the next older one, or a replay from
// the log start, takes its place.
const (
	producerSnapshotSuffix  = ".snapshot"
	producerSnapshotVersion = 2
	// producerSnapshotDigits is the width of the zero-padded offset in a
	// snapshot's name, as in Kafka's segment and snapshot names.
	producerSnapshotDigits = 20
	// legacyProducerSnapshotFileName is the single snapshot a partition had
	// before per-roll snapshots (version 1, rewritten before every
	// retention check). It is still loaded, as a snapshot at its up_to
	// offset, and retention deletes it like any other.
	legacyProducerSnapshotFileName = "producer-state"
	legacyProducerSnapshotVersion  = 1
	// producerSnapshotBytesMax bounds the file read on open: a little over
	// 1M producers with 5 batches each. Expiration keeps real tables far
	// smaller; a larger file is treated as corrupt.
	producerSnapshotBytesMax = 256 << 20
)

type producerSnapshot struct {
	Version int `json:"version"`
	// UpTo is the snapshot's offset: it holds every remembered batch below
	// it, and replay starts there.
	UpTo      int64                   `json:"up_to"`
	Producers []producerSnapshotEntry `json:"producers"`
}

type producerSnapshotEntry struct {
	ID    int64 `json:"id"`
	Epoch int16 `json:"epoch"`
	// LastTimestampMs is absent (zero) in version 1 files.
	LastTimestampMs int64      `json:"last_timestamp_ms"`
	Batches         [][4]int64 `json:"batches"` // first/last sequence, first/last offset, oldest first
}

// producerSnapshotFile is one snapshot file of a partition.
type producerSnapshotFile struct {
	offset int64
	name   string
}

func producerSnapshotName(offset int64) string {
	return fmt.Sprintf("%0*d%s", producerSnapshotDigits, offset, producerSnapshotSuffix)
}

// parseProducerSnapshotName returns the offset of a snapshot file name, and
// false for any other name.
func parseProducerSnapshotName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, producerSnapshotSuffix)
	if !ok || len(digits) != producerSnapshotDigits || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false
	}
	offset, err := strconv.ParseInt(digits, 10, 64)
	return offset, err == nil
}

// snapshot encodes the batches of the table below upTo.
func (t *producerTable) snapshot(upTo int64) ([]byte, error) {
	s := producerSnapshot{Version: producerSnapshotVersion, UpTo: upTo}
	ids := make([]int64, 0, len(t.entries))
	for id := range t.entries { // order-independent: sorted below
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		entry := t.entries[id]
		e := producerSnapshotEntry{ID: id, Epoch: entry.epoch, LastTimestampMs: entry.lastTimestampMs}
		for i := range entry.count {
			b := entry.batches[(entry.head+i)%producerBatchesRemembered]
			if b.lastOffset < upTo {
				e.Batches = append(e.Batches, [4]int64{int64(b.firstSequence), int64(b.lastSequence), b.firstOffset, b.lastOffset})
			}
		}
		if len(e.Batches) > 0 {
			s.Producers = append(s.Producers, e)
		}
	}
	return json.Marshal(s)
}

// producerSnapshotLimits says how a loaded snapshot is cut to the present.
type producerSnapshotLimits struct {
	// logEndOffset drops every batch at or above it (the log lost them).
	logEndOffset int64
	// nowMs and expirationMs drop the entries that have expired.
	nowMs, expirationMs int64
}

// decodeProducerSnapshot parses a snapshot into a new table, dropping
// batches at or above the log end and expired entries. A version 1 entry
// has no timestamp and counts as written at nowMs.
func decodeProducerSnapshot(data []byte, limits producerSnapshotLimits) (*producerTable, int64, error) {
	var s producerSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, 0, fmt.Errorf("producer snapshot does not parse: %w", err)
	}
	if s.Version != producerSnapshotVersion && s.Version != legacyProducerSnapshotVersion {
		return nil, 0, fmt.Errorf("producer snapshot version %d is not %d", s.Version, producerSnapshotVersion)
	}
	if s.UpTo < 0 {
		return nil, 0, fmt.Errorf("producer snapshot offset %d is negative", s.UpTo)
	}
	t := newProducerTable()
	for _, e := range s.Producers {
		if err := checkSnapshotEntry(e, s.UpTo); err != nil {
			return nil, 0, err
		}
		if s.Version == legacyProducerSnapshotVersion {
			e.LastTimestampMs = limits.nowMs
		}
		if _, seen := t.entries[e.ID]; seen {
			return nil, 0, fmt.Errorf("producer snapshot lists producer %d twice", e.ID)
		}
		entry := &producerEntry{epoch: e.Epoch, lastTimestampMs: e.LastTimestampMs}
		for _, b := range e.Batches {
			if b[3] < limits.logEndOffset {
				entry.push(batchMeta{firstSequence: int32(b[0]), lastSequence: int32(b[1]), firstOffset: b[2], lastOffset: b[3]})
				t.endOffset = max(t.endOffset, b[3]+1)
			}
		}
		if entry.count > 0 && limits.nowMs-entry.lastTimestampMs < limits.expirationMs {
			t.entries[e.ID] = entry
		}
	}
	return t, s.UpTo, nil
}

// checkSnapshotEntry rejects an entry that the table could not have held:
// too many batches, or batches that are empty, out of order, overlapping,
// or not below the snapshot's offset.
func checkSnapshotEntry(e producerSnapshotEntry, upTo int64) error {
	if e.ID < 0 || len(e.Batches) == 0 || len(e.Batches) > producerBatchesRemembered {
		return fmt.Errorf("producer snapshot entry of producer %d with %d batches", e.ID, len(e.Batches))
	}
	previous := int64(-1)
	for _, b := range e.Batches {
		sequencesValid := b[0] >= 0 && b[1] >= 0 && b[0] <= 1<<31-1 && b[1] <= 1<<31-1
		offsetsValid := previous < b[2] && b[2] <= b[3] && b[3] < upTo
		if !sequencesValid || !offsetsValid {
			return fmt.Errorf("producer snapshot entry of producer %d has an impossible batch %v", e.ID, b)
		}
		previous = b[3]
	}
	return nil
}

// listProducerSnapshots returns the snapshot files of dir, oldest first. The
// legacy file's offset is read from its contents (-1 if it cannot be, so it
// sorts first and fails its load).
func listProducerSnapshots(fsys core.FS, dir string) ([]producerSnapshotFile, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []producerSnapshotFile
	for _, e := range entries {
		if e.IsDir {
			continue
		}
		if offset, ok := parseProducerSnapshotName(e.Name); ok {
			files = append(files, producerSnapshotFile{offset: offset, name: e.Name})
		} else if e.Name == legacyProducerSnapshotFileName {
			files = append(files, producerSnapshotFile{offset: legacySnapshotOffset(fsys, dir), name: e.Name})
		}
	}
	// The legacy file sorts before a new one at the same offset, so the new
	// one is preferred.
	slices.SortStableFunc(files, func(a, b producerSnapshotFile) int {
		if a.offset != b.offset {
			return cmpInt64(a.offset, b.offset)
		}
		return cmpBool(a.name != legacyProducerSnapshotFileName, b.name != legacyProducerSnapshotFileName)
	})
	return files, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func legacySnapshotOffset(fsys core.FS, dir string) int64 {
	data, err := core.ReadFileChecked(fsys, path.Join(dir, legacyProducerSnapshotFileName), producerSnapshotBytesMax)
	var s producerSnapshot
	if err != nil || json.Unmarshal(data, &s) != nil || s.UpTo < 0 {
		return -1
	}
	return s.UpTo
}

// loadProducerState builds the producer table on open: from the newest
// usable snapshot at or below the log end, then the batches after it.
// Snapshots above the log end are deleted (durably, before anything else
// is appended: if one came back after a crash, a later open would trust
// it over a log that regrew past it); corrupt ones are deleted with a
// warning and the next older one is tried.
func (p *partition) loadProducerState() error {
	files, err := listProducerSnapshots(p.node.env.FS, p.dir)
	if err != nil {
		return fmt.Errorf("broker: listing producer snapshots of %s: %w", p.dir, err)
	}
	if err := p.removeSnapshotsAbove(files, p.log.LogEndOffset()); err != nil {
		return err
	}
	files = slices.DeleteFunc(files, func(f producerSnapshotFile) bool { return f.offset > p.log.LogEndOffset() })
	p.producers = newProducerTable()
	from := int64(0)
	for len(files) > 0 {
		newest := files[len(files)-1]
		table, offset, err := p.readProducerSnapshot(newest.name)
		if err == nil {
			p.producers, from = table, offset
			break
		}
		p.node.log.Warn("producer snapshot unusable; trying an older one", slog.String("partition", p.String()),
			slog.String("file", newest.name), slog.Any("err", err))
		if err := p.node.env.FS.Remove(path.Join(p.dir, newest.name)); err != nil {
			p.node.log.Warn("cannot remove an unusable producer snapshot", slog.String("file", newest.name), slog.Any("err", err))
		}
		files = files[:len(files)-1]
	}
	p.snapshots = files
	if err := p.replayProducers(max(from, p.log.LogStartOffset())); err != nil {
		return err
	}
	p.producers.expire(p.node.now().UnixMilli(), p.producerIDExpirationMs())
	return nil
}

// removeSnapshotsAbove deletes the snapshots above end and syncs the
// directory.
func (p *partition) removeSnapshotsAbove(files []producerSnapshotFile, end int64) error {
	removed := false
	for _, f := range files {
		if f.offset <= end {
			continue
		}
		p.node.log.Warn("producer snapshot above the log end deleted", slog.String("partition", p.String()),
			slog.String("file", f.name), slog.Int64("log_end_offset", end))
		if err := p.node.env.FS.Remove(path.Join(p.dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("broker: removing producer snapshot %s of %s: %w", f.name, p.dir, err)
		}
		removed = true
	}
	if removed {
		if err := p.node.env.FS.SyncDir(p.dir); err != nil {
			return fmt.Errorf("broker: syncing %s: %w", p.dir, err)
		}
	}
	return nil
}

// readProducerSnapshot loads one snapshot file, cut to the log end and the
// expiration. The offset is checked against the file name.
func (p *partition) readProducerSnapshot(name string) (*producerTable, int64, error) {
	data, err := core.ReadFileChecked(p.node.env.FS, path.Join(p.dir, name), producerSnapshotBytesMax)
	if err != nil {
		return nil, 0, err
	}
	limits := producerSnapshotLimits{
		logEndOffset: p.log.LogEndOffset(),
		nowMs:        p.node.now().UnixMilli(),
		expirationMs: p.producerIDExpirationMs(),
	}
	table, offset, err := decodeProducerSnapshot(data, limits)
	if err != nil {
		return nil, 0, err
	}
	if named, ok := parseProducerSnapshotName(name); ok && named != offset {
		return nil, 0, fmt.Errorf("producer snapshot %s holds offset %d", name, offset)
	}
	if offset > limits.logEndOffset {
		return nil, 0, fmt.Errorf("producer snapshot %s is above the log end %d", name, limits.logEndOffset)
	}
	return table, offset, nil
}

// latestSnapshotOffset is the offset of the newest snapshot, 0 without
// one (an empty table is the state below offset 0).
func (p *partition) latestSnapshotOffset() int64 {
	if len(p.snapshots) == 0 {
		return 0
	}
	return p.snapshots[len(p.snapshots)-1].offset
}

// writeProducerSnapshot saves the table's batches below offset, which must
// be durable, unless the newest snapshot is already at offset.
func (p *partition) writeProducerSnapshot(offset int64) error {
	assert(offset <= p.log.DurableEndOffset(), "producer snapshot above the durable end")
	if len(p.snapshots) > 0 && p.latestSnapshotOffset() >= offset {
		return nil
	}
	data, err := p.producers.snapshot(offset)
	if err != nil {
		return err
	}
	name := producerSnapshotName(offset)
	if err := core.WriteFileChecked(p.node.env.FS, p.dir, name, data); err != nil {
		return err
	}
	p.snapshots = append(p.snapshots, producerSnapshotFile{offset: offset, name: name})
	return nil
}

// snapshotAtRoll writes the snapshot at a new segment's base. A failure is
// a warning: retention writes one before it deletes anything the table
// still needs, and startup replays from an older snapshot.
func (p *partition) snapshotAtRoll(base int64) {
	p.activeSegmentBase = base
	if err := p.writeProducerSnapshot(base); err != nil {
		p.node.log.Warn("cannot write the producer snapshot at a roll", slog.String("partition", p.String()),
			slog.Int64("offset", base), slog.Any("err", err))
	}
}

// saveProducerStateBeforeRetention makes sure the newest snapshot covers
// whatever retention may delete, and reports whether retention may run.
// Retention never deletes the active segment, so a snapshot at or above
// its base suffices, as does one at or above every batch the table holds.
// Otherwise (the roll's snapshot failed, or the segments predate per-roll
// snapshots) one is written at the durable end; nothing is rewritten when
// nothing changed.
func (p *partition) saveProducerStateBeforeRetention() bool {
	latest := p.latestSnapshotOffset()
	if latest >= p.activeSegmentBase || latest >= p.producers.endOffset {
		return true
	}
	if err := p.writeProducerSnapshot(p.log.DurableEndOffset()); err != nil {
		p.node.log.Warn("cannot save producer state; retention waits", slog.String("partition", p.String()), slog.Any("err", err))
		return false
	}
	return true
}

// removeSnapshotsBelow deletes the snapshots older than the newest one at
// or below logStart: the ones after it are what startup loads, and it
// remembers the producers of deleted batches. A failed removal is retried
// at the next retention check.
func (p *partition) removeSnapshotsBelow(logStart int64) {
	keep := 0
	for i, f := range p.snapshots {
		if f.offset <= logStart {
			keep = i
		}
	}
	for keep > 0 {
		f := p.snapshots[0]
		if err := p.node.env.FS.Remove(path.Join(p.dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			p.node.log.Warn("cannot remove an old producer snapshot", slog.String("file", f.name), slog.Any("err", err))
			return
		}
		p.snapshots = p.snapshots[1:]
		keep--
	}
}
