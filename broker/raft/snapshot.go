package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// snapshotChecksumBytes is the size of the CRC32C that follows a snapshot's
// data on the wire. FetchSnapshot carries opaque bytes, and a follower that
// installed a corrupted snapshot would apply a state no leader ever had; the
// checksum covers the snapshot id too, so chunks of two snapshots cannot mix.
const snapshotChecksumBytes = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotChecksum returns the CRC32C of a snapshot's id and data.
func snapshotChecksum(offset int64, epoch int32, data []byte) uint32 {
	var id [12]byte
	binary.BigEndian.PutUint64(id[:8], uint64(offset))
	binary.BigEndian.PutUint32(id[8:], uint32(epoch))
	return crc32.Update(crc32.Checksum(id[:], castagnoli), castagnoli, data)
}

// encodeSnapshot returns the bytes FetchSnapshot serves: the data, then the
// checksum of the id and the data.
func encodeSnapshot(s Snapshot) []byte {
	wire := make([]byte, 0, len(s.Data)+snapshotChecksumBytes)
	wire = append(wire, s.Data...)
	return binary.BigEndian.AppendUint32(wire, snapshotChecksum(s.Offset, s.Epoch, s.Data))
}

// decodeSnapshot checks fetched bytes against the snapshot id they were
// fetched for and returns the snapshot.
func decodeSnapshot(offset int64, epoch int32, wire []byte, verify bool) (Snapshot, error) {
	if len(wire) < snapshotChecksumBytes {
		return Snapshot{}, fmt.Errorf("raft: fetched snapshot %d-%d has %d bytes, too few for its checksum", offset, epoch, len(wire))
	}
	data := wire[:len(wire)-snapshotChecksumBytes]
	want := binary.BigEndian.Uint32(wire[len(data):])
	if got := snapshotChecksum(offset, epoch, data); verify && got != want {
		return Snapshot{}, fmt.Errorf("raft: fetched snapshot %d-%d fails its checksum (%08x, want %08x); fetching it again", offset, epoch, got, want)
	}
	return Snapshot{Offset: offset, Epoch: epoch, Data: slices.Clone(data)}, nil
}

// ErrSnapshotNotAllowed is wrapped by Compact's errors: the snapshot is not
// one the node may compact to (yet), and the node is unchanged.
var ErrSnapshotNotAllowed = errors.New("raft: snapshot not allowed")

// Compact tells the node that the host has made durable a snapshot of its
// state machine after applying every entry below offset, whose last entry
// (at offset-1) has epoch. The node drops the entries below offset from
// memory, keeps data (it must not be modified afterwards) to send to
// followers that fall behind the new log start, and remembers the snapshot
// as the one at its log start.
//
// The host may call it between an Advance and the next Ready, with an offset
// above LogStartOffset and at or below the end of the CommittedEntries it
// has applied: the entries below offset are then committed, applied and
// durable. Any other call returns an error wrapping ErrSnapshotNotAllowed
// and changes nothing (the snapshot file the host wrote stays valid for a
// restart, as every snapshot of applied entries is). Once Compact returns
// nil, the host may delete the durable entries below offset and older
// snapshots at any time, and must pass this snapshot (or a later one) as
// Restored.Snapshot when it restarts the node.
func (n *Node) Compact(offset int64, epoch int32, data []byte) error {
	switch {
	case n.readyPending:
		return fmt.Errorf("%w: a Ready is being performed (compact after Advance)", ErrSnapshotNotAllowed)
	case offset <= n.log.startOffset:
		return fmt.Errorf("%w: offset %d is not beyond the log start %d", ErrSnapshotNotAllowed, offset, n.log.startOffset)
	case offset > n.appliedOffset:
		return fmt.Errorf("%w: offset %d is beyond the applied entries (up to %d)", ErrSnapshotNotAllowed, offset, n.appliedOffset)
	case offset > n.durableEndOffset:
		return fmt.Errorf("%w: offset %d is beyond the durable log (up to %d)", ErrSnapshotNotAllowed, offset, n.durableEndOffset)
	case n.log.epochAt(offset-1) != epoch:
		return fmt.Errorf("%w: the entry at %d has epoch %d, not %d", ErrSnapshotNotAllowed, offset-1, n.log.epochAt(offset-1), epoch)
	}
	assertf(offset <= n.highWatermark, "node %d snapshots at %d above its high watermark %d", n.config.ID, offset, n.highWatermark)
	n.log.compact(offset, epoch)
	n.snapshot = Snapshot{Offset: offset, Epoch: epoch, Data: data}
	n.snapshotWire = encodeSnapshot(n.snapshot)
	n.checkInvariants()
	return nil
}

