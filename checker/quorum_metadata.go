package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// MetadataMachine is the cluster metadata state machine as CheckQuorum
// replays the committed history through it. The checker must not import
// package broker, so the simulator supplies an adapter over metadata.Image
// (docs/checker.md shows one). The checker's own properties (fenced-leader,
// unclean elections, brokers after healing) are judged from Brokers and
// Partitions with the checker's code, not with the machine's checks.
type MetadataMachine interface {
	// Apply applies one committed entry (nil data is Raft's leader-change
	// entry). An error means the machine refused it and is unchanged.
	Apply(offset int64, epoch int32, data []byte) error
	// Check verifies the machine's own invariants on its whole state.
	Check() error
	// Digest identifies the state, computed as the nodes compute
	// QuorumEvent.Digest for their snapshots and applied entries.
	Digest() string
	// Brokers returns every registered broker, in any order.
	Brokers() []MetadataBroker
	// Partitions returns every partition of every topic, in any order.
	Partitions() []MetadataPartition
}

// MetadataBroker is a registered broker as the metadata names it.
type MetadataBroker struct {
	// ID is the broker's node.id and Epoch the broker epoch of its current
	// registration.
	ID    int32
	Epoch int64
	// Fenced is set while the broker may lead nothing.
	Fenced bool
}

// MetadataPartition is what the checker needs of a partition's state.
type MetadataPartition struct {
	// Topic and Partition name it.
	Topic     string
	Partition int32
	// Leader is a broker id or -1; ISR and ELR are broker ids.
	Leader      int32
	LeaderEpoch int32
	ISR, ELR    []int32
}

// name renders "topic-3".
func (p MetadataPartition) name() string { return fmt.Sprintf("%s-%d", p.Topic, p.Partition) }

// partitionKey identifies a partition in the replay's maps without
// formatting its name for every partition after every entry.
type partitionKey struct {
	topic     string
	partition int32
}

// leadership is a partition led by a broker, for the fenced-leader check.
type leadership struct {
	partition partitionKey
	leader    int32
}

func (p MetadataPartition) key() partitionKey { return partitionKey{p.Topic, p.Partition} }

// metadataReplay is the state of one replay of the committed history.
type metadataReplay struct {
	ix       *quorumIndex
	machine  MetadataMachine
	brokers  map[int32]MetadataBroker           // only looked up
	previous map[partitionKey]MetadataPartition // only looked up
	// violating holds the leaderships that broke fenced-leader after the
	// previous entry, so that each is reported once when it begins, not
	// after every later entry.
	violating map[leadership]bool
	// snapshots and digests are the recorded snapshots and applied-entry
	// digests, by the offset after which the replay must reach them.
	snapshots map[int64][]quorumEntry
	digests   map[int64][]quorumEntry
	// cutoff is the last offset applied by the liveness bound, and
	// cutoffBrokers the registered brokers after it.
	cutoff        int64
	cutoffBrokers []MetadataBroker
	lastBrokers   []MetadataBroker
	invariantSeen bool
	anomalies     []QuorumAnomaly
	findings      []QuorumFinding
	checked       int
}

// checkQuorumMetadata replays the committed history through a fresh
// metadata machine, when the configuration supplies one, and runs the
// metadata checks after every entry.
func checkQuorumMetadata(ix *quorumIndex, cfg QuorumCheckConfig, result *QuorumResult) {
	if cfg.NewMetadataMachine == nil {
		if cfg.Liveness != nil {
			// Without a machine nothing tells fenced brokers apart; the
			// zero count shows the check did not run.
			result.Checks = append(result.Checks, CheckStat{Name: "brokers-after-heal"})
		}
		return
	}
	r := &metadataReplay{ix: ix, machine: cfg.NewMetadataMachine(), brokers: map[int32]MetadataBroker{},
		previous: map[partitionKey]MetadataPartition{}, violating: map[leadership]bool{}, cutoff: -1}
	r.snapshots, r.digests = recordedDigests(ix)
	if cfg.Liveness != nil {
		r.cutoff = lastAppliedBy(ix, cfg.Liveness.HealTime+cfg.Liveness.BoundNanos)
	}
	r.compareDigests(0, r.snapshots[0], QuorumAnomalySnapshotDiffers)
	for _, entry := range ix.committed {
		r.step(entry)
	}
	if r.cutoff >= int64(len(ix.committed)) {
		// The replay stopped short of the bound: judge the brokers by
		// the last state it reached (the finding below says so).
		r.cutoffBrokers = r.lastBrokers
	}
	if last := int64(len(ix.committed)); last < ix.maxApplied() {
		r.findings = append(r.findings, QuorumFinding{Kind: QuorumFindingReplayStopped, Offset: last, Epoch: -1,
			Explanation: fmt.Sprintf("no node recorded applying offset %d (nodes applied up to %d, past snapshots): the metadata checks stop there", last, ix.maxApplied())})
	}
	result.Anomalies = append(result.Anomalies, r.anomalies...)
	result.Findings = append(result.Findings, r.findings...)
	result.Checks = append(result.Checks, CheckStat{Name: "metadata", Checked: r.checked, Anomalies: len(r.anomalies)})
	if cfg.Liveness != nil {
		brokers, checked := checkBrokersAfterHeal(ix, cfg.Liveness, r)
		result.Anomalies = append(result.Anomalies, brokers...)
		result.Checks = append(result.Checks, CheckStat{Name: "brokers-after-heal", Checked: checked, Anomalies: len(brokers)})
	}
}

