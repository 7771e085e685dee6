package checker

import (
	"fmt"
	"slices"
)

// The delivery promises a consumer group can make about processing. The
// history records a group's polls as what its members processed.
const (
	// DeliveryAtMostOnce: a member commits the positions a delivery reaches
	// before it processes the delivery, so no record is processed twice by
	// the group (some may never be processed).
	DeliveryAtMostOnce = "at-most-once"
	// DeliveryAtLeastOnce: a member processes a delivery before committing
	// its positions, so every record below an acknowledged commit was
	// processed by some member (some may be processed twice).
	DeliveryAtLeastOnce = "at-least-once"
)

// GroupPromise is the delivery promise of one consumer group.
type GroupPromise struct {
	Group    string `json:"group"`
	Delivery string `json:"delivery"`
}

// groupDelivery is what one group did on one partition.
type groupDelivery struct {
	// processed maps an offset to the non-final ok polls of the group that
	// returned it, in history order. It is only looked up.
	processed map[int64][]int
	// first is the lowest offset the group processed, or -1.
	first int64
	// committed is the highest acknowledged commit and its operation, or
	// -1.
	committed   int64
	committedOp int
}

// checkDelivery checks each group's promise on each partition:
// reprocessed (at-most-once: one offset processed twice by the group) and
// unprocessed (at-least-once: an offset the final drain shows in the log,
// at or above the final log start, between the first offset the group
// processed and its highest acknowledged commit, that no member processed).
func checkDelivery(x *historyIndex) ([]Anomaly, int) {
	var out []Anomaly
	checked := 0
	for _, promise := range x.h.Groups {
		for _, p := range x.partitions {
			d := collectDelivery(x.h, p, promise.Group)
			if d.first < 0 {
				continue
			}
			checked++
			switch promise.Delivery {
			case DeliveryAtMostOnce:
				out = append(out, reprocessed(x.h, p.tp, promise.Group, d)...)
			case DeliveryAtLeastOnce:
				out = append(out, unprocessed(p, promise.Group, d)...)
			}
		}
	}
	return out, checked
}

func collectDelivery(h *History, p *partitionIndex, group string) groupDelivery {
	d := groupDelivery{processed: make(map[int64][]int), first: -1, committed: -1, committedOp: -1}
	for _, i := range p.ops {
		op := &h.Ops[i]
		switch {
		case op.Kind == KindPoll && op.Outcome == OutcomeOK && !op.Poll.Final && op.Poll.Group == group:
			for _, r := range op.Poll.Records {
				if len(d.processed[r.Offset]) == 0 || d.processed[r.Offset][len(d.processed[r.Offset])-1] != i {
					d.processed[r.Offset] = append(d.processed[r.Offset], i)
				}
				if d.first < 0 || r.Offset < d.first {
					d.first = r.Offset
				}
			}
		case op.Kind == KindCommit && op.Outcome == OutcomeOK && op.Group.Group == group && op.Group.Offset > d.committed:
			d.committed, d.committedOp = op.Group.Offset, i
		}
	}
	return d
}

func reprocessed(h *History, tp TopicPartition, group string, d groupDelivery) []Anomaly {
	var offsets []int64
	for offset, polls := range d.processed { // order-independent: sorted below
		if len(polls) > 1 {
			offsets = append(offsets, offset)
		}
	}
	slices.Sort(offsets)
	out := make([]Anomaly, 0, len(offsets))
	for _, offset := range offsets {
		polls := d.processed[offset]
		out = append(out, Anomaly{
			Kind: AnomalyReprocessed, Partition: tp, Ops: polls[:2], Offset: offset,
			Explanation: fmt.Sprintf("group %q promised at-most-once, but offset %d was processed by %s and again by %s",
				group, offset, describeOp(h, polls[0]), describeOp(h, polls[1])),
		})
	}
	return out
}

func unprocessed(p *partitionIndex, group string, d groupDelivery) []Anomaly {
	var out []Anomaly
	for _, r := range p.drain.records {
		// Below the legal log start, retention may have deleted the record
		// before any member reached it: Kafka never promised it.
		if r.Offset < d.first || r.Offset < p.keepFrom() || r.Offset >= d.committed {
			continue
		}
		if len(d.processed[r.Offset]) == 0 {
			out = append(out, Anomaly{
				Kind: AnomalyUnprocessed, Partition: p.tp, Ops: []int{d.committedOp}, Offset: r.Offset, Value: r.Value,
				Explanation: fmt.Sprintf("group %q promised at-least-once and committed offset %d (op #%d), but no member processed offset %d (%q)",
					group, d.committed, d.committedOp, r.Offset, r.Value),
			})
		}
	}
	return out
}
