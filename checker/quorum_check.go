package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// QuorumAnomalyKind names a violated property of the controller quorum.
// docs/checker.md ("The controller quorum") defines each precisely.
type QuorumAnomalyKind string

// The quorum anomaly kinds, in the order reports list them.
const (
	// QuorumAnomalyEpochWentBack: a node's durable quorum epoch decreased,
	// within an incarnation or across a restart.
	QuorumAnomalyEpochWentBack QuorumAnomalyKind = "epoch-went-back"
	// QuorumAnomalyTwoVotesOneEpoch: a node voted for two candidates in one
	// epoch, within an incarnation or across a restart.
	QuorumAnomalyTwoVotesOneEpoch QuorumAnomalyKind = "two-votes-one-epoch"
	// QuorumAnomalyTwoLeadersOneEpoch: two nodes were named leader of one
	// epoch, by the nodes themselves or by what clients saw.
	QuorumAnomalyTwoLeadersOneEpoch QuorumAnomalyKind = "two-leaders-one-epoch"
	// QuorumAnomalyPhantomController: a client was told of a controller in
	// an epoch before any node recorded that leadership.
	QuorumAnomalyPhantomController QuorumAnomalyKind = "phantom-controller"
	// QuorumAnomalyHighWatermarkWentBack: a node's high watermark moved back
	// within an incarnation, or a leader's high watermark fell below one
	// some node had recorded before.
	QuorumAnomalyHighWatermarkWentBack QuorumAnomalyKind = "high-watermark-went-back"
	// QuorumAnomalyHighWatermarkWithoutMajority: a node's high watermark
	// passed entries that fewer than a majority of voters held durably.
	QuorumAnomalyHighWatermarkWithoutMajority QuorumAnomalyKind = "high-watermark-without-majority"
	// QuorumAnomalyAppliedUncommitted: a node applied an entry at or beyond
	// its own high watermark.
	QuorumAnomalyAppliedUncommitted QuorumAnomalyKind = "applied-uncommitted"
	// QuorumAnomalyAppliedNotDense: a node's applied offsets skipped or
	// repeated an offset within an incarnation.
	QuorumAnomalyAppliedNotDense QuorumAnomalyKind = "applied-not-dense"
	// QuorumAnomalyCommittedDataDiffers: one offset was applied with two
	// different epochs or data, by two nodes or by one node twice.
	QuorumAnomalyCommittedDataDiffers QuorumAnomalyKind = "committed-data-differs"
	// QuorumAnomalyNoSnapshotAtLogStart: a node's log started above 0
	// without a snapshot ending exactly there.
	QuorumAnomalyNoSnapshotAtLogStart QuorumAnomalyKind = "no-snapshot-at-log-start"
	// QuorumAnomalySnapshotDiffers: two snapshots with one end offset have
	// different epochs or digests, or a snapshot's digest is not that of
	// the committed history replayed to its end offset.
	QuorumAnomalySnapshotDiffers QuorumAnomalyKind = "snapshot-differs"
	// QuorumAnomalyLeaderLoadedSnapshot: a node installed or loaded a
	// snapshot while it was leader, replacing state it had committed.
	QuorumAnomalyLeaderLoadedSnapshot QuorumAnomalyKind = "leader-loaded-snapshot"
	// QuorumAnomalyMetadataDiffers: a node's recorded state digest after
	// an entry differs from another node's at that offset, or from the
	// replay of the committed history.
	QuorumAnomalyMetadataDiffers QuorumAnomalyKind = "metadata-differs"
	// QuorumAnomalyMetadataRejected: the metadata state machine refused a
	// committed entry: the controller committed a record that does not fit.
	QuorumAnomalyMetadataRejected QuorumAnomalyKind = "metadata-rejected"
	// QuorumAnomalyMetadataInvariant: the metadata state machine's own
	// invariant check failed after a committed entry.
	QuorumAnomalyMetadataInvariant QuorumAnomalyKind = "metadata-invariant"
	// QuorumAnomalyFencedLeader: after a committed entry, a partition's
	// leader was a fenced or unregistered broker.
	QuorumAnomalyFencedLeader QuorumAnomalyKind = "fenced-leader"
	// QuorumAnomalyNoControllerAfterHeal: no active controller (a running
	// leader whose epoch and leadership a majority of voters recorded)
	// existed between the heal and the liveness bound.
	QuorumAnomalyNoControllerAfterHeal QuorumAnomalyKind = "no-controller-after-heal"
	// QuorumAnomalyBrokerFencedAfterHeal: a broker running at the liveness
	// bound was fenced or unregistered in the history committed by then.
	QuorumAnomalyBrokerFencedAfterHeal QuorumAnomalyKind = "broker-fenced-after-heal"
)

