package checker

import (
	"cmp"
	"fmt"
	"slices"
)

// byCall sorts operation indexes by call time, then by index, which is the
// order in which one client issued them.
func byCall(h *History, ops []int) {
	slices.SortStableFunc(ops, func(a, b int) int {
		if c := cmp.Compare(h.Ops[a].Call, h.Ops[b].Call); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
}

// consumerOps groups the ok polls and the seeks of a partition by client,
// clients ascending, each client's operations in call order.
func consumerOps(h *History, p *partitionIndex) [][]int {
	byClient := make(map[int][]int)
	var clients []int
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind == KindSeek || (op.Kind == KindPoll && op.Outcome == OutcomeOK) {
			if _, seen := byClient[op.Client]; !seen {
				clients = append(clients, op.Client)
			}
			byClient[op.Client] = append(byClient[op.Client], i)
		}
	}
	slices.Sort(clients)
	groups := make([][]int, len(clients))
	for j, c := range clients {
		groups[j] = byClient[c]
		byCall(h, groups[j])
	}
	return groups
}

// consumerCursor follows one consumer through one partition.
type consumerCursor struct {
	started bool
	process int
	// reset is set by a seek until the next poll.
	reset bool
	// expected is the offset the consumer should read next.
	expected int64
	// highest is the highest offset read since the last reset, or -1, and
	// highestOp the poll that read it.
	highest   int64
	highestOp int
}

// checkPollOrder follows each consumer through each partition and reports
// polls that go backwards (nonmonotonic-poll) or skip offsets the final drain
// does not prove absent (poll-skip). A seek, a poll flagged Reset, a new
// session (Process) or the consumer's first poll starts over from that
// poll's fetch offset. Each poll is reported at most once per kind.
func checkPollOrder(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		for _, ops := range consumerOps(ix.h, p) {
			cursor := consumerCursor{highest: -1}
			for _, i := range ops {
				op := &ix.h.Ops[i]
				if op.Kind == KindSeek {
					cursor.reset = true
					continue
				}
				checked++
				anomalies = append(anomalies, cursor.poll(ix.h, p, i)...)
				cursor.started, cursor.process, cursor.reset = true, op.Process, false
			}
		}
	}
	return anomalies, checked
}

// poll advances the cursor over poll i and returns its anomalies.
func (c *consumerCursor) poll(h *History, p *partitionIndex, i int) []Anomaly {
	op := &h.Ops[i]
	if !c.started || c.reset || op.Poll.Reset || op.Process != c.process {
		c.expected, c.highest, c.highestOp = op.Poll.FetchOffset, -1, -1
		if op.Poll.OutOfRange && len(op.Poll.Records) > 0 {
			// The consumer jumped from the refused FetchOffset to the log
			// start; checkOutOfRangeResets judges that jump, against what
			// retention could have deleted by then, since in a cluster the
			// final drain may hold the skipped records again (a replica
			// that missed the retention led later).
			c.expected = op.Poll.Records[0].Offset
		}
	}
	var anomalies []Anomaly
	backward, skipped := false, false
	for _, r := range op.Poll.Records {
		if r.Offset < op.Poll.FetchOffset && !op.Poll.Reset {
			// A consumer never returns records below its position: the
			// broker answers with the whole batch holding the fetch offset,
			// and the consumer drops the records before it.
			if !backward {
				anomalies = append(anomalies, belowFetchOffset(h, p.tp, i, r, op.Poll.FetchOffset))
			}
			backward = true
			continue
		}
		if r.Offset <= c.highest {
			if !backward {
				anomalies = append(anomalies, nonmonotonicPoll(h, p.tp, i, c.highestOp, r, c.highest))
			}
			backward = true
			continue
		}
		// Offsets below the legal log start may have been deleted by
		// retention before this poll; a consumer skips them (offset reset).
		gap := interval{from: max(c.expected, p.keepFrom()), to: r.Offset}
		if !skipped && gap.from < gap.to && !p.drain.absent(gap) {
			anomalies = append(anomalies, pollSkip(h, p.tp, i, gap, r))
			skipped = true
		}
		c.expected, c.highest, c.highestOp = r.Offset+1, r.Offset, i
	}
	if c.highest >= c.expected {
		panic(fmt.Sprintf("checker: consumer position %d at or below its highest read offset %d", c.expected, c.highest))
	}
	return anomalies
}

