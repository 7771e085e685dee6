package checker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Replicas agree below the committed point.
//
// A record is committed once every in-sync replica holds it, and only
// committed records are visible: a consumer reads below the high
// watermark, and an acks=all write is acknowledged once the high watermark
// passed it. So the clients themselves show how far a partition was
// committed: the committed bound is one past the highest offset that any
// poll returned or that an acks=all write was acknowledged at. After
// healing, every replica must hold every offset below that bound, and all
// replicas must hold the same batches there (the leader's bytes, with the
// base offset and leader epoch it gave them). Above the bound they may
// differ: a deposed leader's uncommitted suffix is truncated only when it
// next fetches.
//
// The evidence is physical, never the judged system's word: the bound
// comes from what clients observed, and the logs from what the simulator
// read off each node's disk after healing (History.Replication). No high
// watermark or log start that a broker reported is used. Allowances
// follow the rest of the checker:
//   - Retention may have deleted the oldest records of any replica, so
//     offsets below the legal log start (keepFrom) need not be held; they
//     must still agree where two replicas both hold them.
//   - Reads count for the bound only when the configuration promises that
//     committed records survive every fault (Replication.CommittedSurvives);
//     an acks=all write counts only when promised durable, and not when the
//     simulator damaged its batch (excuseDamage), as for lost-write.
//   - A replica whose copy the simulator damaged at rest is held to the
//     property all the same when the configuration promises that such a
//     replica notices and fetches the data again
//     (Replication.DamagedReplicasRefetch); otherwise it is not judged.
//     A partition whose every replica was damaged may have lost data on
//     all of them, beyond what the promise covers, and is not judged (as
//     a single broker's damaged partition, damage.go).

// Replication is the evidence about a partition's copies: what the
// clients saw of high watermarks, and what the simulator read from each
// node's disk after healing. The checker takes nothing from it that a
// broker reported.
type Replication struct {
	// CommittedSurvives is set when the configuration promises that a
	// committed record (below the high watermark) survives every fault of
	// the run: the simulator's promise table for acks=all, as it decides
	// Produce.Durable. Without it, the records clients read may be lost
	// legitimately, so reads do not count for the committed bound and a
	// high watermark may move back.
	CommittedSurvives bool `json:"committed_survives"`
	// DamagedReplicasRefetch is set when the brokers promise that a
	// replica whose stored data was damaged at rest says so and fetches
	// the data again from the leader (issue 10's damaged replicas). Then
	// a damaged replica is held to the replica properties like any other;
	// without it, it is not judged.
	DamagedReplicasRefetch bool `json:"damaged_replicas_refetch,omitempty"`
	// Fetches are the partitions that consumers' Fetch requests answered
	// without an error (see Fetch), in the order recorded.
	Fetches []Fetch `json:"fetches,omitempty"`
	// Nodes are the broker nodes whose disks the simulator meant to read
	// after healing, in id order; empty when it read none (the run did not
	// finish). Logs holds what it read from those that were up.
	Nodes []ReplicaNode `json:"nodes,omitempty"`
	Logs  []ReplicaLog  `json:"logs,omitempty"`
	// UncleanTopics are the topics whose configuration enables
	// unclean.leader.election.enable, and UncleanElections the unclean
	// elections of the committed metadata log, of every topic (see
	// unclean.go).
	UncleanTopics    []string          `json:"unclean_topics,omitempty"`
	UncleanElections []UncleanElection `json:"unclean_elections,omitempty"`
}

// ReplicaNode is one broker node whose disk the simulator meant to read.
type ReplicaNode struct {
	Node int32 `json:"node"`
	// Down is set when the node was down at the end: its disk was not
	// read, and its replicas are not judged.
	Down bool `json:"down,omitempty"`
}