// step applies one committed entry and judges the state after it.
func (r *metadataReplay) step(entry quorumEntry) {
	r.checked++
	e := entry.event
	if err := r.machine.Apply(e.Offset, e.Epoch, e.Data); err != nil {
		r.anomalies = append(r.anomalies, QuorumAnomaly{Kind: QuorumAnomalyMetadataRejected, Node: NoQuorumNode, Offset: e.Offset, Epoch: e.Epoch,
			Events:      []QuorumEventRef{entry.ref},
			Explanation: fmt.Sprintf("the metadata state machine refused the entry committed at offset %d (epoch %d, applied by %s): %v", e.Offset, e.Epoch, r.ix.describe(entry.ref), err)})
	}
	if err := r.machine.Check(); err != nil && !r.invariantSeen {
		// A broken state stays broken; the first entry that broke it is
		// the one worth reading.
		r.invariantSeen = true
		r.anomalies = append(r.anomalies, QuorumAnomaly{Kind: QuorumAnomalyMetadataInvariant, Node: NoQuorumNode, Offset: e.Offset, Epoch: e.Epoch,
			Events:      []QuorumEventRef{entry.ref},
			Explanation: fmt.Sprintf("after the entry committed at offset %d (epoch %d), the metadata state machine's invariants fail: %v", e.Offset, e.Epoch, err)})
	}
	brokers := r.machine.Brokers()
	clear(r.brokers)
	for _, b := range brokers {
		r.brokers[b.ID] = b
	}
	partitions := r.machine.Partitions()
	slices.SortFunc(partitions, func(a, b MetadataPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	r.checkLeaders(entry, partitions)
	r.findUncleanElections(entry, partitions)
	clear(r.previous)
	for _, p := range partitions {
		r.previous[p.key()] = p
	}
	r.lastBrokers = brokers
	if e.Offset == r.cutoff {
		r.cutoffBrokers = brokers
	}
	r.compareDigests(e.Offset+1, r.snapshots[e.Offset+1], QuorumAnomalySnapshotDiffers)
	r.compareDigests(e.Offset, r.digests[e.Offset], QuorumAnomalyMetadataDiffers)
}

// checkLeaders reports each partition whose leader became a fenced or
// unregistered broker with this entry.
func (r *metadataReplay) checkLeaders(entry quorumEntry, partitions []MetadataPartition) {
	now := map[leadership]bool{}
	for _, p := range partitions {
		if p.Leader < 0 {
			continue
		}
		broker, registered := r.brokers[p.Leader]
		if registered && !broker.Fenced {
			continue
		}
		key := leadership{p.key(), p.Leader}
		now[key] = true
		if r.violating[key] {
			continue
		}
		state := "unregistered"
		if registered {
			state = fmt.Sprintf("fenced (broker epoch %d)", broker.Epoch)
		}
		r.anomalies = append(r.anomalies, QuorumAnomaly{Kind: QuorumAnomalyFencedLeader, Node: p.Leader, Offset: entry.event.Offset, Epoch: entry.event.Epoch,
			Events: []QuorumEventRef{entry.ref},
			Explanation: fmt.Sprintf("after the entry committed at offset %d (epoch %d, applied by %s), partition %s is led by broker %d, which is %s",
				entry.event.Offset, entry.event.Epoch, r.ix.describe(entry.ref), p.name(), p.Leader, state)})
	}
	r.violating = now
}

// findUncleanElections records, as information, the partitions whose new
// leader was neither in the ISR nor among the eligible leader replicas
// before this entry.
func (r *metadataReplay) findUncleanElections(entry quorumEntry, partitions []MetadataPartition) {
	var unclean []string
	for _, p := range partitions {
		old, ok := r.previous[p.key()]
		if !ok || p.Leader < 0 || p.Leader == old.Leader || slices.Contains(old.ISR, p.Leader) || slices.Contains(old.ELR, p.Leader) {
			continue
		}
		unclean = append(unclean, p.name())
	}
	if len(unclean) == 0 {
		return
	}
	r.findings = append(r.findings, QuorumFinding{Kind: QuorumFindingUncleanElection, Offset: entry.event.Offset, Epoch: entry.event.Epoch, Partitions: unclean,
		Explanation: fmt.Sprintf("the entry committed at offset %d (epoch %d) elected leaders outside the ISR and ELR of %s: writes acknowledged there may be lost",
			entry.event.Offset, entry.event.Epoch, strings.Join(unclean, ", "))})
}

// compareDigests compares recorded digests with the replay's at this point.
func (r *metadataReplay) compareDigests(offset int64, recorded []quorumEntry, kind QuorumAnomalyKind) {
	if len(recorded) == 0 {
		return
	}
	digest := r.machine.Digest()
	for _, entry := range recorded {
		if entry.event.Digest == digest {
			continue
		}
		what := fmt.Sprintf("after applying offset %d", offset)
		if kind == QuorumAnomalySnapshotDiffers {
			what = fmt.Sprintf("in a snapshot ending at %d", offset)
		}
		r.anomalies = append(r.anomalies, QuorumAnomaly{Kind: kind, Node: entry.ref.Node, Offset: offset, Epoch: -1,
			Events: []QuorumEventRef{entry.ref},
			Explanation: fmt.Sprintf("%s recorded state digest %q %s, but the committed history replayed there gives %q",
				r.ix.describe(entry.ref), entry.event.Digest, what, digest)})
	}
}

// recordedDigests gathers the snapshots by end offset and the applied-entry
// digests by offset.
func recordedDigests(ix *quorumIndex) (snapshots, digests map[int64][]quorumEntry) {
	snapshots, digests = map[int64][]quorumEntry{}, map[int64][]quorumEntry{}
	for _, ni := range ix.nodes {
		for j := range ni.node.Events {
			e := &ni.node.Events[j]
			entry := quorumEntry{ref: QuorumEventRef{Node: ni.node.ID, Event: j}, event: e}
			switch {
			case e.Kind == QuorumEventSnapshot:
				snapshots[e.Offset] = append(snapshots[e.Offset], entry)
			case e.Kind == QuorumEventApplied && e.Digest != "":
				digests[e.Offset] = append(digests[e.Offset], entry)
			}
		}
	}
	return snapshots, digests
}

// maxApplied returns one past the highest offset any node applied.
func (ix *quorumIndex) maxApplied() int64 {
	return lastAppliedBy(ix, -1) + 1
}

// lastAppliedBy returns the highest offset applied by any node at or
// before time t (any time when t is negative), or -1.
func lastAppliedBy(ix *quorumIndex, t int64) int64 {
	last := int64(-1)
	for _, ni := range ix.nodes {
		for _, e := range ni.node.Events {
			if e.Kind == QuorumEventApplied && (t < 0 || e.Time <= t) {
				last = max(last, e.Offset)
			}
		}
	}
	return last
}

// checkQuorumLiveness requires an active controller at some time between
// the heal and the bound: a running voter that leads an epoch, whose
// leadership in that epoch a majority of running voters (itself included)
// record as their current state.
func checkQuorumLiveness(ix *quorumIndex, cfg QuorumCheckConfig, result *QuorumResult) {
	l := cfg.Liveness
	if l == nil {
		return
	}
	deadline := l.HealTime + l.BoundNanos
	times := []int64{l.HealTime}
	for _, ni := range ix.nodes {
		if !ni.voter {
			continue
		}
		for _, e := range ni.node.Events {
			if e.Time > l.HealTime && e.Time <= deadline && (e.Kind == QuorumEventState || e.Kind == QuorumEventStart || e.Kind == QuorumEventStop) {
				times = append(times, e.Time)
			}
		}
	}
	slices.Sort(times)
	times = slices.Compact(times)
	for _, t := range times {
		if ix.activeControllerAt(t) != NoQuorumNode {
			result.ControllerActiveTime = t
			break
		}
	}
	var anomalies []QuorumAnomaly
	if result.ControllerActiveTime < 0 {
		anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyNoControllerAfterHeal, Node: NoQuorumNode, Offset: -1, Epoch: -1,
			Explanation: fmt.Sprintf("from the heal at time %d to the bound at time %d (%d ns later), no running voter led an epoch whose leadership a majority of %d voters recorded; at the bound: %s",
				l.HealTime, deadline, l.BoundNanos, ix.majority, ix.describeStatesAt(deadline))})
	}
	result.Anomalies = append(result.Anomalies, anomalies...)
	result.Checks = append(result.Checks, CheckStat{Name: "controller-after-heal", Checked: len(times), Anomalies: len(anomalies)})
}