// checkSnapshotInvariants asserts KIP-630's rules: the snapshot at the log
// start always exists, and the log start never passes the high watermark (a
// snapshot covers committed entries only) or the applied offset.
func (n *Node) checkSnapshotInvariants() {
	start := n.log.startOffset
	assertf(start <= n.appliedOffset && start <= n.highWatermark, "node %d log start %d beyond applied %d or high watermark %d",
		n.config.ID, start, n.appliedOffset, n.highWatermark)
	assertf(n.snapshot.Offset == start && n.snapshot.Epoch == n.log.startEpoch,
		"node %d log starts at %d epoch %d, its snapshot is %d-%d", n.config.ID, start, n.log.startEpoch, n.snapshot.Offset, n.snapshot.Epoch)
	assertf((start == 0) == (n.snapshotWire == nil), "node %d log start %d and snapshot bytes disagree", n.config.ID, start)
}

// snapshotIDFor decides whether a Fetch must be answered with the leader's
// snapshot id instead of entries or a divergence (KIP-630, as Kafka's
// validateOffsetAndEpoch): the follower's log ends below the log start, or
// at it with another last epoch, or its last epoch is older than the
// snapshot's, so the point where the logs diverge may lie below the log
// start, where the leader no longer knows its epochs.
func (n *Node) snapshotIDFor(fetchOffset int64, lastFetchedEpoch int32) bool {
	start := n.log.startOffset
	if start == 0 {
		return false
	}
	return fetchOffset < start || (fetchOffset == start && lastFetchedEpoch != n.log.startEpoch) ||
		lastFetchedEpoch < n.log.startEpoch
}

// handleFetchSnapshotRequest serves one chunk of the snapshot at the log
// start, from the requested byte position, at most SnapshotChunkBytesMax
// (and the request's MaxBytes). A snapshot the leader no longer holds is
// SNAPSHOT_NOT_FOUND; the follower then fetches again and learns the new one.
func (n *Node) handleFetchSnapshotRequest(m Message, request *kmsg.FetchSnapshotRequest) error {
	p, ok := fetchSnapshotRequestPartition(request)
	if !ok {
		n.reply(m, fetchSnapshotError(kerr.InvalidRequest, n.hard.LeaderID, n.hard.Epoch))
		return errNoMetadataPartition
	}
	var refusal *kerr.Error
	switch {
	case p.CurrentLeaderEpoch < n.hard.Epoch:
		refusal = kerr.FencedLeaderEpoch
	case p.CurrentLeaderEpoch > n.hard.Epoch:
		refusal = kerr.UnknownLeaderEpoch
	case n.role != RoleLeader:
		refusal = kerr.NotLeaderForPartition
	case request.ReplicaID < 0:
		refusal = kerr.InvalidRequest
	case request.ReplicaID != m.From || request.ReplicaID == n.config.ID:
		refusal = kerr.InconsistentVoterSet
	case n.log.startOffset == 0 || p.SnapshotID.EndOffset != n.snapshot.Offset || p.SnapshotID.Epoch != n.snapshot.Epoch:
		refusal = kerr.SnapshotNotFound
	case p.Position < 0 || p.Position > int64(len(n.snapshotWire)):
		refusal = kerr.PositionOutOfRange
	}
	if refusal != nil {
		n.reply(m, fetchSnapshotError(refusal, n.hard.LeaderID, n.hard.Epoch))
		return nil
	}
	if index := n.voterIndex(request.ReplicaID); index >= 0 && !n.config.unsafe.snapshotFetchNotLive {
		// A voter busy fetching a snapshot is in touch: it counts for
		// check-quorum, as in Kafka, though not for the high watermark.
		n.leader.lastFetchTicks[index] = n.nowTicks
		n.leader.begun[index] = true
	}
	chunkBytes := int64(n.config.SnapshotChunkBytesMax)
	if request.MaxBytes > 0 {
		chunkBytes = min(chunkBytes, int64(request.MaxBytes))
	}
	end := min(int64(len(n.snapshotWire)), p.Position+chunkBytes)
	answer := kmsg.FetchSnapshotResponseTopicPartition{
		Partition:     metadataPartition,
		SnapshotID:    kmsg.FetchSnapshotResponseTopicPartitionSnapshotID{EndOffset: n.snapshot.Offset, Epoch: n.snapshot.Epoch},
		CurrentLeader: kmsg.FetchSnapshotResponseTopicPartitionCurrentLeader{LeaderID: n.config.ID, LeaderEpoch: n.hard.Epoch},
		Size:          int64(len(n.snapshotWire)),
		Position:      p.Position,
		Bytes:         n.snapshotWire[p.Position:end],
	}
	n.reply(m, newFetchSnapshotResponse(answer))
	return nil
}