func belowFetchOffset(h *History, tp TopicPartition, i int, r Record, fetchOffset int64) Anomaly {
	return Anomaly{
		Kind: AnomalyNonmonotonicPoll, Partition: tp, Ops: []int{i}, Offset: r.Offset, Value: r.Value,
		Explanation: fmt.Sprintf("%s returned offset %d (%q), below the offset %d it fetched from",
			describeOp(h, i), r.Offset, r.Value, fetchOffset),
	}
}

func nonmonotonicPoll(h *History, tp TopicPartition, i, earlier int, r Record, highest int64) Anomaly {
	where := "earlier in the same poll"
	if earlier != i {
		where = "by " + describeOp(h, earlier)
	}
	return Anomaly{
		Kind: AnomalyNonmonotonicPoll, Partition: tp, Ops: []int{i, earlier}, Offset: r.Offset, Value: r.Value,
		Explanation: fmt.Sprintf("%s read offset %d (%q) after offset %d had already been read %s, with no seek or reset in between",
			describeOp(h, i), r.Offset, r.Value, highest, where),
	}
}

func pollSkip(h *History, tp TopicPartition, i int, gap interval, r Record) Anomaly {
	return Anomaly{
		Kind: AnomalyPollSkip, Partition: tp, Ops: []int{i}, Offset: gap.from, Value: r.Value,
		Explanation: fmt.Sprintf("%s read offset %d (%q) while its position was %d, skipping offsets %d..%d, which the final drain does not show to be absent",
			describeOp(h, i), r.Offset, r.Value, gap.from, gap.from, gap.to-1),
	}
}

// committedOps gathers, per group, the ok commits and ok committed-offset
// reads (positions) and the seek call times, groups in name order.
type committedOps struct {
	group     string
	positions []int
	seekCalls []int64
	// commits are the commits that may have taken effect (ok or
	// indefinite), in history order.
	commits []int
}

func groupOps(h *History, p *partitionIndex) []*committedOps {
	byGroup := make(map[string]*committedOps)
	var groups []*committedOps
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Group == nil || op.Group.Group == "" {
			continue
		}
		g, ok := byGroup[op.Group.Group]
		if !ok {
			g = &committedOps{group: op.Group.Group}
			byGroup[op.Group.Group] = g
			groups = append(groups, g)
		}
		if op.Kind == KindCommit && op.Outcome != OutcomeFail {
			g.commits = append(g.commits, i)
		}
		switch {
		case op.Kind == KindSeek:
			g.seekCalls = append(g.seekCalls, op.Call)
		case op.Outcome == OutcomeOK:
			g.positions = append(g.positions, i)
		}
	}
	slices.SortFunc(groups, func(a, b *committedOps) int { return cmp.Compare(a.group, b.group) })
	for _, g := range groups {
		slices.Sort(g.seekCalls)
	}
	return groups
}

// checkCommits reports committed offsets that move backwards. Commits and
// committed-offset reads that succeeded are positions of the group's
// committed offset. When position x returned before position y was called,
// y must not be below x, unless a seek by the group was called between x's
// call and y's return.
func checkCommits(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		for _, g := range groupOps(ix.h, p) {
			checked += len(g.positions)
			anomalies = append(anomalies, backwardCommits(ix.h, p.tp, g)...)
		}
	}
	return anomalies, checked
}