// quorumAnomalyKinds lists every kind in report order.
var quorumAnomalyKinds = []QuorumAnomalyKind{
	QuorumAnomalyEpochWentBack, QuorumAnomalyTwoVotesOneEpoch, QuorumAnomalyTwoLeadersOneEpoch,
	QuorumAnomalyPhantomController, QuorumAnomalyHighWatermarkWentBack, QuorumAnomalyHighWatermarkWithoutMajority,
	QuorumAnomalyAppliedUncommitted, QuorumAnomalyAppliedNotDense, QuorumAnomalyCommittedDataDiffers,
	QuorumAnomalyNoSnapshotAtLogStart, QuorumAnomalySnapshotDiffers, QuorumAnomalyLeaderLoadedSnapshot,
	QuorumAnomalyMetadataDiffers, QuorumAnomalyMetadataRejected, QuorumAnomalyMetadataInvariant,
	QuorumAnomalyFencedLeader, QuorumAnomalyNoControllerAfterHeal, QuorumAnomalyBrokerFencedAfterHeal,
}

// QuorumEventRef names a witness: event Event (an index into the node's
// Events) of node Node, or, when Node is NoQuorumNode, the observation
// QuorumHistory.Observations[Event].
type QuorumEventRef struct {
	Node  int32 `json:"node"`
	Event int   `json:"event"`
}

// QuorumAnomaly is one violation of a quorum property, with the events that
// witness it.
type QuorumAnomaly struct {
	Kind QuorumAnomalyKind `json:"kind"`
	// Node is the node concerned, or NoQuorumNode for a property of the
	// whole quorum.
	Node int32 `json:"node"`
	// Offset and Epoch are the log offset and epoch concerned, or -1.
	Offset int64 `json:"offset"`
	Epoch  int32 `json:"epoch"`
	// Events are the witnesses, the most telling first.
	Events []QuorumEventRef `json:"events"`
	// Explanation says what happened in a full sentence that names the
	// nodes, events, times, offsets and epochs.
	Explanation string `json:"explanation"`
}

// String renders a on one line.
func (a QuorumAnomaly) String() string { return fmt.Sprintf("%s: %s", a.Kind, a.Explanation) }

// QuorumFindingKind names an observation that is no violation.
type QuorumFindingKind string

// The finding kinds.
const (
	// QuorumFindingUncleanElection: a committed entry made a partition's
	// leader a replica that was neither in its ISR nor among its eligible
	// leader replicas just before: acknowledged writes may be lost, which
	// unclean.leader.election.enable permits.
	QuorumFindingUncleanElection QuorumFindingKind = "unclean-election"
	// QuorumFindingReplayStopped: no node recorded applying some offset,
	// so the metadata checks stopped there.
	QuorumFindingReplayStopped QuorumFindingKind = "replay-stopped"
)

// QuorumFinding is information for the reader, not a violation.
type QuorumFinding struct {
	Kind   QuorumFindingKind `json:"kind"`
	Offset int64             `json:"offset"`
	Epoch  int32             `json:"epoch"`
	// Partitions names the partitions concerned as "topic-partition".
	Partitions  []string `json:"partitions,omitempty"`
	Explanation string   `json:"explanation"`
}

// QuorumLiveness asks CheckQuorum to require progress after healing.
type QuorumLiveness struct {
	// HealTime is when the heal phase began (every fault lifted), in
	// virtual nanoseconds.
	HealTime int64 `json:"heal_time"`
	// BoundNanos is how long after HealTime the quorum has to have an
	// active controller and every running broker unfenced.
	BoundNanos int64 `json:"bound_nanos"`
}

// QuorumCheckConfig tunes CheckQuorum. The zero value checks the Raft
// properties only.
type QuorumCheckConfig struct {
	// NewMetadataMachine, when set, returns a fresh metadata state machine
	// at offset -1: CheckQuorum replays the committed history through it
	// and runs the metadata checks. The checker cannot import package
	// broker; the simulator passes an adapter over metadata.Image.
	NewMetadataMachine func() MetadataMachine
	// Liveness, when set, enables the checks after healing.
	Liveness *QuorumLiveness
}

// QuorumResult is CheckQuorum's verdict.
type QuorumResult struct {
	Status Status `json:"status"`
	// Verdict is one line, such as "OK: 5 nodes (3 voters), 812 events, 96
	// committed entries, 0 anomalies" (with ", 2 findings" when there are
	// findings) or "FAIL: fenced-leader x1".
	Verdict string `json:"verdict"`
	// Err is set, and nothing else is, when the history or the
	// configuration is invalid.
	Err error `json:"-"`
	// Anomalies are sorted by kind (in report order), node, offset, epoch,
	// witnesses and explanation.
	Anomalies []QuorumAnomaly `json:"anomalies"`
	// Findings are information (unclean elections, an incomplete replay),
	// in offset order.
	Findings []QuorumFinding `json:"findings,omitempty"`
	// ControllerActiveTime is the first time at or after the heal when an
	// active controller existed; -1 when there was none by the bound or
	// liveness was not checked.
	ControllerActiveTime int64 `json:"controller_active_time"`
	// Checks lists every check in the order CheckQuorum runs them.
	Checks []CheckStat `json:"checks"`
}