// activeControllerAt returns the active controller at time t, or
// NoQuorumNode.
func (ix *quorumIndex) activeControllerAt(t int64) int32 {
	for i := range ix.nodes {
		leader := &ix.nodes[i]
		state := leader.stateAt(t)
		if !leader.voter || !leader.runningAt(t) || state < 0 || leader.node.Events[state].Role != QuorumRoleLeader {
			continue
		}
		epoch := leader.node.Events[state].Epoch
		acknowledged := 0
		for j := range ix.nodes {
			voter := &ix.nodes[j]
			s := voter.stateAt(t)
			if voter.voter && voter.runningAt(t) && s >= 0 && voter.node.Events[s].Epoch == epoch && voter.node.Events[s].Leader == leader.node.ID {
				acknowledged++
			}
		}
		if acknowledged >= ix.majority {
			return leader.node.ID
		}
	}
	return NoQuorumNode
}

// describeStatesAt renders each voter's state at time t for an explanation.
func (ix *quorumIndex) describeStatesAt(t int64) string {
	var parts []string
	for i := range ix.nodes {
		ni := &ix.nodes[i]
		if !ni.voter {
			continue
		}
		state := ni.stateAt(t)
		switch {
		case !ni.runningAt(t):
			parts = append(parts, fmt.Sprintf("node %d not running", ni.node.ID))
		case state < 0:
			parts = append(parts, fmt.Sprintf("node %d no state", ni.node.ID))
		default:
			e := ni.node.Events[state]
			parts = append(parts, fmt.Sprintf("node %d %s in epoch %d (leader %d)", ni.node.ID, e.Role, e.Epoch, e.Leader))
		}
	}
	return strings.Join(parts, ", ")
}

