package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// Evidence about replicas, for the checker's replica checks
// (checker/replicas.go, checker/highwatermark.go).
//
// After the run, the simulator reads every broker node's partition
// directories straight off its simulated disk and parses the segment files
// with the Kafka batch format, as a forensic examiner would: it never asks
// a broker. A node that is down at the end is not read, and is listed as
// such. During the run, every consumer records the high watermark of each
// Fetch answer it got without an error, with the leader epoch its request
// carried and when it was sent and answered (recordFetch).

// damagedReplicasRefetch is the brokers' promise that a replica whose data
// was damaged at rest says so and fetches it again from the leader
// (docs/replication.md, damaged replicas; broker/replica_repair.go), so the
// checker holds damaged copies to the replica properties too. Before the
// repair existed, cluster seeds 15, 17, 27, 54 and 69 failed with it set.
const damagedReplicasRefetch = true

// replication gathers the replica evidence of the run. The disks are read
// only when the run finished (healed, drained and past its bounds).
func (r *run) replication() *checker.Replication {
	rep := &checker.Replication{CommittedSurvives: r.durable(-1), DamagedReplicasRefetch: damagedReplicasRefetch, Fetches: r.recorder.fetches}
	if r.cfg.Cluster.UncleanElection {
		rep.UncleanTopics = []string{topicName}
	}
	rep.UncleanElections = r.settleUncleanElections()
	if r.phase != phaseDone {
		return rep
	}
	for _, b := range r.brokers {
		if !r.cfg.Cluster.isBroker(b.id) {
			continue // a controller-only node holds no partition
		}
		rep.Nodes = append(rep.Nodes, checker.ReplicaNode{Node: b.id, Down: b.down})
		if b.down {
			continue
		}
		logs, err := readReplicaLogs(b.disk, b.cfg.LogDir, b.id, r.assigned(b.id))
		if err != nil {
			// The disk is the simulator's own and its faults are healed:
			// failing to read it is a bug of the harness.
			r.fail(fmt.Errorf("reading the replica logs of node %d: %w", b.id, err))
			return rep
		}
		for i := range logs {
			logs[i].SoleInSync = r.soleInSync(logs[i].Topic, logs[i].Partition, b.id)
		}
		rep.Logs = append(rep.Logs, logs...)
	}
	return rep
}

// settleUncleanElections returns the unclean elections of the committed
// metadata, each with the time from which no broker could still serve its
// partition under the metadata from before it (checker/unclean.go): the
// later of the moment the healed cluster was ready (every broker
// unfenced, so no longer cut off from the controller) and the moment
// every broker node's last incarnation had applied the entry, or stopped
// without applying it. A node whose last incarnation never applied it and
// still runs, or a run that never got ready, settles nothing before the
// run's end. It reads the quorum history, the committed log's record,
// never a broker's account of its partitions.
func (r *run) settleUncleanElections() []checker.UncleanElection {
	if r.quorum == nil || len(r.quorum.unclean) == 0 {
		return nil
	}
	end := int64(r.sched.Now())
	ready := end
	if r.readyTime >= 0 {
		ready = int64(r.readyTime)
	}
	history := r.quorum.recorder.History()
	elections := slices.Clone(r.quorum.unclean)
	for i := range elections {
		u := &elections[i]
		u.SettledAt = max(u.Time, ready)
		for _, node := range history.Nodes {
			if node.Broker {
				u.SettledAt = max(u.SettledAt, lastIncarnationReached(node.Events, u.Offset, end))
			}
		}
	}
	return elections
}

// lastIncarnationReached is when a node's last incarnation applied the
// metadata entry at offset (or loaded a snapshot past it), when it stopped
// if it stopped first, or end if it did neither.
func lastIncarnationReached(events []checker.QuorumEvent, offset, end int64) int64 {
	last := 0
	for i, e := range events {
		if e.Kind == checker.QuorumEventStart {
			last = i
		}
	}
	for _, e := range events[last:] {
		switch {
		case e.Kind == checker.QuorumEventApplied && e.Offset >= offset,
			e.Kind == checker.QuorumEventSnapshot && e.Offset > offset,
			e.Kind == checker.QuorumEventStop:
			return e.Time
		}
	}
	return end
}