// quorumCheck is one property check of CheckQuorum. It returns its
// anomalies and how many items it examined.
type quorumCheck struct {
	name string
	run  func(*quorumIndex) ([]QuorumAnomaly, int)
}

// quorumChecks are the Raft-level checks, run in this order; the metadata
// and liveness checks follow (quorum_metadata.go).
var quorumChecks = []quorumCheck{
	{name: "monotonic-epoch", run: checkQuorumEpochs},
	{name: "single-leader", run: checkSingleLeader},
	{name: "monotonic-high-watermark", run: checkHighWatermarks},
	{name: "majority-high-watermark", run: checkMajorityHighWatermark},
	{name: "applied-entries", run: checkAppliedEntries},
	{name: "committed-data", run: checkCommittedData},
	{name: "snapshots", run: checkSnapshots},
}

// CheckQuorum validates h and judges it: the Raft properties that Kafka's
// own KRaft simulation checks and more, then, with a metadata machine, the
// metadata properties, and with Liveness, progress after healing. Its
// result, every list order and string included, depends only on h and cfg
// (and on the machine being deterministic).
func CheckQuorum(h *QuorumHistory, cfg QuorumCheckConfig) QuorumResult {
	if err := cmp.Or(h.Validate(), cfg.validate()); err != nil {
		return QuorumResult{Status: StatusInvalid, Verdict: "INVALID: " + err.Error(), Err: err, ControllerActiveTime: -1}
	}
	ix := buildQuorumIndex(h)
	result := QuorumResult{ControllerActiveTime: -1}
	for _, c := range quorumChecks {
		anomalies, checked := c.run(ix)
		result.Anomalies = append(result.Anomalies, anomalies...)
		result.Checks = append(result.Checks, CheckStat{Name: c.name, Checked: checked, Anomalies: len(anomalies)})
	}
	checkQuorumMetadata(ix, cfg, &result)
	checkQuorumLiveness(ix, cfg, &result)
	slices.SortFunc(result.Anomalies, compareQuorumAnomalies)
	result.Status, result.Verdict = quorumVerdict(ix, &result)
	return result
}

func (cfg QuorumCheckConfig) validate() error {
	if l := cfg.Liveness; l != nil && (l.HealTime < 0 || l.BoundNanos < 0) {
		return fmt.Errorf("%w: negative heal time %d or bound %d", ErrInvalidOptions, l.HealTime, l.BoundNanos)
	}
	return nil
}

func quorumVerdict(ix *quorumIndex, r *QuorumResult) (Status, string) {
	if len(r.Anomalies) > 0 {
		var parts []string
		for start := 0; start < len(r.Anomalies); {
			end := start + 1
			for end < len(r.Anomalies) && r.Anomalies[end].Kind == r.Anomalies[start].Kind {
				end++
			}
			parts = append(parts, fmt.Sprintf("%s x%d", r.Anomalies[start].Kind, end-start))
			start = end
		}
		return StatusFail, "FAIL: " + strings.Join(parts, ", ")
	}
	line := fmt.Sprintf("OK: %d nodes (%d voters), %d events, %d committed entries, 0 anomalies",
		len(ix.nodes), len(ix.h.Voters), ix.events, len(ix.committed))
	if len(r.Findings) > 0 {
		line += fmt.Sprintf(", %d findings", len(r.Findings))
	}
	return StatusOK, line
}

// Report renders r: the verdict, one line per anomaly, then one line per
// finding.
func (r *QuorumResult) Report() string {
	var b strings.Builder
	b.WriteString(r.Verdict)
	b.WriteByte('\n')
	for _, a := range r.Anomalies {
		fmt.Fprintf(&b, "  %s\n", a)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  info %s: %s\n", f.Kind, f.Explanation)
	}
	return b.String()
}

func compareQuorumAnomalies(a, b QuorumAnomaly) int {
	return cmp.Or(
		cmp.Compare(slices.Index(quorumAnomalyKinds, a.Kind), slices.Index(quorumAnomalyKinds, b.Kind)),
		cmp.Compare(a.Node, b.Node),
		cmp.Compare(a.Offset, b.Offset),
		cmp.Compare(a.Epoch, b.Epoch),
		slices.CompareFunc(a.Events, b.Events, compareQuorumRefs),
		strings.Compare(a.Explanation, b.Explanation),
	)
}

func compareQuorumRefs(a, b QuorumEventRef) int {
	return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Event, b.Event))
}

// quorumIndex is what every check needs from a validated history.
type quorumIndex struct {
	h        *QuorumHistory
	majority int
	events   int
	nodes    []quorumNodeIndex
	// committed is the committed history as the nodes applied it: the
	// first applied event recorded for each offset, dense from offset 0 up
	// to the first offset no node applied.
	committed []quorumEntry
}

