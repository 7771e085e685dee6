package checker

import (
	"cmp"
	"fmt"
	"slices"
)

// timedRecord is what the history shows about one offset of a partition
// for judging lookups by time: the one value ever observed there and the
// one timestamp the clients saw it with.
type timedRecord struct {
	offset    int64
	value     string
	timestamp int64
	// op is an operation that shows the record with that timestamp.
	op int
	// produced is the earliest call of a produce of the value: before it,
	// the record cannot have been in the log.
	produced int64
	// acked is the earliest return of a durable acknowledgement of the
	// value at this offset, or -1 when there is none.
	acked int64
}

// timedRecords lists, in offset order, the offsets of p whose record the
// history pins down: exactly one value observed there, exactly one known
// timestamp for it (from the acknowledged produce at that offset and from
// the polls that returned it), and a produce that sent it. An offset seen
// with two values was rewritten (a fault took unpromised records away), so
// which record a lookup saw there is unknown, and it is left out.
func timedRecords(h *History, p *partitionIndex) []timedRecord {
	timestamps := make(map[observationKey][]int64) // only looked up
	witness := make(map[observationKey]int)        // only looked up
	acked := make(map[observationKey]int64)        // only looked up
	note := func(key observationKey, timestamp int64, i int) {
		if timestamp == 0 {
			return
		}
		if !slices.Contains(timestamps[key], timestamp) {
			timestamps[key] = append(timestamps[key], timestamp)
		}
		if _, ok := witness[key]; !ok {
			witness[key] = i
		}
	}
	for _, i := range p.ops {
		op := &h.Ops[i]
		switch {
		case op.Kind == KindProduce && op.Outcome == OutcomeOK && op.Produce.Acks != AcksNone:
			key := observationKey{offset: op.Produce.Offset, value: op.Produce.Value}
			note(key, op.Produce.Timestamp, i)
			if first, ok := acked[key]; acknowledged(op) && (!ok || op.Return < first) {
				acked[key] = op.Return
			}
		case op.Kind == KindPoll && op.Outcome == OutcomeOK:
			for _, r := range op.Poll.Records {
				note(observationKey{offset: r.Offset, value: r.Value}, r.Timestamp, i)
			}
		}
	}
	var out []timedRecord
	for j, o := range p.observations {
		if (j > 0 && p.observations[j-1].offset == o.offset) || (j+1 < len(p.observations) && p.observations[j+1].offset == o.offset) {
			continue // rewritten
		}
		key := observationKey{offset: o.offset, value: o.value}
		producers := p.producers[o.value]
		if len(timestamps[key]) != 1 || len(producers) == 0 {
			continue
		}
		record := timedRecord{offset: o.offset, value: o.value, timestamp: timestamps[key][0], op: witness[key], produced: h.Ops[producers[0]].Call, acked: -1}
		for _, i := range producers {
			record.produced = min(record.produced, h.Ops[i].Call)
		}
		if at, ok := acked[key]; ok {
			record.acked = at
		}
		out = append(out, record)
	}
	return out
}

// frontierPoint is something a client learned about a partition's high
// watermark: at time at, it was above offset.
type frontierPoint struct {
	at     int64
	offset int64
}

// committedFrontier lists, in time order, what clients learned about p's
// high watermark: a poll returns only records below it, and an acks=all
// acknowledgement comes only once it passed the record.
func committedFrontier(h *History, p *partitionIndex) []frontierPoint {
	var points []frontierPoint
	for _, i := range p.ops {
		op := &h.Ops[i]
		switch {
		case op.Kind == KindPoll && op.Outcome == OutcomeOK && len(op.Poll.Records) > 0:
			highest := op.Poll.Records[0].Offset
			for _, r := range op.Poll.Records {
				highest = max(highest, r.Offset)
			}
			points = append(points, frontierPoint{at: op.Return, offset: highest})
		case acknowledged(op) && op.Produce.Acks == AcksAll:
			points = append(points, frontierPoint{at: op.Return, offset: op.Produce.Offset})
		}
	}
	slices.SortFunc(points, func(a, b frontierPoint) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.offset, b.offset))
	})
	return points
}

// committedBefore returns the highest offset the high watermark was shown
// to be above by something a client learned before t, or -1.
func committedBefore(points []frontierPoint, t int64) int64 {
	highest := int64(-1)
	for _, pt := range points {
		if pt.at >= t {
			break
		}
		highest = max(highest, pt.offset)
	}
	return highest
}

