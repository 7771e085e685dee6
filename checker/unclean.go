package checker

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Unclean leader elections.
//
// With unclean.leader.election.enable, a controller that finds no live
// replica in a partition's ISR or ELR elects any live replica. Its log may
// lack records the old ISR had committed, so what an unclean election
// allows is scoped here, from the committed metadata log (the controller's
// decisions, which the quorum checker judges) and the configuration, never
// from a broker's account:
//   - A write acknowledged before the partition settled after its last
//     unclean election may be lost, and its offset given to another
//     record: it is judged as acknowledged without a durability promise.
//   - What consumers read, and what lookups answered, before then may be
//     a branch of the log that the election discarded: those reads are not
//     judged, and consumers may reset, so a group's commits from before
//     then order no later commit (sim seed 153: backward commits after an
//     unclean election).
//   - From the settling on, the partition is held to every property: the
//     final drain is one dense log, every replica agrees with it, and
//     whatever was acknowledged or read afterwards stays.
//
// The partition settles (UncleanElection.SettledAt) when no broker can
// still serve it under the metadata from before the election: every
// broker node's last incarnation has applied the election, and the run
// has healed, so that no broker cut off from the controller still leads
// in an old epoch (there are no leader leases). The simulator derives it
// from the quorum history.
//
// An unclean election where the configuration does not allow one is an
// anomaly (AnomalyUncleanElection). The records that an allowed one lost,
// writes acknowledged with the configuration's promise that the final
// drain does not hold, are reported in the check's note, as information.

// UncleanElection is one committed metadata entry that gave a partition a
// leader from outside its ISR and ELR.
type UncleanElection struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is the metadata log offset of the entry; Leader and
	// LeaderEpoch are what it elected.
	Offset      int64 `json:"offset"`
	Leader      int32 `json:"leader"`
	LeaderEpoch int32 `json:"leader_epoch"`
	// Time is when a node first applied the entry, and SettledAt when the
	// partition settled after it (see above), in virtual nanoseconds.
	Time      int64 `json:"time"`
	SettledAt int64 `json:"settled_at"`
}

// AnomalyUncleanElection: the committed metadata elected a leader from
// outside the ISR and ELR although unclean.leader.election.enable was
// off.
const AnomalyUncleanElection AnomalyKind = "unclean-election"

func init() {
	anomalyKinds = append(anomalyKinds, AnomalyUncleanElection)
}

func validateUncleanElections(elections []UncleanElection) error {
	for i, u := range elections {
		if err := validateName("topic", u.Topic); err != nil {
			return fmt.Errorf("unclean election #%d: %w", i, err)
		}
		if u.Partition < 0 || u.Offset < 0 || u.Leader < 0 || u.LeaderEpoch < 0 || u.Time < 0 || u.SettledAt < u.Time {
			return fmt.Errorf("unclean election #%d: %s-%d at metadata offset %d, leader %d in epoch %d, time %d, settled at %d: want a partition, offsets, a leader and time <= settled",
				i, u.Topic, u.Partition, u.Offset, u.Leader, u.LeaderEpoch, u.Time, u.SettledAt)
		}
	}
	return nil
}

// uncleanSettled returns, per partition with an allowed unclean election
// (its topic is among Replication.UncleanTopics), when it settled after
// its last one; nil when nothing is excused.
func uncleanSettled(h *History) map[TopicPartition]int64 {
	r := h.Replication
	if r == nil || len(r.UncleanElections) == 0 {
		return nil
	}
	var settled map[TopicPartition]int64
	for _, u := range r.UncleanElections {
		if !slices.Contains(r.UncleanTopics, u.Topic) {
			continue
		}
		if settled == nil {
			settled = make(map[TopicPartition]int64)
		}
		tp := TopicPartition{Topic: u.Topic, Partition: u.Partition}
		settled[tp] = max(settled[tp], u.SettledAt)
	}
	return settled
}

// hadUncleanElection reports whether tp had an allowed unclean election.
func hadUncleanElection(h *History, tp TopicPartition) bool {
	_, ok := uncleanSettled(h)[tp]
	return ok
}