// quorumEntry is one applied event with its witness.
type quorumEntry struct {
	ref   QuorumEventRef
	event *QuorumEvent
}

// quorumNodeIndex is one node's events sorted out by kind.
type quorumNodeIndex struct {
	node  *QuorumNode
	voter bool
	// role is the role in force at each event: the last state recorded in
	// the same incarnation, "" before any; epoch is that state's epoch.
	role  []QuorumRole
	epoch []int32
	// lifecycle, states, highWatermarks and logEnds are the indexes of the
	// node's start and stop, state, high-watermark and log-end events.
	lifecycle, states, highWatermarks, logEnds []int
}

func buildQuorumIndex(h *QuorumHistory) *quorumIndex {
	ix := &quorumIndex{h: h, majority: len(h.Voters)/2 + 1}
	for i := range h.Nodes {
		node := &h.Nodes[i]
		ix.events += len(node.Events)
		ni := quorumNodeIndex{node: node, voter: slices.Contains(h.Voters, node.ID), role: make([]QuorumRole, len(node.Events)),
			epoch: make([]int32, len(node.Events))}
		var role QuorumRole
		var epoch int32
		for j, e := range node.Events {
			switch e.Kind {
			case QuorumEventStart, QuorumEventStop:
				role = ""
				ni.lifecycle = append(ni.lifecycle, j)
			case QuorumEventState:
				role, epoch = e.Role, e.Epoch
				ni.states = append(ni.states, j)
			case QuorumEventHighWatermark:
				ni.highWatermarks = append(ni.highWatermarks, j)
			case QuorumEventLogEnd:
				ni.logEnds = append(ni.logEnds, j)
			}
			ni.role[j], ni.epoch[j] = role, epoch
		}
		ix.nodes = append(ix.nodes, ni)
	}
	ix.committed = committedHistory(ix.appliedEntries())
	return ix
}

// appliedEntries returns every applied event, sorted by offset and then by
// witness.
func (ix *quorumIndex) appliedEntries() []quorumEntry {
	var entries []quorumEntry
	for _, ni := range ix.nodes {
		for j := range ni.node.Events {
			if e := &ni.node.Events[j]; e.Kind == QuorumEventApplied {
				entries = append(entries, quorumEntry{ref: QuorumEventRef{Node: ni.node.ID, Event: j}, event: e})
			}
		}
	}
	slices.SortStableFunc(entries, func(a, b quorumEntry) int {
		return cmp.Or(cmp.Compare(a.event.Offset, b.event.Offset), compareQuorumRefs(a.ref, b.ref))
	})
	return entries
}

// committedHistory keeps the first entry of each offset, from 0 up to the
// first offset missing.
func committedHistory(entries []quorumEntry) []quorumEntry {
	var committed []quorumEntry
	for _, entry := range entries {
		next := int64(len(committed))
		if entry.event.Offset > next {
			break
		}
		if entry.event.Offset == next {
			committed = append(committed, entry)
		}
	}
	return committed
}

// describe names an event in explanations: "node 2 event #14 at time 1500".
func (ix *quorumIndex) describe(ref QuorumEventRef) string {
	if ref.Node == NoQuorumNode {
		o := ix.h.Observations[ref.Event]
		return fmt.Sprintf("client %q observation #%d at time %d", o.Client, ref.Event, o.Time)
	}
	for _, ni := range ix.nodes {
		if ni.node.ID == ref.Node {
			return fmt.Sprintf("node %d event #%d at time %d", ref.Node, ref.Event, ni.node.Events[ref.Event].Time)
		}
	}
	panic(fmt.Sprintf("checker: no node %d", ref.Node))
}

// lastAtOrBefore returns the last of the node's events listed in indexes
// (ascending) whose time is at or before t, or -1.
func (ni *quorumNodeIndex) lastAtOrBefore(indexes []int, t int64) int {
	n, _ := slices.BinarySearchFunc(indexes, t, func(index int, t int64) int {
		if ni.node.Events[index].Time <= t {
			return -1
		}
		return 1
	})
	if n == 0 {
		return -1
	}
	return indexes[n-1]
}

// runningAt reports whether the node's process ran at time t: its last start
// or stop at or before t is a start.
func (ni *quorumNodeIndex) runningAt(t int64) bool {
	last := ni.lastAtOrBefore(ni.lifecycle, t)
	return last >= 0 && ni.node.Events[last].Kind == QuorumEventStart
}

// stateAt returns the index of the node's state event in force at time t
// (recorded since its last start), or -1.
func (ni *quorumNodeIndex) stateAt(t int64) int {
	state := ni.lastAtOrBefore(ni.states, t)
	if state < 0 || state < ni.lastAtOrBefore(ni.lifecycle, t) {
		return -1
	}
	return state
}