// snapshotDownload is a follower's progress in fetching the leader's
// snapshot, chunk by chunk.
type snapshotDownload struct {
	offset   int64
	epoch    int32
	size     int64 // total bytes, -1 until the first answer
	received []byte
}

// startSnapshotDownload begins fetching the snapshot a Fetch answer named.
// The snapshot must lie beyond this node's high watermark: a leader names
// one only when this log cannot continue its own.
func (n *Node) startSnapshotDownload(id kmsg.FetchResponseTopicPartitionSnapshotID) error {
	if id.Epoch < 0 || id.Epoch > n.hard.Epoch || id.EndOffset <= n.highWatermark {
		return fmt.Errorf("raft: leader %d names snapshot %d-%d; this node's epoch is %d and high watermark %d",
			n.hard.LeaderID, id.EndOffset, id.Epoch, n.hard.Epoch, n.highWatermark)
	}
	n.follower.download = &snapshotDownload{offset: id.EndOffset, epoch: id.Epoch, size: -1}
	n.sendFetch()
	return nil
}

// sendFetchSnapshot asks the leader for the next chunk of the snapshot.
func (n *Node) sendFetchSnapshot() {
	d := n.follower.download
	p := kmsg.FetchSnapshotRequestTopicPartition{
		Partition:          metadataPartition,
		CurrentLeaderEpoch: n.hard.Epoch,
		SnapshotID:         kmsg.FetchSnapshotRequestTopicPartitionSnapshotID{EndOffset: d.offset, Epoch: d.epoch},
		Position:           int64(len(d.received)),
	}
	request := &kmsg.FetchSnapshotRequest{
		Version:   fetchSnapshotVersion,
		ClusterID: kmsg.StringPtr(n.config.ClusterID),
		ReplicaID: n.config.ID,
		MaxBytes:  int32(min(n.config.SnapshotChunkBytesMax, int(fetchBytesMax))),
		Topics:    []kmsg.FetchSnapshotRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.FetchSnapshotRequestTopicPartition{p}}},
	}
	n.follower.fetchInflight = true
	n.follower.fetchTarget = n.hard.LeaderID
	n.follower.fetchSentTicks = n.nowTicks
	n.follower.fetchCorrelationID = n.send(n.hard.LeaderID, request)
}