// backwardCommits checks one group. A seek at time s excuses y with respect
// to x exactly when x.Call <= s <= y.Return, so for each y only positions x
// called after the last seek at or before y.Return count. Positions y are
// therefore split into epochs by that last seek, and each epoch is swept in
// call order against the positions x sorted by return.
func backwardCommits(h *History, tp TopicPartition, g *committedOps) []Anomaly {
	epochs := make(map[int][]int) // last seek index (-1 for none) -> positions y
	var epochKeys []int
	for _, y := range g.positions {
		e := sortSearchLast(g.seekCalls, h.Ops[y].Return)
		if _, seen := epochs[e]; !seen {
			epochKeys = append(epochKeys, e)
		}
		epochs[e] = append(epochs[e], y)
	}
	slices.Sort(epochKeys)
	var anomalies []Anomaly
	for _, e := range epochKeys {
		callMin := int64(-1) // x must be called after this seek
		if e >= 0 {
			callMin = g.seekCalls[e]
		}
		anomalies = append(anomalies, sweepEpoch(h, tp, g, callMin, epochs[e])...)
	}
	return anomalies
}

// sortSearchLast returns the index of the last element of sorted that is <=
// limit, or -1.
func sortSearchLast(sorted []int64, limit int64) int {
	n, _ := slices.BinarySearch(sorted, limit+1)
	return n - 1
}

// sweepEpoch compares each position y of ys with the highest position x
// called after callMin that returned before y was called.
func sweepEpoch(h *History, tp TopicPartition, g *committedOps, callMin int64, ys []int) []Anomaly {
	var xs []int
	for _, x := range g.positions {
		if h.Ops[x].Call > callMin {
			xs = append(xs, x)
		}
	}
	slices.SortStableFunc(xs, func(a, b int) int { return cmp.Compare(h.Ops[a].Return, h.Ops[b].Return) })
	byCall(h, ys)
	var anomalies []Anomaly
	highest, next := -1, 0
	for _, y := range ys {
		for next < len(xs) && h.Ops[xs[next]].Return < h.Ops[y].Call {
			if x := xs[next]; highest < 0 || h.Ops[x].Group.Offset > h.Ops[highest].Group.Offset {
				highest = x
			}
			next++
		}
		if highest >= 0 && h.Ops[y].Group.Offset < h.Ops[highest].Group.Offset && !landedAfter(h, g, highest, y) {
			anomalies = append(anomalies, backwardCommit(h, tp, g.group, highest, y))
		}
	}
	return anomalies
}

// landedAfter reports whether the lower offset that read y returned may
// have been written after x by a commit concurrent with x: one of that
// offset, called before y returned, that had not returned when x was
// called (see mayLandAfter), so the coordinator may have applied it after
// x. Commits of two
// clients (or of one client's member and a zombie of it) race that way.
func landedAfter(h *History, g *committedOps, x, y int) bool {
	if h.Ops[y].Kind != KindFetchCommitted {
		return false // a commit lower than an earlier one is the client's doing
	}
	for _, c := range g.commits {
		op := &h.Ops[c]
		if c != y && op.Group.Offset == h.Ops[y].Group.Offset && op.Call <= h.Ops[y].Return && mayLandAfter(h, c, x) {
			return true
		}
	}
	return false
}

// mayLandAfter reports whether commit c may have taken effect after
// position x. One client session's commits take effect in the order it
// made them (one connection, in order), so then only a later one may;
// otherwise any that had not returned when x was called may, and an
// indefinite one any time after its call.
func mayLandAfter(h *History, c, x int) bool {
	cop, xop := &h.Ops[c], &h.Ops[x]
	if xop.Kind == KindCommit && xop.Client == cop.Client && xop.Process == cop.Process {
		return cop.Call > xop.Call
	}
	return cop.Outcome == OutcomeIndefinite || cop.Return >= xop.Call
}

func backwardCommit(h *History, tp TopicPartition, group string, x, y int) Anomaly {
	verb := func(i int) string {
		if h.Ops[i].Kind == KindCommit {
			return "committed"
		}
		return "read back committed offset"
	}
	return Anomaly{
		Kind: AnomalyBackwardCommit, Partition: tp, Ops: []int{y, x}, Offset: h.Ops[y].Group.Offset,
		Explanation: fmt.Sprintf("group %s: %s %s %d after %s had %s %d and returned before it was called, with no seek in between",
			group, describeOp(h, y), verb(y), h.Ops[y].Group.Offset, describeOp(h, x), verb(x), h.Ops[x].Group.Offset),
	}
}