// checkQuorumEpochs: per voter, over all its incarnations, the durable
// epoch never decreases and one epoch holds at most one vote. The quorum
// state is durable, so a restart changes neither. An observer's epoch is
// judged within each incarnation only.
func checkQuorumEpochs(ix *quorumIndex) ([]QuorumAnomaly, int) {
	var anomalies []QuorumAnomaly
	for i := range ix.nodes {
		anomalies = append(anomalies, checkNodeEpochs(ix, &ix.nodes[i])...)
	}
	checked := 0
	for _, ni := range ix.nodes {
		checked += len(ni.states)
	}
	return anomalies, checked
}

// checkNodeEpochs reports the first time a node's epoch went back, and each
// second vote in an epoch.
func checkNodeEpochs(ix *quorumIndex, ni *quorumNodeIndex) []QuorumAnomaly {
	var anomalies []QuorumAnomaly
	highest, reported := -1, false
	votes := map[int32]int{} // epoch -> index of the state with its vote; only looked up
	for j := range ni.node.Events {
		e := &ni.node.Events[j]
		if e.Kind == QuorumEventStart && !ni.voter {
			// Safety asks no durable quorum state of an observer, which
			// casts no vote: its epoch may restart with its process.
			highest, reported = -1, false
		}
		if e.Kind != QuorumEventState {
			continue
		}
		ref := QuorumEventRef{Node: ni.node.ID, Event: j}
		if highest >= 0 && e.Epoch < ni.node.Events[highest].Epoch && !reported {
			reported = true
			before := QuorumEventRef{Node: ni.node.ID, Event: highest}
			anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyEpochWentBack, Node: ni.node.ID, Offset: -1, Epoch: e.Epoch,
				Events: []QuorumEventRef{ref, before},
				Explanation: fmt.Sprintf("%s recorded epoch %d after %s had recorded epoch %d",
					ix.describe(ref), e.Epoch, ix.describe(before), ni.node.Events[highest].Epoch)})
		}
		if highest < 0 || e.Epoch > ni.node.Events[highest].Epoch {
			highest = j
		}
		if e.Vote == NoQuorumNode {
			continue
		}
		first, ok := votes[e.Epoch]
		if ok && ni.node.Events[first].Vote != e.Vote {
			before := QuorumEventRef{Node: ni.node.ID, Event: first}
			anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyTwoVotesOneEpoch, Node: ni.node.ID, Offset: -1, Epoch: e.Epoch,
				Events: []QuorumEventRef{ref, before},
				Explanation: fmt.Sprintf("%s voted for %d in epoch %d, after %s had voted for %d in it",
					ix.describe(ref), e.Vote, e.Epoch, ix.describe(before), ni.node.Events[first].Vote)})
		}
		if !ok || ni.node.Events[first].Vote != e.Vote {
			votes[e.Epoch] = j
		}
	}
	return anomalies
}

// leaderClaim is one statement that a node leads an epoch.
type leaderClaim struct {
	epoch  int32
	leader int32
	ref    QuorumEventRef
}

// checkSingleLeader: over every node's states (a leader names itself, a
// follower its leader) and every client observation, each epoch has at most
// one leader.
func checkSingleLeader(ix *quorumIndex) ([]QuorumAnomaly, int) {
	var claims []leaderClaim
	for _, ni := range ix.nodes {
		for _, j := range ni.states {
			if e := &ni.node.Events[j]; e.Leader != NoQuorumNode {
				claims = append(claims, leaderClaim{epoch: e.Epoch, leader: e.Leader, ref: QuorumEventRef{Node: ni.node.ID, Event: j}})
			}
		}
	}
	for i, o := range ix.h.Observations {
		claims = append(claims, leaderClaim{epoch: o.Epoch, leader: o.Controller, ref: QuorumEventRef{Node: NoQuorumNode, Event: i}})
	}
	slices.SortStableFunc(claims, func(a, b leaderClaim) int { return cmp.Compare(a.epoch, b.epoch) })
	var anomalies []QuorumAnomaly
	for start := 0; start < len(claims); {
		end := start
		for end < len(claims) && claims[end].epoch == claims[start].epoch {
			end++
		}
		first := claims[start]
		for _, c := range claims[start+1 : end] {
			if c.leader != first.leader {
				anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyTwoLeadersOneEpoch, Node: NoQuorumNode, Offset: -1, Epoch: first.epoch,
					Events: []QuorumEventRef{first.ref, c.ref},
					Explanation: fmt.Sprintf("%s names node %d leader of epoch %d, and %s names node %d",
						ix.describe(first.ref), first.leader, first.epoch, ix.describe(c.ref), c.leader)})
				break
			}
		}
		start = end
	}
	return append(anomalies, checkPhantomControllers(ix)...), len(claims)
}