// assigned lists the partitions the committed metadata assigns to node,
// in topic and partition order, or nil for a single broker, which holds
// every partition. A broker creates the directories of every partition
// of a topic it hosts any of, so a directory alone does not make a
// replica; the assignment is the controller's committed decision (the
// quorum checker judges that log), not a broker's account of its data.
func (r *run) assigned(node int32) []checker.TopicPartition {
	if r.quorum == nil {
		return nil
	}
	tps := []checker.TopicPartition{}
	image := r.quorum.image
	for _, name := range image.TopicNames() {
		topic, _ := image.TopicByName(name)
		for _, p := range topic.Partitions {
			if slices.Contains(p.Replicas, node) {
				tps = append(tps, checker.TopicPartition{Topic: name, Partition: p.Partition})
			}
		}
	}
	return tps
}

// soleInSync reports whether the committed metadata has node as the only
// ISR member of the partition at the end of the run.
func (r *run) soleInSync(topic string, partition, node int32) bool {
	if r.quorum == nil {
		return false
	}
	t, ok := r.quorum.image.TopicByName(topic)
	if !ok || int(partition) >= len(t.Partitions) {
		return false
	}
	return slices.Equal(t.Partitions[partition].ISR, []int32{node})
}

// recordFetch records one partition of a Fetch answer without an error,
// with the window of its request (fetchWindow), in the simulation's true
// time. An answer whose window the consumer no longer knows, or that
// carries no high watermark, is left out.
func (c *consumerActor) recordFetch(a client.FetchAnswer) {
	w := c.fetches[a.ID%fetchWindowsMax]
	if a.ID == 0 || w.id != a.ID || w.received < w.sent || a.HighWatermark < 0 {
		return
	}
	c.r.recorder.fetches = append(c.r.recorder.fetches, checker.Fetch{
		Client: c.clientID, Topic: a.Partition.Topic, Partition: a.Partition.Partition,
		LeaderEpoch: a.LeaderEpoch, HighWatermark: a.HighWatermark, Sent: w.sent, Received: w.received,
	})
}

// metadataTopic is the controller quorum's own log, which is no partition
// replica: the quorum checker judges it.
const metadataTopic = "__cluster_metadata"

// readReplicaLogs reads node's replica logs under logDir: the partitions
// in tps (a replica whose directory is missing holds nothing), or every
// live partition directory when tps is nil.
func readReplicaLogs(disk *sim.Disk, logDir string, node int32, tps []checker.TopicPartition) ([]checker.ReplicaLog, error) {
	if tps == nil {
		var err error
		if tps, err = partitionDirectories(disk, logDir); err != nil {
			return nil, err
		}
	}
	damage := disk.Damage()
	var logs []checker.ReplicaLog
	for _, tp := range tps {
		if tp.Topic == metadataTopic {
			continue
		}
		dir := fmt.Sprintf("%s/%s-%d", logDir, tp.Topic, tp.Partition)
		batches, start, err := readPartition(disk, dir)
		if err != nil {
			return nil, err
		}
		l := checker.ReplicaLog{Node: node, Topic: tp.Topic, Partition: tp.Partition, Batches: batches, FirstSegment: start}
		for _, d := range damage {
			l.Damaged = l.Damaged || strings.HasPrefix(d.Name, dir+"/")
		}
		logs = append(logs, l)
	}
	return logs, nil
}

// partitionDirectories lists the live partition directories under
// logDir, in name order.
func partitionDirectories(disk *sim.Disk, logDir string) ([]checker.TopicPartition, error) {
	entries, err := disk.ReadDir(logDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a broker that never wrote anything
	}
	if err != nil {
		return nil, err
	}
	var tps []checker.TopicPartition
	for _, e := range entries {
		if topic, partition, ok := partitionDirectory(e); ok {
			tps = append(tps, checker.TopicPartition{Topic: topic, Partition: partition})
		}
	}
	return tps, nil
}

