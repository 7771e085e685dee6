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
	return anomalies, checked
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