// excuseUnclean returns h with what an allowed unclean election may undo
// excused: in each partition that had one, the writes acknowledged before
// it settled lose their durability promise, the polls and time lookups
// called before then count as failed (they saw a branch that may be
// gone), the group's commits called before then count as indefinite, and
// read-backs after it of offsets committed only before it count as failed.
// h is returned itself when nothing is excused; it is never modified.
func excuseUnclean(h *History) *History {
	settled := uncleanSettled(h)
	if settled == nil {
		return h
	}
	excused := *h
	excused.Ops = slices.Clone(h.Ops)
	committedAfter := commitsAfter(h, settled)
	for i := range excused.Ops {
		op := &excused.Ops[i]
		at, ok := settled[op.TopicPartition()]
		if ok && op.Call >= at && op.Kind == KindFetchCommitted && op.Outcome == OutcomeOK && op.Group.Offset >= 0 &&
			!committedAfter[groupOffset{op.Group.Group, op.TopicPartition(), op.Group.Offset}] {
			// A read back after the settling of an offset committed
			// only before it names the old branch (sim seed 153: a
			// member reset past the new log end then committed lower).
			op.Outcome = OutcomeFail
			continue
		}
		if !ok || op.Call >= at {
			continue
		}
		switch {
		case op.Kind == KindProduce && op.Produce.Durable:
			produce := *op.Produce
			produce.Durable = false
			op.Produce = &produce
		case op.Kind == KindPoll && !op.Poll.Final && op.Outcome == OutcomeOK:
			poll := *op.Poll
			poll.Records = nil
			op.Poll, op.Outcome = &poll, OutcomeFail
		case op.Kind == KindTimeLookup && op.Outcome == OutcomeOK:
			op.Outcome = OutcomeFail
		case op.Kind == KindCommit && op.Outcome == OutcomeOK:
			// The commit is stored, but the offsets it names may be
			// gone: a member reset past the new log end commits lower
			// offsets afterwards. As indefinite it still explains what
			// is read back, and orders no later commit; a read back from
			// before then orders none either.
			op.Outcome = OutcomeIndefinite
		case op.Kind == KindFetchCommitted && op.Outcome == OutcomeOK:
			op.Outcome = OutcomeFail
		}
	}
	return &excused
}

// groupOffset is one offset a group committed for a partition.
type groupOffset struct {
	group  string
	tp     TopicPartition
	offset int64
}

// commitsAfter lists the offsets each group's commits called after their
// partition settled committed.
func commitsAfter(h *History, settled map[TopicPartition]int64) map[groupOffset]bool {
	after := make(map[groupOffset]bool)
	for i := range h.Ops {
		op := &h.Ops[i]
		if at, ok := settled[op.TopicPartition()]; ok && op.Kind == KindCommit && op.Call >= at && op.Outcome != OutcomeFail {
			after[groupOffset{op.Group.Group, op.TopicPartition(), op.Group.Offset}] = true
		}
	}
	return after
}

// checkUncleanElections reports unclean elections the configuration did
// not allow, and notes, per partition, what the allowed ones lost: writes
// acknowledged with a durability promise before the partition settled
// that the final drain does not hold at their offset. original is the
// history before excuseUnclean.
func checkUncleanElections(ix *historyIndex, original *History) ([]Anomaly, CheckStat) {
	stat := CheckStat{Name: "unclean-election"}
	r := ix.h.Replication
	if r == nil || len(r.UncleanElections) == 0 {
		return nil, stat
	}
	stat.Checked = len(r.UncleanElections)
	var anomalies []Anomaly
	for _, u := range r.UncleanElections {
		if !slices.Contains(r.UncleanTopics, u.Topic) {
			anomalies = append(anomalies, Anomaly{
				Kind: AnomalyUncleanElection, Partition: TopicPartition{Topic: u.Topic, Partition: u.Partition}, Offset: -1,
				Explanation: fmt.Sprintf("the metadata entry committed at offset %d elected broker %d leader in epoch %d from outside the ISR and ELR, but unclean.leader.election.enable is off",
					u.Offset, u.Leader, u.LeaderEpoch),
			})
		}
	}
	stat.Anomalies = len(anomalies)
	settled := uncleanSettled(ix.h)
	var notes []string
	for _, p := range ix.partitions {
		at, ok := settled[p.tp]
		if !ok {
			continue
		}
		var lost []int64
		for _, i := range p.ops {
			op := &original.Ops[i]
			if op.Kind != KindProduce || op.Outcome != OutcomeOK || !op.Produce.Durable || op.Call >= at || op.Produce.Acks == AcksNone || damaged(original, op) {
				continue
			}
			if len(p.drain.polls) > 0 && op.Produce.Offset >= p.keepFrom() && !p.drain.holds(op.Produce.Offset, op.Produce.Value) {
				lost = append(lost, op.Produce.Offset)
			}
		}
		notes = append(notes, fmt.Sprintf("%s settled at %v after %d unclean election(s); %s",
			p.tp, time.Duration(at).Round(time.Millisecond), uncleanCount(r, p.tp), describeLost(lost)))
	}
	stat.Note = strings.Join(notes, "; ")
	return anomalies, stat
}

// uncleanCount counts the unclean elections of tp.
func uncleanCount(r *Replication, tp TopicPartition) int {
	n := 0
	for _, u := range r.UncleanElections {
		if u.Topic == tp.Topic && u.Partition == tp.Partition {
			n++
		}
	}
	return n
}

// describeLost says which acknowledged offsets were lost.
func describeLost(lost []int64) string {
	if len(lost) == 0 {
		return "no write acknowledged with a durability promise was lost"
	}
	slices.Sort(lost)
	const shown = 8
	list := make([]string, 0, shown)
	for _, o := range lost[:min(len(lost), shown)] {
		list = append(list, fmt.Sprint(o))
	}
	more := ""
	if len(lost) > shown {
		more = fmt.Sprintf(" and %d more", len(lost)-shown)
	}
	return fmt.Sprintf("%d writes acknowledged with a durability promise were lost (offsets %s%s)", len(lost), strings.Join(list, ", "), more)
}
