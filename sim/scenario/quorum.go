package scenario

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/checker"
)

// QuorumLivenessBound is how long after the heal phase begins a cluster
// must have an active controller and every running broker registered and
// unfenced: the liveness bound of CheckQuorum. A restart after the heal
// takes up to DowntimeMax (3.1 s) or a failed boot's retry (1 s each),
// an election a few election timeouts (1 s each), a registration and the
// heartbeat that catches up a few heartbeat intervals (2 s each), and a
// broker the old controller fenced waits for the new one's fresh session
// (broker.session.timeout.ms, 9 s) before nothing holds it back: 30 s
// covers all of it with room, and is the bound the report states.
const QuorumLivenessBound = 30 * time.Second

// quorumRole is a node's role in the quorum as last recorded.
type quorumRole = checker.QuorumRole

// quorumRecording records a cluster's controller quorum into
// checker.QuorumRecorder by the recording contract of docs/checker.md:
// every node's durable quorum states, durable log ends, high watermarks,
// applied entries with the metadata image's digest, and its starts and
// stops, in the simulation's true virtual time.
type quorumRecording struct {
	recorder *checker.QuorumRecorder
	// image is the committed metadata as the nodes applied it, each offset
	// once, in order: the harness reads it to know when the cluster is
	// ready (every broker unfenced, every partition led). The checker
	// replays the recorded history on its own.
	image *metadata.Image
	// snapshotEpochs are the epochs of the snapshots each node recorded,
	// for the snapshot it loads at a restart.
	snapshotEpochs map[snapshotKey]int32
	// unclean lists the committed entries that elected a leader from
	// outside the ISR and ELR, found as image applies them.
	unclean []checker.UncleanElection
}

// snapshotKey names a node's snapshot by its end offset.
type snapshotKey struct {
	node   int32
	offset int64
}

func newQuorumRecording(spec ClusterSpec) *quorumRecording {
	voters := make([]int32, spec.Voters)
	for i := range voters {
		voters[i] = int32(i + 1)
	}
	return &quorumRecording{recorder: checker.NewQuorumRecorder(voters), image: metadata.NewImage(), snapshotEpochs: make(map[snapshotKey]int32)}
}

// start records a new incarnation of b and makes its node report to the
// recorder; it must run before the node starts. Nothing happens for a
// single broker (q is nil).
func (q *quorumRecording) start(r *run, b *brokerNode, node *broker.Node) {
	if q == nil {
		return
	}
	b.running = true
	b.incarnation++
	b.registeredAfter = q.image.AppliedOffset()
	b.role = checker.QuorumRoleUnattached
	q.recorder.Start(b.id, int64(r.sched.Now()), r.cfg.Cluster.isBroker(b.id))
	node.ObserveQuorum(&quorumObserver{r: r, q: q, b: b, incarnation: b.incarnation})
}

// stop records the end of b's incarnation, if one is running.
func (q *quorumRecording) stop(r *run, b *brokerNode) {
	if q == nil || !b.running {
		return
	}
	b.running = false
	q.recorder.Stop(b.id, int64(r.sched.Now()))
}

// check judges the recorded quorum, with liveness when the run got as far
// as the bound after the heal.
func (q *quorumRecording) check(healTime, now time.Duration) *checker.QuorumResult {
	if q == nil {
		return nil
	}
	cfg := checker.QuorumCheckConfig{NewMetadataMachine: newImageMachine}
	if healTime >= 0 && now >= healTime+QuorumLivenessBound {
		cfg.Liveness = &checker.QuorumLiveness{HealTime: int64(healTime), BoundNanos: int64(QuorumLivenessBound)}
	}
	result := checker.CheckQuorum(q.recorder.History(), cfg)
	return &result
}

// quorumObserver is one incarnation's broker.QuorumObserver: it adds the
// node's id and the true time to what the node reports.
type quorumObserver struct {
	r           *run
	q           *quorumRecording
	b           *brokerNode
	incarnation int
}

func (o *quorumObserver) now() int64 { return int64(o.r.sched.Now()) }

// live reports whether this observer's incarnation is still the running
// one: a crashed process reports nothing more.
func (o *quorumObserver) live() bool { return o.b.running && o.b.incarnation == o.incarnation }

func (o *quorumObserver) QuorumState(epoch int32, role raft.Role, leader, vote int32) {
	if !o.live() {
		return
	}
	o.b.role, o.b.epoch = quorumRoles[role], epoch
	o.q.recorder.State(o.b.id, o.now(), epoch, o.b.role, leader, vote)
}

func (o *quorumObserver) QuorumLogEnd(offset int64) {
	if o.live() {
		o.q.recorder.LogEnd(o.b.id, o.now(), offset)
	}
}

func (o *quorumObserver) QuorumHighWatermark(offset int64) {
	if o.live() {
		o.q.recorder.HighWatermark(o.b.id, o.now(), offset)
	}
}

func (o *quorumObserver) QuorumApplied(offset int64, epoch int32, data []byte, digest string) {
	if !o.live() {
		return
	}
	o.q.recorder.Applied(o.b.id, o.now(), offset, epoch, data, digest)
	if offset == o.q.image.AppliedOffset()+1 {
		before := o.q.partitionStates()
		// A refused record leaves the image as it was, as on every node;
		// the checker reports it.
		_ = o.q.image.Apply(offset, epoch, data)
		o.q.findUncleanElections(before, offset, o.now())
	}
}