// checkPhantomControllers: a client learns of a controller only through a
// node that knew it, and a node's quorum state is durable (so recorded)
// before any message leaves in it. So some node recorded the observed
// controller leading the observed epoch at or before the observation.
func checkPhantomControllers(ix *quorumIndex) []QuorumAnomaly {
	var anomalies []QuorumAnomaly
	for i, o := range ix.h.Observations {
		if ix.leaderRecorded(o.Epoch, o.Controller, o.Time) {
			continue
		}
		ref := QuorumEventRef{Node: NoQuorumNode, Event: i}
		anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyPhantomController, Node: o.Controller, Offset: -1, Epoch: o.Epoch,
			Events: []QuorumEventRef{ref},
			Explanation: fmt.Sprintf("%s names node %d controller in epoch %d, but no node had recorded that leadership by then",
				ix.describe(ref), o.Controller, o.Epoch)})
	}
	return anomalies
}

// leaderRecorded reports whether some node recorded, at or before time t, a
// state naming leader as the leader of epoch.
func (ix *quorumIndex) leaderRecorded(epoch, leader int32, t int64) bool {
	for _, ni := range ix.nodes {
		for _, j := range ni.states {
			if e := &ni.node.Events[j]; e.Time <= t && e.Epoch == epoch && e.Leader == leader {
				return true
			}
		}
	}
	return false
}

// checkHighWatermarks: within an incarnation a node's high watermark never
// moves back (a restart starts it afresh), and, as in Kafka's simulation,
// no high watermark a node records as leader is below one that any node
// recorded earlier: what was committed stays committed.
func checkHighWatermarks(ix *quorumIndex) ([]QuorumAnomaly, int) {
	var anomalies []QuorumAnomaly
	var all []QuorumEventRef
	for _, ni := range ix.nodes {
		last := -1
		for j, e := range ni.node.Events {
			switch {
			case e.Kind == QuorumEventStart:
				last = -1
			case e.Kind != QuorumEventHighWatermark:
			case last >= 0 && e.Offset < ni.node.Events[last].Offset:
				ref, before := QuorumEventRef{Node: ni.node.ID, Event: j}, QuorumEventRef{Node: ni.node.ID, Event: last}
				anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyHighWatermarkWentBack, Node: ni.node.ID, Offset: e.Offset, Epoch: -1,
					Events: []QuorumEventRef{ref, before},
					Explanation: fmt.Sprintf("%s recorded high watermark %d after %s, in the same incarnation, had recorded %d",
						ix.describe(ref), e.Offset, ix.describe(before), ni.node.Events[last].Offset)})
				last = j
			default:
				last = j
			}
			if e.Kind == QuorumEventHighWatermark {
				all = append(all, QuorumEventRef{Node: ni.node.ID, Event: j})
			}
		}
	}
	anomalies = append(anomalies, checkLeaderHighWatermarks(ix, all)...)
	return anomalies, len(all)
}

// checkLeaderHighWatermarks compares each high watermark recorded by the
// newest leader with the highest recorded strictly before it by any node,
// as Kafka's MonotonicHighWatermark checks the high watermark of the
// leader of the highest epoch. A deposed leader that has not heard of its
// successor may still advance its own high watermark over entries a
// majority held in its epoch, after the successor committed more: that is
// not a high watermark going back (cluster seed 1000297 once was reported
// so), and the committed-data checks judge what it committed.
func checkLeaderHighWatermarks(ix *quorumIndex, all []QuorumEventRef) []QuorumAnomaly {
	event := func(ref QuorumEventRef) *QuorumEvent { return &ix.node(ref.Node).node.Events[ref.Event] }
	newestLeaderEpoch := newestLeaderEpochs(ix)
	slices.SortStableFunc(all, func(a, b QuorumEventRef) int { return cmp.Compare(event(a).Time, event(b).Time) })
	var anomalies []QuorumAnomaly
	highest := QuorumEventRef{Node: NoQuorumNode}
	for start := 0; start < len(all); {
		end := start
		for end < len(all) && event(all[end]).Time == event(all[start]).Time {
			end++
		}
		for _, ref := range all[start:end] {
			e := event(ref)
			ni := ix.node(ref.Node)
			if highest.Node == NoQuorumNode || ni.role[ref.Event] != QuorumRoleLeader || e.Offset >= event(highest).Offset ||
				ni.epoch[ref.Event] < newestLeaderEpoch(e.Time) {
				continue
			}
			anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyHighWatermarkWentBack, Node: ref.Node, Offset: e.Offset, Epoch: -1,
				Events: []QuorumEventRef{ref, highest},
				Explanation: fmt.Sprintf("%s recorded high watermark %d as leader, below the %d that %s had recorded before",
					ix.describe(ref), e.Offset, event(highest).Offset, ix.describe(highest))})
		}
		for _, ref := range all[start:end] {
			if highest.Node == NoQuorumNode || event(ref).Offset > event(highest).Offset {
				highest = ref
			}
		}
		start = end
	}
	return anomalies
}

