package checker

import (
	"cmp"
	"fmt"
	"slices"
)

// checkCommittedReads judges every successful read of a group's committed
// offset (KindFetchCommitted) against the group's commits of that
// partition, as reads of a register: a read returns the value of a commit
// that may have taken effect before the read returned and that no
// acknowledged commit certainly overwrote before the read began. A commit
// took effect between its call and its return when it was acknowledged,
// and at any time after its call when its outcome is indefinite (the
// request may still be stored later); a failed commit never did. A read
// of -1 (nothing committed) is legal only while no acknowledged commit has
// returned. Anything else is a lost-commit: an acknowledged commit was
// lost, or the broker invented a value.
func checkCommittedReads(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		for _, g := range commitsByGroup(ix.h, p) {
			for _, read := range g.reads {
				checked++
				if a, bad := judgeCommittedRead(ix.h, p.tp, g, read); bad {
					anomalies = append(anomalies, a)
				}
			}
		}
	}
	stale, staleChecked := checkStaleCommits(ix.h)
	return append(anomalies, stale...), checked + staleChecked
}

// AnomalyStaleGenerationCommit: the coordinator accepted a commit whose
// generation the clients had already seen superseded (see
// checkStaleCommits).
const AnomalyStaleGenerationCommit AnomalyKind = "stale-generation-commit"

// handout is one membership a client was handed (Member), with the first
// commit that carried it as its witness.
type handout struct {
	member Member
	op     int
}

// checkStaleCommits flags every acknowledged commit that carried a stale
// generation, judged only from what the clients observed: a commit of
// member m in generation g is stale once any client of the group had
// been handed a later generation g' > g by a SyncGroup that it sent after
// m's own SyncGroup for g was answered, and whose answer arrived before
// the commit was sent. Kafka's coordinator answers SyncGroup only once the
// generation's assignment is durable, and generations only grow, so when
// the commit arrived the group's generation was at least g' (or the group
// had been emptied and rebuilt, which forgets m): the coordinator had to
// refuse it (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID). Commits without a
// membership are not judged. It returns the anomalies and the number of
// acknowledged commits judged.
func checkStaleCommits(h *History) ([]Anomaly, int) {
	handouts := make(map[string][]handout)
	seen := make(map[Member]bool)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind != KindCommit || op.Group.Member == nil || seen[*op.Group.Member] {
			continue
		}
		seen[*op.Group.Member] = true
		handouts[op.Group.Group] = append(handouts[op.Group.Group], handout{member: *op.Group.Member, op: i})
	}
	var anomalies []Anomaly
	checked := 0
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind != KindCommit || op.Outcome != OutcomeOK || op.Group.Member == nil {
			continue
		}
		checked++
		if later, ok := supersedingHandout(op, handouts[op.Group.Group]); ok {
			anomalies = append(anomalies, staleCommit(h, i, later))
		}
	}
	return anomalies, checked
}

// supersedingHandout returns the earliest answered handout of a later
// generation that proves commit's generation stale, if any.
func supersedingHandout(commit *Op, handouts []handout) (handout, bool) {
	m := commit.Group.Member
	found, best := false, handout{}
	for _, later := range handouts {
		l := later.member
		if l.Generation > m.Generation && l.SyncCall > m.SyncReturn && l.SyncReturn < commit.Call &&
			(!found || l.SyncReturn < best.member.SyncReturn) {
			found, best = true, later
		}
	}
	return best, found
}

func staleCommit(h *History, commit int, later handout) Anomaly {
	op := &h.Ops[commit]
	m, l := op.Group.Member, later.member
	return Anomaly{
		Kind: AnomalyStaleGenerationCommit, Partition: op.TopicPartition(), Ops: []int{commit, later.op}, Offset: op.Group.Offset,
		Explanation: fmt.Sprintf("group %s: %s committed offset %d as member %s of generation %d and was acknowledged, but member %s had been handed generation %d by a SyncGroup sent at time %d, after generation %d was handed at time %d, and answered at time %d, before the commit was sent (as %s shows)",
			op.Group.Group, describeOp(h, commit), op.Group.Offset, m.ID, m.Generation, l.ID, l.Generation, l.SyncCall,
			m.Generation, m.SyncReturn, l.SyncReturn, describeOp(h, later.op)),
	}
}

// groupCommits are one group's commits (ok or indefinite) and ok
// committed-offset reads of one partition, each in history order.
type groupCommits struct {
	group   string
	commits []int
	reads   []int
}

func commitsByGroup(h *History, p *partitionIndex) []*groupCommits {
	byGroup := make(map[string]*groupCommits)
	var groups []*groupCommits
	for _, i := range p.ops {
		op := &h.Ops[i]
		if (op.Kind != KindCommit && op.Kind != KindFetchCommitted) || op.Outcome == OutcomeFail {
			continue
		}
		g, ok := byGroup[op.Group.Group]
		if !ok {
			g = &groupCommits{group: op.Group.Group}
			byGroup[op.Group.Group] = g
			groups = append(groups, g)
		}
		switch {
		case op.Kind == KindCommit:
			g.commits = append(g.commits, i)
		case op.Outcome == OutcomeOK:
			g.reads = append(g.reads, i)
		}
	}
	slices.SortFunc(groups, func(a, b *groupCommits) int { return cmp.Compare(a.group, b.group) })
	return groups
}

// judgeCommittedRead decides whether read is explained by g's commits.
func judgeCommittedRead(h *History, tp TopicPartition, g *groupCommits, read int) (Anomaly, bool) {
	r := &h.Ops[read]
	value := r.Group.Offset
	// latest is the acknowledged commit called last among those that
	// returned before the read was called: every acknowledged commit that
	// returned before latest was called was certainly overwritten by it.
	latest := -1
	for _, c := range g.commits {
		op := &h.Ops[c]
		if op.Outcome == OutcomeOK && op.Return < r.Call && (latest < 0 || op.Call > h.Ops[latest].Call) {
			latest = c
		}
	}
	if value < 0 {
		if latest < 0 {
			return Anomaly{}, false
		}
		return lostCommit(h, tp, g.group, read, latest, "nothing committed"), true
	}
	for _, c := range g.commits {
		op := &h.Ops[c]
		if op.Group.Offset != value || op.Call > r.Return {
			continue
		}
		if op.Outcome == OutcomeIndefinite || latest < 0 || op.Return >= h.Ops[latest].Call {
			return Anomaly{}, false
		}
	}
	if latest < 0 {
		return Anomaly{
			Kind: AnomalyLostCommit, Partition: tp, Ops: []int{read}, Offset: value,
			Explanation: fmt.Sprintf("group %s: %s read back committed offset %d, which no commit of the group wrote before the read returned",
				g.group, describeOp(h, read), value),
		}, true
	}
	return lostCommit(h, tp, g.group, read, latest, fmt.Sprintf("committed offset %d", value)), true
}

func lostCommit(h *History, tp TopicPartition, group string, read, latest int, found string) Anomaly {
	l := &h.Ops[latest]
	return Anomaly{
		Kind: AnomalyLostCommit, Partition: tp, Ops: []int{read, latest}, Offset: h.Ops[read].Group.Offset,
		Explanation: fmt.Sprintf("group %s: %s read back %s, but %s had committed %d, acknowledged at time %d before the read was called, and no commit that may still have taken effect wrote what the read returned",
			group, describeOp(h, read), found, describeOp(h, latest), l.Group.Offset, l.Return),
	}
}