// checkTimeLookups judges every ok lookup by time (KIP-79: the first
// record, in offset order from the log start, whose timestamp is at or
// after the target, answered with that record's offset and timestamp, or
// -1 when no record below the high watermark qualifies) against the
// records the history pins down (timedRecords). An answer (o, ts) is wrong
// when ts is before the target; when the record at o is known and has
// another timestamp; or when a record at an offset in [legal log start, o)
// that may have been in the log during the lookup (its produce was called
// before the lookup returned) has a timestamp at or after the target. An
// answer of -1 is wrong when a durable acknowledged record at or above the
// legal log start, acknowledged before the lookup was called and shown to
// be below the high watermark by then, has a timestamp at or after the
// target, except in a cluster, where a deposed leader may answer on a
// stale high watermark (zombieReadsPossible). Each lookup is reported at
// most once.
func checkTimeLookups(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		var lookups []int
		for _, i := range p.ops {
			if op := &ix.h.Ops[i]; op.Kind == KindTimeLookup && op.Outcome == OutcomeOK {
				lookups = append(lookups, i)
			}
		}
		if len(lookups) == 0 {
			continue
		}
		records := timedRecords(ix.h, p)
		frontier := committedFrontier(ix.h, p)
		for _, i := range lookups {
			checked++
			if a, wrong := judgeLookup(ix.h, p, records, frontier, i); wrong {
				anomalies = append(anomalies, a)
			}
		}
	}
	return anomalies, checked
}

// judgeLookup judges lookup i of p and returns its anomaly, if any.
func judgeLookup(h *History, p *partitionIndex, records []timedRecord, frontier []frontierPoint, i int) (Anomaly, bool) {
	op := &h.Ops[i]
	l := op.Lookup
	wrong := func(ops []int, offset int64, format string, args ...any) (Anomaly, bool) {
		prefix := fmt.Sprintf("%s looked up time %d and got ", describeOp(h, i), l.Target)
		if l.Offset < 0 {
			prefix += "no record"
		} else {
			prefix += fmt.Sprintf("offset %d with timestamp %d", l.Offset, l.Timestamp)
		}
		return Anomaly{
			Kind: AnomalyWrongTimeLookup, Partition: p.tp, Ops: append([]int{i}, ops...), Offset: offset,
			Explanation: prefix + ", but " + fmt.Sprintf(format, args...),
		}, true
	}
	if l.Offset < 0 && zombieReadsPossible(h) {
		// In a cluster a deposed leader that has not heard of its
		// successor may answer (Kafka has no leader leases): its high
		// watermark may be stale, so "nothing committed qualifies" proves
		// nothing (sim seed 101572). A record it names must still be right.
		return Anomaly{}, false
	}
	if l.Offset < 0 {
		known := committedBefore(frontier, op.Call)
		for _, r := range records {
			if r.offset >= p.keepFrom() && r.offset <= known && r.acked >= 0 && r.acked < op.Call && r.timestamp >= l.Target {
				return wrong([]int{r.op}, r.offset, "offset %d (%q, timestamp %d, shown by %s) was acknowledged durably and below the high watermark before the lookup began",
					r.offset, r.value, r.timestamp, describeOp(h, r.op))
			}
		}
		return Anomaly{}, false
	}
	if l.Timestamp < l.Target {
		return wrong(nil, l.Offset, "that timestamp is before the target")
	}
	start := p.legalStartAt(h, op.Return)
	for _, r := range records {
		if r.offset > l.Offset {
			break
		}
		if r.produced > op.Return || r.offset < start {
			continue // not in the log during the lookup, or maybe deleted
		}
		if r.offset == l.Offset && r.timestamp != l.Timestamp {
			return wrong([]int{r.op}, r.offset, "the record at offset %d (%q) has timestamp %d, as %s shows",
				r.offset, r.value, r.timestamp, describeOp(h, r.op))
		}
		if r.offset < l.Offset && r.timestamp >= l.Target {
			return wrong([]int{r.op}, r.offset, "the earlier offset %d (%q, timestamp %d, shown by %s) already qualifies",
				r.offset, r.value, r.timestamp, describeOp(h, r.op))
		}
	}
	return Anomaly{}, false
}

// zombieReadsPossible reports whether the history comes from a cluster,
// where a deposed leader may still answer reads on a stale view.
func zombieReadsPossible(h *History) bool {
	return h.Replication != nil && len(h.Replication.Nodes) > 1
}

// TimeLookups returns the wrong-time-lookup anomalies of h.
func TimeLookups(h *History) ([]Anomaly, error) { return runOne(h, checkTimeLookups) }