// partitionStates lists every partition of the committed image, by topic
// and partition.
func (q *quorumRecording) partitionStates() []partitionState {
	var states []partitionState
	for _, name := range q.image.TopicNames() {
		topic, _ := q.image.TopicByName(name)
		for _, p := range topic.Partitions {
			states = append(states, partitionState{topic: name, state: p})
		}
	}
	return states
}

// partitionState is one partition of the committed image.
type partitionState struct {
	topic string
	state metadata.PartitionState
}

// findUncleanElections records the partitions that the entry just applied
// at offset gave a leader from outside their ISR and ELR before it: the
// committed log's own account of an unclean election (the quorum checker
// finds the same), never a broker's. Their SettledAt is filled in at the
// end (settleUncleanElections).
func (q *quorumRecording) findUncleanElections(before []partitionState, offset, now int64) {
	if len(before) == 0 {
		return
	}
	for _, after := range q.partitionStates() {
		i, found := slices.BinarySearchFunc(before, after, comparePartitionStates)
		if !found {
			continue // created by this entry
		}
		old, p := before[i].state, after.state
		if p.Leader < 0 || p.Leader == old.Leader || slices.Contains(old.ISR, p.Leader) || slices.Contains(old.ELR, p.Leader) {
			continue
		}
		q.unclean = append(q.unclean, checker.UncleanElection{Topic: after.topic, Partition: p.Partition, Offset: offset,
			Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Time: now, SettledAt: now})
	}
}

func comparePartitionStates(a, b partitionState) int {
	return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.state.Partition, b.state.Partition))
}

func (o *quorumObserver) QuorumSnapshot(offset int64, epoch int32, digest, source string) {
	if !o.live() {
		return
	}
	key := snapshotKey{node: o.b.id, offset: offset}
	if known, ok := o.q.snapshotEpochs[key]; ok && checker.SnapshotSource(source) == checker.SnapshotLoaded {
		// The node took or installed this snapshot in an earlier life,
		// when its epoch was told (broker.QuorumObserver).
		epoch = known
	}
	o.q.snapshotEpochs[key] = epoch
	o.q.recorder.Snapshot(o.b.id, o.now(), offset, epoch, digest, checker.SnapshotSource(source))
}

func (o *quorumObserver) QuorumLogStart(offset int64) {
	if o.live() {
		o.q.recorder.LogStart(o.b.id, o.now(), offset)
	}
}

// ready reports whether the committed metadata has every one of the
// cluster's brokers registered in its running incarnation and unfenced
// and, when topics is not empty, those topics with a leader for every
// partition. It names what is missing otherwise. A registration is the
// running incarnation's when its broker epoch (the offset of its record)
// is above everything committed when the process started; an older one
// belongs to a process that is gone, and the broker does not serve under
// it.
func (q *quorumRecording) ready(brokers []*brokerNode, topics ...string) (bool, string) {
	for _, node := range brokers {
		if !node.cfg.IsBroker() {
			continue
		}
		b, ok := q.image.Broker(node.id)
		if !ok || b.Fenced || b.Epoch <= node.registeredAfter {
			return false, fmt.Sprintf("broker %d is not registered and unfenced in its running incarnation", node.id)
		}
	}
	for _, name := range topics {
		topic, ok := q.image.TopicByName(name)
		if !ok {
			return false, fmt.Sprintf("topic %s does not exist", name)
		}
		for _, p := range topic.Partitions {
			if p.Leader == metadata.NoLeader {
				return false, fmt.Sprintf("partition %s-%d has no leader", name, p.Partition)
			}
		}
	}
	return true, ""
}

// quorumRoles maps Raft's roles to the checker's names for them.
var quorumRoles = map[raft.Role]checker.QuorumRole{
	raft.RoleUnattached: checker.QuorumRoleUnattached, raft.RoleProspective: checker.QuorumRoleProspective,
	raft.RoleCandidate: checker.QuorumRoleCandidate, raft.RoleLeader: checker.QuorumRoleLeader,
	raft.RoleFollower: checker.QuorumRoleFollower, raft.RoleResigned: checker.QuorumRoleResigned,
}

// imageMachine is the checker's metadata machine over the brokers' own
// metadata.Image: CheckQuorum replays the committed log through it. Its
// digest is the one nodes record (broker.QuorumObserver): the SHA-256 of
// Image.Snapshot.
type imageMachine struct{ image *metadata.Image }

func newImageMachine() checker.MetadataMachine { return &imageMachine{image: metadata.NewImage()} }

func (m *imageMachine) Apply(offset int64, epoch int32, data []byte) error {
	return m.image.Apply(offset, epoch, data)
}

func (m *imageMachine) Check() error { return m.image.Check() }

func (m *imageMachine) Digest() string {
	sum := sha256.Sum256(m.image.Snapshot())
	return hex.EncodeToString(sum[:])
}

func (m *imageMachine) Brokers() []checker.MetadataBroker {
	var brokers []checker.MetadataBroker
	for _, b := range m.image.Brokers() {
		brokers = append(brokers, checker.MetadataBroker{ID: b.ID, Epoch: b.Epoch, Fenced: b.Fenced})
	}
	return brokers
}

func (m *imageMachine) Partitions() []checker.MetadataPartition {
	var partitions []checker.MetadataPartition
	for _, name := range m.image.TopicNames() {
		topic, _ := m.image.TopicByName(name)
		for _, p := range topic.Partitions {
			partitions = append(partitions, checker.MetadataPartition{Topic: name, Partition: p.Partition, Leader: p.Leader,
				LeaderEpoch: p.LeaderEpoch, ISR: p.ISR, ELR: p.ELR})
		}
	}
	return partitions
}