// ReplicaLog is one replica's final log, as the simulator parsed it from
// the partition directory's segment files: its record batches in offset
// order, up to the first bytes of each segment that do not frame a batch.
type ReplicaLog struct {
	Node      int32  `json:"node"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Damaged is set when the simulator damaged this copy at rest: its
	// disk's own record of damage names a file of this partition.
	Damaged bool `json:"damaged,omitempty"`
	// SoleInSync is set when the committed metadata (the controller's
	// decisions, which the quorum checker judges) has this replica as
	// the partition's only ISR member at the end. Damaged, such a replica
	// keeps its place, offline, rather than fetch from a replica that
	// may lack what was committed (docs/replication.md): the partition is
	// then out of service and not judged.
	SoleInSync bool           `json:"sole_in_sync,omitempty"`
	Batches    []ReplicaBatch `json:"batches,omitempty"`
	// FirstSegment is the base offset the oldest segment file is named
	// after (its log start as the files show it, even when retention left
	// it only an empty segment), or -1 without one.
	FirstSegment int64 `json:"first_segment"`
}

// ReplicaBatch identifies one stored record batch.
type ReplicaBatch struct {
	BaseOffset  int64 `json:"base"`
	LastOffset  int64 `json:"last"`
	LeaderEpoch int32 `json:"epoch"`
	// Hash identifies the batch's bytes as stored, header included (the
	// simulator takes a CRC-64 of them). Two replicas hold the same batch
	// when offsets, epoch and hash agree.
	Hash uint64 `json:"hash"`
	// Invalid is set when the batch's CRC does not match its bytes: no
	// broker may serve it, so the replica does not hold its offsets.
	Invalid bool `json:"invalid,omitempty"`
}

// The anomalies of replicas.
const (
	// AnomalyReplicaDiverged: two replicas hold different batches at an
	// offset below the committed bound.
	AnomalyReplicaDiverged AnomalyKind = "replica-diverged"
	// AnomalyReplicaMissingCommitted: after healing, a replica that was up
	// lacks an offset below the committed bound and at or above the legal
	// log start.
	AnomalyReplicaMissingCommitted AnomalyKind = "replica-missing-committed"
	// AnomalyHighWatermarkWentBack: within one leader epoch, a fetch
	// answered a lower high watermark than a fetch answered before it was
	// sent (highwatermark.go).
	AnomalyHighWatermarkWentBack AnomalyKind = "high-watermark-went-back"
)

// init adds the replica anomalies to the report order, after the kinds of
// anomaly.go.
func init() {
	anomalyKinds = append(anomalyKinds, AnomalyReplicaDiverged, AnomalyReplicaMissingCommitted, AnomalyHighWatermarkWentBack)
}

// replicaKey names one replica.
type replicaKey struct {
	node int32
	tp   TopicPartition
}

// validate reports replica evidence no correct simulator writes.
func (r *Replication) validate() error {
	if r == nil {
		return nil
	}
	if err := validateFetches(r.Fetches); err != nil {
		return err
	}
	if err := validateUncleanElections(r.UncleanElections); err != nil {
		return err
	}
	up := make(map[int32]bool, len(r.Nodes))
	for i, n := range r.Nodes {
		if i > 0 && n.Node <= r.Nodes[i-1].Node {
			return fmt.Errorf("replica node #%d: node %d after node %d, want increasing ids", i, n.Node, r.Nodes[i-1].Node)
		}
		up[n.Node] = !n.Down
	}
	seen := make(map[replicaKey]bool, len(r.Logs))
	for i := range r.Logs {
		l := &r.Logs[i]
		key := replicaKey{node: l.Node, tp: TopicPartition{Topic: l.Topic, Partition: l.Partition}}
		if err := validateName("topic", l.Topic); err != nil {
			return fmt.Errorf("replica log #%d: %w", i, err)
		}
		switch {
		case l.Partition < 0:
			return fmt.Errorf("replica log #%d: negative partition %d", i, l.Partition)
		case !up[l.Node]:
			return fmt.Errorf("replica log #%d: node %d is not listed as read", i, l.Node)
		case seen[key]:
			return fmt.Errorf("replica log #%d: %s on node %d listed twice", i, key.tp, l.Node)
		}
		seen[key] = true
		if err := validateBatches(l.Batches); err != nil {
			return fmt.Errorf("replica log #%d (%s on node %d): %w", i, key.tp, l.Node, err)
		}
	}
	return nil
}

// validateBatches requires batches in increasing, disjoint offset ranges.
func validateBatches(batches []ReplicaBatch) error {
	for j, b := range batches {
		if b.BaseOffset < 0 || b.LastOffset < b.BaseOffset {
			return fmt.Errorf("batch #%d: offsets [%d, %d], want 0 <= base <= last", j, b.BaseOffset, b.LastOffset)
		}
		if j > 0 && b.BaseOffset <= batches[j-1].LastOffset {
			return fmt.Errorf("batch #%d: base %d not above the last offset %d of the batch before", j, b.BaseOffset, batches[j-1].LastOffset)
		}
	}
	return nil
}

// errNoReplication is what a replica check finds without evidence.
var errNoReplication = errors.New("no replica logs")

// committedBound is one past the highest offset of p that the clients saw
// committed, and the operation that shows it (-1 when none does).
func committedBound(h *History, p *partitionIndex) (bound int64, witness int) {
	witness = -1
	for _, i := range p.ops {
		op := &h.Ops[i]
		switch {
		case acknowledged(op) && op.Produce.Acks == AcksAll && op.Produce.Durable:
			if op.Produce.Offset+1 > bound {
				bound, witness = op.Produce.Offset+1, i
			}
		case op.Kind == KindPoll && op.Outcome == OutcomeOK && h.Replication.CommittedSurvives:
			for _, r := range op.Poll.Records {
				if r.Offset+1 > bound {
					bound, witness = r.Offset+1, i
				}
			}
		}
	}
	return bound, witness
}

// replicaPartition is the replicas of one partition and its judgement.
type replicaPartition struct {
	tp       TopicPartition
	replicas []*ReplicaLog // by node id
	bound    int64
	witness  int
	keep     int64
}

// checkReplicas judges every partition whose replicas the simulator read.
func checkReplicas(ix *historyIndex) ([]Anomaly, int) {
	parts, err := replicaPartitions(ix)
	if err != nil {
		return nil, 0
	}
	var anomalies []Anomaly
	checked := 0
	for _, rp := range parts {
		if rp.everyReplicaDamaged() || rp.lastInSyncDamaged() {
			continue
		}
		if !ix.h.Replication.DamagedReplicasRefetch {
			rp.replicas = slices.DeleteFunc(rp.replicas, func(l *ReplicaLog) bool { return l.Damaged })
		}
		checked++
		anomalies = append(anomalies, rp.missing(ix.h)...)
		anomalies = append(anomalies, rp.diverged(ix.h)...)
	}
	return anomalies, checked
}

// replicaPartitions groups the replica logs by partition, in partition
// order, with each partition's committed bound and legal log start.
func replicaPartitions(ix *historyIndex) ([]*replicaPartition, error) {
	r := ix.h.Replication
	if r == nil || len(r.Nodes) == 0 {
		return nil, errNoReplication
	}
	byTP := make(map[TopicPartition]*replicaPartition)
	var parts []*replicaPartition
	for i := range r.Logs {
		l := &r.Logs[i]
		tp := TopicPartition{Topic: l.Topic, Partition: l.Partition}
		rp, ok := byTP[tp]
		if !ok {
			rp = &replicaPartition{tp: tp, witness: -1}
			byTP[tp] = rp
			parts = append(parts, rp)
		}
		rp.replicas = append(rp.replicas, l)
	}
	for _, p := range ix.partitions {
		if rp, ok := byTP[p.tp]; ok {
			rp.bound, rp.witness = committedBound(ix.h, p)
			rp.keep = p.keepFrom()
		}
	}
	slices.SortFunc(parts, func(a, b *replicaPartition) int {
		if a.tp == b.tp {
			return 0
		}
		if a.tp.less(b.tp) {
			return -1
		}
		return 1
	})
	for _, rp := range parts {
		slices.SortFunc(rp.replicas, func(a, b *ReplicaLog) int { return cmp.Compare(a.Node, b.Node) })
	}
	return parts, nil
}

// lastInSyncDamaged reports whether the simulator damaged the copy of the
// partition's only ISR member (ReplicaLog.SoleInSync).
func (rp *replicaPartition) lastInSyncDamaged() bool {
	for _, l := range rp.replicas {
		if l.Damaged && l.SoleInSync {
			return true
		}
	}
	return false
}

// everyReplicaDamaged reports whether the simulator damaged every copy it
// read of the partition.
func (rp *replicaPartition) everyReplicaDamaged() bool {
	for _, l := range rp.replicas {
		if !l.Damaged {
			return false
		}
	}
	return true
}

// boundText names the committed bound and its witness for explanations.
func (rp *replicaPartition) boundText(h *History) string {
	if rp.witness < 0 {
		return fmt.Sprintf("the committed bound %d", rp.bound)
	}
	what := "was acknowledged with acks=all"
	if h.Ops[rp.witness].Kind == KindPoll {
		what = "read"
	}
	return fmt.Sprintf("the committed bound %d (%s %s offset %d)", rp.bound, describeOp(h, rp.witness), what, rp.bound-1)
}

// missing reports each replica's first offset range in [keep, bound) that
// it holds no valid batch for.
func (rp *replicaPartition) missing(h *History) []Anomaly {
	var anomalies []Anomaly
	for _, l := range rp.replicas {
		keep := rp.keep
		if retentionActs(h) {
			// Every replica applies retention to its own log, whose tail
			// may have been longer than the leader's when it did (a
			// follower truncates an uncommitted tail later), or whose
			// segments rolled elsewhere, so it may have deleted more than
			// the legal start computed from the final drain allows (sim
			// seeds 20032, 30032). It must still hold everything from its
			// oldest segment up to the bound.
			keep = max(keep, l.FirstSegment)
		}
		from, to, invalid := firstHole(l.Batches, keep, rp.bound)
		if from >= to {
			continue
		}
		why := ""
		if invalid {
			why = "; its batch there fails its CRC"
		}
		a := Anomaly{
			Kind: AnomalyReplicaMissingCommitted, Partition: rp.tp, Offset: from,
			Explanation: fmt.Sprintf("node %d's copy does not hold offsets %d to %d, below %s%s: after healing every replica must hold every committed offset",
				l.Node, from, to-1, rp.boundText(h), why),
		}
		if rp.witness >= 0 {
			a.Ops = []int{rp.witness}
		}
		anomalies = append(anomalies, a)
	}
	return anomalies
}

// retentionActs reports whether retention may delete records in the run.
func retentionActs(h *History) bool {
	return h.Retention != nil && (h.Retention.Bytes >= 0 || h.Retention.TimeCanAct)
}

// firstHole returns the first range [from, to) within [keep, bound) that
// no valid batch covers, and whether an invalid batch lies there; from ==
// to when there is none.
func firstHole(batches []ReplicaBatch, keep, bound int64) (from, to int64, invalid bool) {
	next := keep // the first offset not yet shown held
	for _, b := range batches {
		if next >= bound {
			break
		}
		if b.LastOffset < next {
			continue
		}
		if b.Invalid {
			if b.BaseOffset <= next {
				return next, min(b.LastOffset+1, bound), true
			}
			continue
		}
		if b.BaseOffset > next {
			return next, min(b.BaseOffset, bound), false
		}
		next = b.LastOffset + 1
	}
	if next < bound {
		return next, bound, false
	}
	return 0, 0, false
}

// diverged reports, for each pair of replicas, the first offset below the
// bound where both hold a valid batch and the batches differ.
func (rp *replicaPartition) diverged(h *History) []Anomaly {
	var anomalies []Anomaly
	for i, a := range rp.replicas {
		for _, b := range rp.replicas[i+1:] {
			x, y, ok := firstDifference(a.Batches, b.Batches, rp.bound)
			if !ok {
				continue
			}
			anomaly := Anomaly{
				Kind: AnomalyReplicaDiverged, Partition: rp.tp, Offset: max(x.BaseOffset, y.BaseOffset),
				Explanation: fmt.Sprintf("node %d holds %s and node %d holds %s, below %s: replicas must hold identical batches up to the committed point",
					a.Node, x, b.Node, y, rp.boundText(h)),
			}
			if rp.witness >= 0 {
				anomaly.Ops = []int{rp.witness}
			}
			anomalies = append(anomalies, anomaly)
		}
	}
	return anomalies
}

// firstDifference walks two replicas' valid batches below bound and
// returns the first overlapping pair that differs.
func firstDifference(a, b []ReplicaBatch, bound int64) (ReplicaBatch, ReplicaBatch, bool) {
	i, j := 0, 0
	for i < len(a) && j < len(b) && a[i].BaseOffset < bound && b[j].BaseOffset < bound {
		x, y := a[i], b[j]
		switch {
		case x.Invalid || x.LastOffset < y.BaseOffset:
			i++
		case y.Invalid || y.LastOffset < x.BaseOffset:
			j++
		case x != y:
			return x, y, true
		default:
			i++
			j++
		}
	}
	return ReplicaBatch{}, ReplicaBatch{}, false
}

// String renders a batch for explanations: "[10, 14] epoch 2 hash 0x…".
func (b ReplicaBatch) String() string {
	return fmt.Sprintf("the batch [%d, %d] of leader epoch %d (hash %#016x)", b.BaseOffset, b.LastOffset, b.LeaderEpoch, b.Hash)
}

// replicaNote says which replicas the check could not see: nodes down at
// the end, and partitions whose every replica the simulator damaged. It
// is empty when there is nothing to say.
func replicaNote(ix *historyIndex) string {
	r := ix.h.Replication
	if r == nil {
		return ""
	}
	if len(r.Nodes) == 0 {
		return "replica logs not read (the run did not finish)"
	}
	var parts []string
	for _, n := range r.Nodes {
		if n.Down {
			parts = append(parts, fmt.Sprintf("node %d was down at the end and was not read", n.Node))
		}
	}
	rps, _ := replicaPartitions(ix)
	var damaged []string
	var lastInSync []string
	for _, rp := range rps {
		switch {
		case rp.everyReplicaDamaged():
			damaged = append(damaged, rp.tp.String())
		case rp.lastInSyncDamaged():
			lastInSync = append(lastInSync, rp.tp.String())
		}
	}
	if len(damaged) > 0 {
		parts = append(parts, "not judged, every replica damaged at rest: "+strings.Join(damaged, ", "))
	}
	if len(lastInSync) > 0 {
		parts = append(parts, "not judged, the only in-sync replica damaged at rest (offline by design): "+strings.Join(lastInSync, ", "))
	}
	if !r.DamagedReplicasRefetch {
		var unjudged []string
		for _, l := range r.Logs {
			if l.Damaged && !slices.Contains(damaged, TopicPartition{Topic: l.Topic, Partition: l.Partition}.String()) {
				unjudged = append(unjudged, fmt.Sprintf("%s-%d on node %d", l.Topic, l.Partition, l.Node))
			}
		}
		if len(unjudged) > 0 {
			parts = append(parts, "damaged replicas not judged (no promise that they fetch their data again): "+strings.Join(unjudged, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// checkReplication runs the checks of replicas (this file) and of the
// high watermarks fetches saw (highwatermark.go), when the history has
// replica evidence: their anomalies, and one stat per check, the
// replicas' with a note on what it could not see.
func checkReplication(ix *historyIndex, original *History) ([]Anomaly, []CheckStat) {
	if ix.h.Replication == nil {
		return nil, nil
	}
	watermarks, fetches := checkFetchHighWatermarks(ix)
	replicas, partitions := checkReplicas(ix)
	unclean, uncleanStat := checkUncleanElections(ix, original)
	stats := []CheckStat{
		uncleanStat,
		{Name: "high-watermark", Checked: fetches, Anomalies: len(watermarks)},
		{Name: "replicas", Checked: partitions, Anomalies: len(replicas), Note: replicaNote(ix)},
	}
	return append(append(unclean, watermarks...), replicas...), stats
}