// partitionDirectory parses a live partition directory's name,
// "<topic>-<partition>" (docs/storage.md); a directory being deleted or
// set aside has a suffix after the partition and is no replica.
func partitionDirectory(e core.DirEntry) (topic string, partition int32, ok bool) {
	cut := strings.LastIndexByte(e.Name, '-')
	if !e.IsDir || cut <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(e.Name[cut+1:], 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != e.Name[cut+1:] {
		return "", 0, false
	}
	return e.Name[:cut], int32(n), true
}

// segmentNameBytes is the length of a segment's base offset in its file
// name, zero padded ("00000000000000000000.log").
const segmentNameBytes = 20

// readPartition parses the segment files of a partition directory, in
// offset order (their zero-padded names sort so), into one batch list
// whose offsets rise strictly, and returns the base offset its oldest
// segment file is named after (-1 without one).
func readPartition(disk *sim.Disk, dir string) ([]checker.ReplicaBatch, int64, error) {
	entries, err := disk.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, -1, nil
	}
	if err != nil {
		return nil, -1, err
	}
	var batches []checker.ReplicaBatch
	start := int64(-1)
	for _, e := range entries {
		if e.IsDir || len(e.Name) != segmentNameBytes+len(".log") || !strings.HasSuffix(e.Name, ".log") {
			continue
		}
		if base, err := strconv.ParseInt(e.Name[:segmentNameBytes], 10, 64); err == nil && start < 0 {
			start = base
		}
		content, err := readSegment(disk, dir+"/"+e.Name)
		if err != nil {
			return nil, -1, err
		}
		batches = parseSegment(content, batches)
	}
	return batches, start, nil
}

// readAttemptsMax bounds how often one range is read until two reads in a
// row agree: the disk may flip a bit in any read call (FaultBitFlips),
// which two reads in a row practically never do at the same place.
const readAttemptsMax = 32

// segmentReader reads one segment file as it stands: each range until two
// reads in a row agree, so that a bit flipped on read is not taken for
// the stored bytes.
type segmentReader struct {
	file core.File
	size int64
}

// read returns the bytes of [offset, offset+length), or false when they
// cannot be read (a latent sector error) or never read the same twice.
func (s *segmentReader) read(offset, length int64) ([]byte, bool) {
	var previous []byte
	for range readAttemptsMax {
		buffer := make([]byte, length)
		n, err := s.file.ReadAt(buffer, offset)
		if int64(n) != length || (err != nil && !errors.Is(err, io.EOF)) {
			return nil, false
		}
		if previous != nil && bytes.Equal(previous, buffer) {
			return buffer, true
		}
		previous = buffer
	}
	return nil, false
}

// readSegment returns a segment file's content up to the first batch that
// cannot be read. It reads the whole file at once, and batch by batch
// only when that fails, so that a latent sector error hides only the
// batch it lies in and those after it.
func readSegment(disk *sim.Disk, name string) ([]byte, error) {
	f, err := disk.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	s := &segmentReader{file: f, size: size}
	if size == 0 {
		return nil, nil
	}
	if content, ok := s.read(0, size); ok {
		return content, nil
	}
	var content []byte
	for position := int64(0); position < size; {
		prefix, ok := s.read(position, min(int64(record.HeaderBytes), size-position))
		if !ok || len(prefix) < record.LengthPrefixBytes {
			break
		}
		batchBytes, err := record.BatchSize(prefix)
		if err != nil || int64(batchBytes) > size-position {
			break
		}
		batch, ok := s.read(position, int64(batchBytes))
		if !ok {
			break
		}
		content = append(content, batch...)
		position += int64(batchBytes)
	}
	return content, nil
}

// crcTable is the CRC-64 that names a batch's bytes for the checker.
var crcTable = crc64.MakeTable(crc64.ECMA)

// parseSegment appends the batches of one segment's content to batches. It
// stops at the first bytes that do not frame a plausible batch (a torn
// tail, or damage in a header) or whose offsets do not follow the batches
// before: what lies beyond can no longer be placed. A batch whose CRC
// fails is kept, marked invalid.
func parseSegment(content []byte, batches []checker.ReplicaBatch) []checker.ReplicaBatch {
	for len(content) >= record.LengthPrefixBytes {
		size, err := record.BatchSize(content)
		if err != nil || size > len(content) {
			break
		}
		b := content[:size]
		h, err := record.ParseHeader(b)
		if err != nil || (len(batches) > 0 && h.BaseOffset <= batches[len(batches)-1].LastOffset) {
			break
		}
		batches = append(batches, checker.ReplicaBatch{
			BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), LeaderEpoch: h.PartitionLeaderEpoch,
			Hash: crc64.Checksum(b, crcTable), Invalid: record.ComputeCRC(b) != h.CRC,
		})
		content = content[size:]
	}
	return batches
}