// checkBrokersAfterHeal requires every broker node running at the bound to
// be registered and unfenced in the history committed by then (the entries
// applied by some node at or before the bound).
func checkBrokersAfterHeal(ix *quorumIndex, l *QuorumLiveness, r *metadataReplay) ([]QuorumAnomaly, int) {
	deadline := l.HealTime + l.BoundNanos
	registered := map[int32]MetadataBroker{} // only looked up
	for _, b := range r.cutoffBrokers {
		registered[b.ID] = b
	}
	var anomalies []QuorumAnomaly
	checked := 0
	for i := range ix.nodes {
		ni := &ix.nodes[i]
		if !ni.node.Broker || !ni.runningAt(deadline) {
			continue
		}
		checked++
		b, ok := registered[ni.node.ID]
		if ok && !b.Fenced {
			continue
		}
		state := "not registered"
		if ok {
			state = fmt.Sprintf("fenced (broker epoch %d)", b.Epoch)
		}
		if r.cutoff >= int64(len(ix.committed)) {
			state += fmt.Sprintf(" as far as the replay reached (offset %d)", len(ix.committed)-1)
		}
		anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyBrokerFencedAfterHeal, Node: ni.node.ID, Offset: r.cutoff, Epoch: -1,
			Explanation: fmt.Sprintf("broker %d was running at the bound (time %d, %d ns after the heal at %d), but in the history committed by then (up to offset %d) it is %s",
				ni.node.ID, deadline, l.BoundNanos, l.HealTime, r.cutoff, state)})
	}
	return anomalies, checked
}