// newestLeaderEpochs returns a function giving the highest epoch any node
// had recorded leading at or before a time.
func newestLeaderEpochs(ix *quorumIndex) func(time int64) int32 {
	type leadership struct {
		time  int64
		epoch int32
	}
	var led []leadership
	for _, ni := range ix.nodes {
		for _, j := range ni.states {
			if e := ni.node.Events[j]; e.Role == QuorumRoleLeader {
				led = append(led, leadership{e.Time, e.Epoch})
			}
		}
	}
	slices.SortFunc(led, func(a, b leadership) int { return cmp.Compare(a.time, b.time) })
	return func(time int64) int32 {
		newest := int32(-1)
		for _, l := range led {
			if l.time > time {
				break
			}
			newest = max(newest, l.epoch)
		}
		return newest
	}
}

// node returns the index of the node with the id, which must exist.
func (ix *quorumIndex) node(id int32) *quorumNodeIndex {
	for i := range ix.nodes {
		if ix.nodes[i].node.ID == id {
			return &ix.nodes[i]
		}
	}
	panic(fmt.Sprintf("checker: no node %d", id))
}

// checkMajorityHighWatermark: whenever a node records a high watermark h, a
// majority of voters hold the log below h durably: their last recorded
// durable log end at that time is at least h.
func checkMajorityHighWatermark(ix *quorumIndex) ([]QuorumAnomaly, int) {
	var anomalies []QuorumAnomaly
	checked := 0
	for _, ni := range ix.nodes {
		for _, j := range ni.highWatermarks {
			e := &ni.node.Events[j]
			if e.Offset == 0 {
				continue
			}
			checked++
			var holders []string
			for _, voter := range ix.nodes {
				if !voter.voter {
					continue
				}
				if end := voter.lastAtOrBefore(voter.logEnds, e.Time); end >= 0 && voter.node.Events[end].Offset >= e.Offset {
					holders = append(holders, fmt.Sprint(voter.node.ID))
				}
			}
			if len(holders) >= ix.majority {
				continue
			}
			ref := QuorumEventRef{Node: ni.node.ID, Event: j}
			anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyHighWatermarkWithoutMajority, Node: ni.node.ID, Offset: e.Offset, Epoch: -1,
				Events: []QuorumEventRef{ref},
				Explanation: fmt.Sprintf("%s recorded high watermark %d, but only voters [%s] had recorded a durable log end at or beyond it by then, fewer than a majority of %d",
					ix.describe(ref), e.Offset, strings.Join(holders, " "), ix.majority)})
		}
	}
	return anomalies, checked
}

// checkAppliedEntries: within an incarnation a node applies offsets densely,
// from 0 or from the end of the snapshot it installed or loaded, and only
// below its own high watermark.
func checkAppliedEntries(ix *quorumIndex) ([]QuorumAnomaly, int) {
	var anomalies []QuorumAnomaly
	checked := 0
	for _, ni := range ix.nodes {
		next, highWatermark := int64(0), int64(0)
		for j, e := range ni.node.Events {
			ref := QuorumEventRef{Node: ni.node.ID, Event: j}
			switch {
			case e.Kind == QuorumEventStart:
				next, highWatermark = 0, 0
			case e.Kind == QuorumEventHighWatermark:
				highWatermark = e.Offset
			case e.Kind == QuorumEventSnapshot && e.Source != SnapshotTaken:
				next = e.Offset
			case e.Kind == QuorumEventApplied:
				checked++
				if e.Offset != next {
					anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyAppliedNotDense, Node: ni.node.ID, Offset: e.Offset, Epoch: e.Epoch,
						Events:      []QuorumEventRef{ref},
						Explanation: fmt.Sprintf("%s applied offset %d where offset %d was next", ix.describe(ref), e.Offset, next)})
				}
				if e.Offset >= highWatermark {
					anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyAppliedUncommitted, Node: ni.node.ID, Offset: e.Offset, Epoch: e.Epoch,
						Events:      []QuorumEventRef{ref},
						Explanation: fmt.Sprintf("%s applied offset %d while its high watermark was %d", ix.describe(ref), e.Offset, highWatermark)})
				}
				next = e.Offset + 1
			}
		}
	}
	return anomalies, checked
}

// checkCommittedData: every application of one offset, by any node in any
// incarnation, has the same epoch and data, and the state digests recorded
// after it (when recorded) are equal.
func checkCommittedData(ix *quorumIndex) ([]QuorumAnomaly, int) {
	entries := ix.appliedEntries()
	var anomalies []QuorumAnomaly
	for start := 0; start < len(entries); {
		end := start
		for end < len(entries) && entries[end].event.Offset == entries[start].event.Offset {
			end++
		}
		anomalies = append(anomalies, compareApplications(ix, entries[start:end])...)
		start = end
	}
	return anomalies, len(entries)
}

