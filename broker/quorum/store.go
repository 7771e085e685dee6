package quorum

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// Names of the files in the metadata log directory, as KRaft names them.
const (
	quorumStateFile = "quorum-state"
	logFile         = "00000000000000000000.log"
)

// quorumStateBytesMax and logBytesMax bound what a restart reads, so that a
// garbled file cannot make it allocate without bound.
const (
	quorumStateBytesMax = 64 << 10
	logBytesMax         = 1 << 30
)

// quorumState is the quorum-state file's contents. The field names are
// KRaft's, so that an operator who knows Kafka reads it at a glance.
type quorumState struct {
	ClusterID   string `json:"clusterId"`
	LeaderID    int32  `json:"leaderId"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	VotedID     int32  `json:"votedId"`
}

// store is the durable half of one Raft node: the quorum state, written
// atomically on every change, and the metadata log, one file of Kafka v2
// record batches of one record each (the entry's data is the record's
// value, its offset the batch's base offset and its epoch the batch's
// partition leader epoch: KRaft's own layout).
//
// A store is used from one goroutine at a time: the loop while it opens, and
// afterwards only the I/O job of the Ready in flight (core.IO's contract:
// work touches nothing but what it was built with).
type store struct {
	fs        core.FS
	dir       string
	clusterID string
	log       core.File
	// positions[i] is the file position of entry i; sizeBytes is the
	// file's length, the position of the next entry.
	positions []int64
	sizeBytes int64
	// scratch is reused to encode appended entries.
	scratch []byte
}

// openStore opens (or creates) the metadata log directory and returns what
// the node restarts from. A torn tail (a batch that a crash cut, or whose
// offset, epoch or checksum does not follow) is cut off: only a prefix of an
// append that was not synced can be missing, and Raft's Ready rule means no
// other node was told about anything past the last sync.
func openStore(fsys core.FS, dir, clusterID string) (*store, raft.Restored, error) {
	restored := raft.Restored{HardState: raft.HardState{VotedFor: raft.NoNode, LeaderID: raft.NoNode}}
	if err := core.MkdirAllDurable(fsys, dir); err != nil {
		return nil, restored, fmt.Errorf("quorum: create %s: %w", dir, err)
	}
	hard, err := readQuorumState(fsys, dir, clusterID)
	if err != nil {
		return nil, restored, err
	}
	restored.HardState = hard
	s := &store{fs: fsys, dir: dir, clusterID: clusterID}
	name := path.Join(dir, logFile)
	data, err := core.ReadFile(fsys, name, logBytesMax)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	case err != nil:
		return nil, restored, fmt.Errorf("quorum: read %s: %w", name, err)
	}
	entries, positions, valid := parseLog(data, hard.Epoch)
	if s.log, err = openForAppend(fsys, name); err != nil {
		return nil, restored, err
	}
	if valid < int64(len(data)) {
		// Cut the torn tail now, durably, so that the next append does
		// not land behind garbage.
		if err := s.log.Truncate(valid); err != nil {
			return nil, restored, fmt.Errorf("quorum: cut the torn tail of %s at %d: %w", name, valid, err)
		}
		if err := s.log.Sync(); err != nil {
			return nil, restored, fmt.Errorf("quorum: sync %s: %w", name, err)
		}
	}
	s.positions, s.sizeBytes = positions, valid
	restored.Entries = entries
	return s, restored, nil
}

// openForAppend opens name for appending, creating it if missing.
func openForAppend(fsys core.FS, name string) (core.File, error) {
	file, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		file, err = fsys.Create(name)
		if err == nil {
			err = fsys.SyncDir(path.Dir(name))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("quorum: open %s: %w", name, err)
	}
	return file, nil
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

// parseLog decodes the longest valid prefix of a metadata log: batches of
// one record each, offsets dense from 0, epochs never decreasing and never
// past the quorum state's epoch. It returns the entries, their positions and
// the length of the valid prefix.
func parseLog(data []byte, epochMax int32) ([]raft.Entry, []int64, int64) {
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
		if header.BaseOffset != int64(len(entries)) || epoch > epochMax ||
			(len(entries) > 0 && epoch < entries[len(entries)-1].Epoch) {
			break
		}
		entries = append(entries, raft.Entry{Offset: header.BaseOffset, Epoch: epoch, Data: records[0].Value})
		positions = append(positions, int64(position))
		position += size
	}
	return entries, positions, int64(position)
}

// writeQuorumState makes hard durable, atomically.
func (s *store) writeQuorumState(hard raft.HardState) error {
	data, err := json.Marshal(quorumState{ClusterID: s.clusterID, LeaderID: hard.LeaderID, LeaderEpoch: hard.Epoch, VotedID: hard.VotedFor})
	if err != nil {
		return err
	}
	return core.WriteFileChecked(s.fs, s.dir, quorumStateFile, data)
}

// truncate removes every entry at or after offset.
func (s *store) truncate(offset int64) error {
	if offset >= int64(len(s.positions)) {
		return nil
	}
	if err := s.log.Truncate(s.positions[offset]); err != nil {
		return err
	}
	s.sizeBytes = s.positions[offset]
	s.positions = s.positions[:offset]
	return nil
}

// append writes entries at the log's end. On a failed write the store's view
// may be ahead of the file; the host halts the node on any error, so the
// next life rereads the file.
func (s *store) append(entries []raft.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	s.scratch = s.scratch[:0]
	positions := make([]int64, 0, len(entries))
	for _, e := range entries {
		if e.Offset != int64(len(s.positions)+len(positions)) {
			return fmt.Errorf("quorum: append of offset %d at log end %d", e.Offset, len(s.positions)+len(positions))
		}
		positions = append(positions, s.sizeBytes+int64(len(s.scratch)))
		spec := record.NewBatchSpec(record.CodecNone)
		spec.BaseOffset = e.Offset
		spec.PartitionLeaderEpoch = e.Epoch
		var err error
		if s.scratch, err = record.AppendBatch(s.scratch, spec, []record.Record{{Value: e.Data}}); err != nil {
			return fmt.Errorf("quorum: encode entry %d: %w", e.Offset, err)
		}
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