// handleFetchSnapshotResponse appends a chunk of the snapshot being fetched
// and installs the snapshot once it is whole and its checksum holds. Only
// the answer to the request in flight counts, and only at the position it
// asked for: a duplicated or late chunk never enters the snapshot. A
// refusal abandons the download; the next Fetch learns what to do.
func (n *Node) handleFetchSnapshotResponse(m Message, response *kmsg.FetchSnapshotResponse) error {
	trust := n.config.unsafe.trustSnapshotChunks
	d := n.follower.download
	if n.role != RoleFollower || d == nil || m.From != n.hard.LeaderID {
		return nil
	}
	if !trust && (!n.follower.fetchInflight || m.CorrelationID != n.follower.fetchCorrelationID || n.follower.fetchTarget != m.From) {
		return nil
	}
	p, ok := fetchSnapshotResponsePartition(response)
	if !ok {
		return errNoMetadataPartition
	}
	n.follower.fetchInflight = false
	if p.ErrorCode != 0 || response.ErrorCode != 0 {
		n.follower.download = nil
		n.learnLeaderFromFetchError(m.From, p.CurrentLeader.LeaderEpoch, p.CurrentLeader.LeaderID)
		return nil
	}
	if p.CurrentLeader.LeaderEpoch != n.hard.Epoch || p.CurrentLeader.LeaderID != n.hard.LeaderID {
		return fmt.Errorf("raft: snapshot chunk from leader %d names leader %d epoch %d", m.From, p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch)
	}
	if err := d.checkChunk(p); err != nil && !trust {
		return err
	}
	if !n.config.unsafe.snapshotFetchNotLive {
		n.follower.lastFetchTicks = n.nowTicks
	}
	d.received = append(d.received, p.Bytes...)
	d.size = p.Size
	if int64(len(d.received)) < d.size {
		n.sendFetchSnapshot()
		return nil
	}
	return n.finishSnapshotDownload(d)
}

// checkChunk verifies that a chunk continues the download exactly.
func (d *snapshotDownload) checkChunk(p kmsg.FetchSnapshotResponseTopicPartition) error {
	received := int64(len(d.received))
	switch {
	case p.SnapshotID.EndOffset != d.offset || p.SnapshotID.Epoch != d.epoch:
		return fmt.Errorf("raft: chunk of snapshot %d-%d while fetching %d-%d", p.SnapshotID.EndOffset, p.SnapshotID.Epoch, d.offset, d.epoch)
	case p.Position != received:
		return fmt.Errorf("raft: snapshot chunk at position %d, want %d", p.Position, received)
	case p.Size < snapshotChecksumBytes || (d.size >= 0 && p.Size != d.size):
		return fmt.Errorf("raft: snapshot chunk gives size %d (known size %d)", p.Size, d.size)
	case received+int64(len(p.Bytes)) > p.Size || len(p.Bytes) == 0:
		return fmt.Errorf("raft: snapshot chunk of %d bytes at %d does not fit size %d", len(p.Bytes), received, p.Size)
	}
	return nil
}

// finishSnapshotDownload verifies a whole snapshot and installs it, or drops
// it and fetches again.
func (n *Node) finishSnapshotDownload(d *snapshotDownload) error {
	n.follower.download = nil
	verify := !n.config.unsafe.noSnapshotChecksum && !n.config.unsafe.trustSnapshotChunks
	wire := d.received
	if n.config.unsafe.trustSnapshotChunks {
		wire = wire[:min(int64(len(wire)), d.size)]
	}
	snapshot, err := decodeSnapshot(d.offset, d.epoch, wire, verify)
	if err != nil {
		n.sendFetch()
		return err
	}
	if snapshot.Offset <= n.highWatermark {
		// The log reached the snapshot while it was fetched (a Compact or
		// a later Fetch); installing it now would move the log start back.
		n.sendFetch()
		return nil
	}
	n.installSnapshot(snapshot)
	return nil
}

// installSnapshot replaces the whole log with the fetched snapshot: the log
// restarts empty at its offset, the high watermark and the applied offset
// move there, and the next Ready hands it to the host to persist and load.
func (n *Node) installSnapshot(s Snapshot) {
	assertf(s.Offset > n.highWatermark, "node %d installs snapshot %d at or below its high watermark %d", n.config.ID, s.Offset, n.highWatermark)
	n.log.reset(s.Offset, s.Epoch)
	n.snapshot = s
	n.snapshotWire = encodeSnapshot(s)
	n.snapshotChanged = true
	n.truncateToOffset = -1 // the host removes every entry when it installs
	n.unstableOffset = s.Offset
	// Nothing of the new log is durable until the Ready carrying the
	// snapshot is performed, also not what a Ready in progress writes.
	n.durableEndOffset = min(n.durableEndOffset, s.Offset)
	n.readyEndOffset = min(n.readyEndOffset, n.durableEndOffset)
	n.advanceHighWatermark(s.Offset)
	n.appliedOffset = s.Offset
	n.sendFetch()
}