// compareApplications reports the first application of one offset whose
// entry differs from the first, and the first whose digest differs from the
// first recorded digest.
func compareApplications(ix *quorumIndex, same []quorumEntry) []QuorumAnomaly {
	var anomalies []QuorumAnomaly
	first := same[0]
	for _, other := range same[1:] {
		if other.event.Epoch != first.event.Epoch || string(other.event.Data) != string(first.event.Data) {
			anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyCommittedDataDiffers, Node: NoQuorumNode, Offset: first.event.Offset, Epoch: first.event.Epoch,
				Events: []QuorumEventRef{first.ref, other.ref},
				Explanation: fmt.Sprintf("%s applied offset %d as epoch %d with %d bytes %q, and %s as epoch %d with %d bytes %q",
					ix.describe(first.ref), first.event.Offset, first.event.Epoch, len(first.event.Data), clip(first.event.Data),
					ix.describe(other.ref), other.event.Epoch, len(other.event.Data), clip(other.event.Data))})
			break
		}
	}
	var digested *quorumEntry
	for i := range same {
		other := &same[i]
		if other.event.Digest == "" {
			continue
		}
		if digested == nil {
			digested = other
			continue
		}
		if other.event.Digest != digested.event.Digest {
			anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyMetadataDiffers, Node: NoQuorumNode, Offset: first.event.Offset, Epoch: -1,
				Events: []QuorumEventRef{digested.ref, other.ref},
				Explanation: fmt.Sprintf("after applying offset %d, %s recorded state digest %q and %s recorded %q",
					first.event.Offset, ix.describe(digested.ref), digested.event.Digest, ix.describe(other.ref), other.event.Digest)})
			break
		}
	}
	return anomalies
}

// clip shortens data for an explanation.
func clip(data []byte) string {
	const bytesMax = 16
	if len(data) > bytesMax {
		return string(data[:bytesMax]) + "..."
	}
	return string(data)
}

// checkSnapshots: snapshots with one end offset agree in epoch and digest;
// a log that starts above 0 starts exactly at the end of a snapshot the node
// holds; a leader never installs or loads a snapshot (Kafka's
// LeaderNeverLoadsSnapshot: it would replace state it committed itself).
func checkSnapshots(ix *quorumIndex) ([]QuorumAnomaly, int) {
	var anomalies []QuorumAnomaly
	var snapshots []quorumEntry
	for _, ni := range ix.nodes {
		var ends []int64
		for j := range ni.node.Events {
			e := &ni.node.Events[j]
			ref := QuorumEventRef{Node: ni.node.ID, Event: j}
			switch e.Kind {
			case QuorumEventSnapshot:
				snapshots = append(snapshots, quorumEntry{ref: ref, event: e})
				ends = append(ends, e.Offset)
				if e.Source != SnapshotTaken && ni.role[j] == QuorumRoleLeader {
					anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyLeaderLoadedSnapshot, Node: ni.node.ID, Offset: e.Offset, Epoch: e.Epoch,
						Events:      []QuorumEventRef{ref},
						Explanation: fmt.Sprintf("%s %s a snapshot ending at %d while it was leader", ix.describe(ref), e.Source, e.Offset)})
				}
			case QuorumEventLogStart:
				if e.Offset > 0 && !slices.Contains(ends, e.Offset) {
					anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalyNoSnapshotAtLogStart, Node: ni.node.ID, Offset: e.Offset, Epoch: -1,
						Events:      []QuorumEventRef{ref},
						Explanation: fmt.Sprintf("%s moved its log start to %d, but it recorded no snapshot ending there (it recorded %v)", ix.describe(ref), e.Offset, ends)})
				}
			}
		}
	}
	slices.SortStableFunc(snapshots, func(a, b quorumEntry) int { return cmp.Compare(a.event.Offset, b.event.Offset) })
	for start := 0; start < len(snapshots); {
		end := start
		for end < len(snapshots) && snapshots[end].event.Offset == snapshots[start].event.Offset {
			end++
		}
		first := snapshots[start]
		for _, other := range snapshots[start+1 : end] {
			if other.event.Epoch != first.event.Epoch || other.event.Digest != first.event.Digest {
				anomalies = append(anomalies, QuorumAnomaly{Kind: QuorumAnomalySnapshotDiffers, Node: NoQuorumNode, Offset: first.event.Offset, Epoch: first.event.Epoch,
					Events: []QuorumEventRef{first.ref, other.ref},
					Explanation: fmt.Sprintf("%s recorded a snapshot ending at %d with epoch %d and digest %q, and %s one with epoch %d and digest %q",
						ix.describe(first.ref), first.event.Offset, first.event.Epoch, first.event.Digest, ix.describe(other.ref), other.event.Epoch, other.event.Digest)})
				break
			}
		}
		start = end
	}
	return anomalies, len(snapshots)
}
