package checker

import (
	"errors"
	"fmt"
	"sort"
)

// Retention is what the run's configuration lets retention delete, as the
// simulator tells the checker: never what the broker did. Without it (a nil
// History.Retention) the checker assumes no retention: nothing may ever be
// deleted.
type Retention struct {
	// Bytes is log.retention.bytes, or -1 when size retention is off.
	// Kafka deletes a partition's oldest segment only while the log stays
	// at least this large without it, and never the active segment.
	Bytes int64 `json:"bytes"`
	// TimeCanAct is set when time retention (log.retention.ms) may expire
	// a segment during the run. Then every segment but the active one may
	// go, and the checker cannot bound the log start at all.
	TimeCanAct bool `json:"time_can_act,omitempty"`
	// TailLoss is set when a fault of the run can take away records that
	// were in the log (unsynced data lost to a power loss or a failed
	// fsync): the log may then have been larger when retention last acted
	// than the final drain shows.
	TailLoss bool `json:"tail_loss,omitempty"`
	// RecordBytesMax bounds the log bytes of one produced record alone in
	// its batch (batch header, record framing, key, value, headers and the
	// codec's overhead). It stands in for a record whose batch the history
	// does not record.
	RecordBytesMax int64 `json:"record_bytes_max"`
}

// validate reports settings that bound nothing.
func (r *Retention) validate() error {
	if r == nil {
		return nil
	}
	if r.Bytes < -1 {
		return fmt.Errorf("retention bytes %d: want -1 or more", r.Bytes)
	}
	if r.RecordBytesMax <= 0 {
		return errors.New("retention needs a positive record_bytes_max")
	}
	return nil
}

// legalStart computes p.keep, the legal log start: an upper bound on
// where retention may have moved the log start, so that the log must still
// hold every record at or above it. It needs the final drain, which reads
// the log after healing from its start D (its first record) to its end E.
//
// The rule (docs/checker.md, "The legal log start"): when retention deletes
// a segment, the log keeps at least Bytes bytes from its new start to its
// end then, and afterwards it only grows, unless a fault takes its tail
// away (TailLoss). A Kafka broker stores each batch as its producer sent
// it, so est(k), the bytes of the drained records at or above k (each
// record's share of its recorded batch, or RecordBytesMax), bounds the
// final log's bytes from k on. Two cases:
//
//   - A deletion after healing (while the drain reads, say) meets no tail
//     loss afterwards, so its new start k has est(k) >= Bytes. Retention
//     may thus have deleted up to the largest such k, possibly above D:
//     records the drain missed there are excused.
//   - A deletion before healing may have been followed by a tail loss, so
//     its start k only has est(k) + lost >= Bytes, where lost bounds the
//     bytes a fault may have taken: with TailLoss, the records that may
//     have been written without a promise to survive and that the drain
//     does not hold. Below D, est(k) adds each offset's bytes: the share of
//     the record acknowledged there, else RecordBytesMax.
//
// The legal start is the larger of the two bounds, so the second whenever
// lost > 0, whether or not the drain alone makes Bytes: a deletion may have
// been made before a tail loss, when the log was longer than the drain
// shows (TestTailLossCountsWhenTheDrainMakesTheBytes).
// If even est(D) + lost < Bytes, the log starts above its legal start.
func (p *partitionIndex) legalStart(h *History) {
	p.keep = 0
	d := &p.drain
	r := h.Retention
	switch {
	case p.unavailableFrom(h) >= 0 && r != nil && (r.Bytes >= 0 || r.TimeCanAct):
		// The broker reported the damaged partition unreadable, so the
		// log's extent is unknown, and retention may have deleted
		// anything any client saw in it.
		if n := len(p.observations); n > 0 {
			p.keep = p.observations[n-1].offset + 1
		}
		return
	case len(d.polls) == 0 || p.end < 0 || d.reached < p.end:
		// Without a complete drain the log's extent is unknown: nothing
		// proves a deletion illegal, so everything below the drain may
		// have been deleted.
		p.keep = max(d.start(), 0)
		return
	case hadUncleanElection(h, p.tp):
		// An allowed unclean election may have taken committed records
		// that retention counted when it deleted below them, as a tail
		// loss would (sim seed 1800732: retention started the log at 14,
		// then the new leader lost 14..56): everything below the drain
		// may have been deleted legally.
		p.keep = max(d.start(), 0)
		return
	case r == nil || (r.Bytes < 0 && !r.TimeCanAct):
		return // nothing may be deleted
	case r.TimeCanAct || r.Bytes < 0:
		// Time retention may delete every segment but the active one,
		// whose extent is unknown.
		p.keep = p.end
		return
	}
	start := d.start()
	// Records the broker acknowledged at or beyond where the drain reached
	// were in the log, and counted for retention, although the drain
	// never read them (sim seed 403980: an acks=1 write answered at
	// offset 508, the end observed after healing, became durable after the
	// drain read that end, and retention counted it).
	est := p.drainedBytes(h) + p.beyondDrainBytes(h) + p.tailLossBytes(h)
	if est >= r.Bytes {
		p.keep, p.keptBytes = p.deletableFrom(h, est), est
		return
	}
	p.keep, p.keptBytes = start, est
	shares := p.acknowledgedShares(h)
	for p.keep > 0 && est < r.Bytes {
		p.keep--
		if share, ok := shares[p.keep]; ok {
			est += share
		} else {
			est += r.RecordBytesMax
		}
	}
}

// deletableFrom returns the largest offset k with est(k) >=
// Retention.Bytes, given est, the bytes of the whole drain (with the bytes
// acknowledged beyond it and those a tail loss may have taken): the offset of
// the first drained record that retention could not delete (est(k) is the
// same for every k between two drained records, so k reaches up to it).
// When the writes acknowledged beyond the drain, with the tail a fault may
// have taken, make Retention.Bytes on their own, every drained record may
// have gone: k reaches where the
// drain reached, which lies past the end observed after healing when that
// end was a high watermark still catching up (sim seed 20256: a new
// leader's, held at its epoch's start until its ISR grew).
func (p *partitionIndex) deletableFrom(h *History, est int64) int64 {
	records := p.drain.records
	for j, r := range records {
		if j > 0 && records[j-1].Offset == r.Offset {
			continue
		}
		share := p.valueShare(h, r.Value)
		if est-share < h.Retention.Bytes {
			return r.Offset
		}
		est -= share
	}
	return max(p.end, p.drain.reached)
}

// start returns where the drained log starts: the offset of the drain's
// first record, or where the drain reached when it returned none; -1
// before any final poll. A fetch offset below the first record proves
// nothing: a consumer whose position fell below the log start resets it
// and reads on from there, and the poll may still record the old
// position.
func (d *drainView) start() int64 {
	switch {
	case len(d.polls) == 0:
		return -1
	case len(d.records) > 0:
		return d.records[0].Offset
	}
	return d.reached
}

// share bounds from above the log bytes of the record produced by op: its
// share of its recorded batch, rounded up, or RecordBytesMax.
func share(h *History, op *Op) int64 {
	p := op.Produce
	if p.BatchRecords > 0 {
		return (int64(p.BatchBytes) + int64(p.BatchRecords) - 1) / int64(p.BatchRecords)
	}
	return h.Retention.RecordBytesMax
}

// beyondDrainBytes bounds the bytes of the records acknowledged at offsets
// at or beyond where the drain reached (the end offset observed after
// healing, or further): the log held them, but the drain does not. The
// records the drain read past that end are counted among the drained
// ones, and only there.
func (p *partitionIndex) beyondDrainBytes(h *History) int64 {
	from := max(p.end, p.drain.reached)
	total := int64(0)
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind == KindProduce && op.Outcome == OutcomeOK && op.Produce.Acks != AcksNone && op.Produce.Offset >= from {
			total += share(h, op)
		}
	}
	return total
}

// valueShare bounds the log bytes of a record holding value: the largest
// share among the value's produces.
func (p *partitionIndex) valueShare(h *History, value string) int64 {
	most := int64(0)
	for _, i := range p.producers[value] {
		most = max(most, share(h, &h.Ops[i]))
	}
	if most == 0 {
		most = h.Retention.RecordBytesMax
	}
	return most
}

// drainedBytes bounds the bytes of the drained log.
func (p *partitionIndex) drainedBytes(h *History) int64 {
	total := int64(0)
	for j, r := range p.drain.records {
		if j > 0 && p.drain.records[j-1].Offset == r.Offset {
			continue // an offset read with two values is reported elsewhere
		}
		total += p.valueShare(h, r.Value)
	}
	return total
}

// tailLossBytes bounds the bytes of records that a fault may have taken
// from the log's tail: with TailLoss, every produce that may have been
// written without a promise to survive (neither failed nor durably
// acknowledged) and whose value the drain does not hold.
func (p *partitionIndex) tailLossBytes(h *History) int64 {
	if !h.Retention.TailLoss {
		return 0
	}
	return p.undrainedBytes(h)
}

// undrainedBytes bounds the bytes of every produce that may have been
// written without a promise to survive and whose value the drain does not
// hold.
func (p *partitionIndex) undrainedBytes(h *History) int64 {
	drained := make(map[string]bool, len(p.drain.records))
	for _, r := range p.drain.records {
		drained[r.Value] = true
	}
	total := int64(0)
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind == KindProduce && effectiveOutcome(op) == OutcomeIndefinite && !drained[op.Produce.Value] {
			total += share(h, op)
		}
	}
	return total
}

// acknowledgedShares maps the offsets of acknowledged records to their
// shares. It is only looked up.
func (p *partitionIndex) acknowledgedShares(h *History) map[int64]int64 {
	shares := make(map[int64]int64)
	for _, i := range p.ops {
		op := &h.Ops[i]
		if acknowledged(op) {
			shares[op.Produce.Offset] = max(shares[op.Produce.Offset], share(h, op))
		}
	}
	return shares
}

// checkLogStart reports a drained log that starts above the legal log
// start, and a consumer's reset past offsets that the log had to hold
// when the broker refused them (checkOutOfRangeResets): retention deleted
// records that the configuration made it keep.
func checkLogStart(ix *historyIndex) ([]Anomaly, int) {
	anomalies, checked := checkDrainStart(ix)
	resets, resetsChecked := checkOutOfRangeResets(ix)
	return append(anomalies, resets...), checked + resetsChecked
}

// checkDrainStart reports a drained log that starts above the legal log
// start.
func checkDrainStart(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		start := p.drain.start()
		if len(p.drain.polls) == 0 || p.end < 0 || p.drain.reached < p.end {
			continue
		}
		checked++
		if p.keep >= start {
			continue
		}
		anomalies = append(anomalies, prematureDeletion(ix.h, p, start))
	}
	return anomalies, checked
}

func prematureDeletion(h *History, p *partitionIndex, start int64) Anomaly {
	why := "no retention may delete anything"
	if r := h.Retention; r != nil && r.Bytes >= 0 {
		why = fmt.Sprintf("the drained log from offset %d to %d holds at most %d bytes, fewer than log.retention.bytes %d, so retention had to keep every offset from %d on",
			start, p.end, p.keptBytes, r.Bytes, p.keep)
	}
	reported := ""
	if p.start > 0 {
		reported = fmt.Sprintf(" (the broker reported log start %d)", p.start)
	}
	return Anomaly{
		Kind: AnomalyPrematureDeletion, Partition: p.tp, Ops: []int{p.drain.polls[0]}, Offset: p.keep,
		Explanation: fmt.Sprintf("the final drain (first op #%d) starts at offset %d%s, but %s: offsets %d..%d were deleted early",
			p.drain.polls[0], start, reported, why, p.keep, start-1),
	}
}

// checkOutOfRangeResets judges each reset after OFFSET_OUT_OF_RANGE that
// jumped forward, from the refused position P to the first record X > P,
// which by the contract of Poll.OutOfRange is where the log started when
// the consumer reset: retention had moved the log start to X before the
// poll returned (at time t). When it did, the log kept at least
// Retention.Bytes of committed bytes from X on (the rule of legalStart),
// all of them written before t. So est_t(X), the bytes of the records at
// or above X that were sent before t (a drained record counts only if a
// send of its value began before t; an offset below the drain's start
// counts as in legalStart, whenever it was written), plus the slack of a
// tail loss, must reach Retention.Bytes. The final drain alone cannot
// judge such a jump: later writes fill the log up again, and in a cluster
// a replica that missed the retention may lead later with the skipped
// records (sim seed 1401836). Partitions whose data the simulator damaged
// or that had an unclean election are not judged, nor partitions whose
// drain is incomplete.
func checkOutOfRangeResets(ix *historyIndex) ([]Anomaly, int) {
	r := ix.h.Retention
	if r == nil || r.TimeCanAct {
		return nil, 0
	}
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		d := &p.drain
		if len(d.polls) == 0 || p.end < 0 || d.reached < p.end || damagedPartition(ix.h, p.tp) || hadUncleanElection(ix.h, p.tp) {
			continue
		}
		for _, i := range p.ops {
			op := &ix.h.Ops[i]
			if op.Kind != KindPoll || op.Outcome != OutcomeOK || !op.Poll.OutOfRange || len(op.Poll.Records) == 0 {
				continue
			}
			from, to := op.Poll.FetchOffset, op.Poll.Records[0].Offset
			if to <= from {
				continue // refused above the log end: nothing was skipped
			}
			checked++
			if r.Bytes < 0 {
				anomalies = append(anomalies, prematureReset(ix.h, p, i, from, to, "no retention may delete anything"))
				continue
			}
			if written := p.bytesWrittenBefore(ix.h, to, op.Return); written < r.Bytes {
				anomalies = append(anomalies, prematureReset(ix.h, p, i, from, to,
					fmt.Sprintf("when it returned at most %d bytes had been written at or above offset %d, fewer than log.retention.bytes %d, so retention could not have started the log there", written, to, r.Bytes)))
			}
		}
	}
	return anomalies, checked
}

// bytesWrittenBefore bounds from above the log bytes at or above offset k
// of the records sent before time t (est_t(k) of checkOutOfRangeResets).
func (p *partitionIndex) bytesWrittenBefore(h *History, k, t int64) int64 {
	sentBefore := func(value string) bool {
		for _, i := range p.producers[value] {
			if h.Ops[i].Call < t {
				return true
			}
		}
		return len(p.producers[value]) == 0 // a value no send recorded: counted
	}
	total := p.tailLossBytes(h)
	if hadUncleanElection(h, p.tp) {
		// The election may have taken records that retention counted
		// before it, as a tail loss would.
		total = p.undrainedBytes(h)
	}
	for j, rec := range p.drain.records {
		if rec.Offset < k || (j > 0 && p.drain.records[j-1].Offset == rec.Offset) || !sentBefore(rec.Value) {
			continue
		}
		total += p.valueShare(h, rec.Value)
	}
	if start := p.drain.start(); k < start {
		shares := p.acknowledgedShares(h)
		for offset := k; offset < start; offset++ {
			if share, ok := shares[offset]; ok {
				total += share
			} else {
				total += h.Retention.RecordBytesMax
			}
		}
	}
	beyond := max(p.end, p.drain.reached)
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind == KindProduce && op.Outcome == OutcomeOK && op.Produce.Acks != AcksNone && op.Produce.Offset >= max(beyond, k) && op.Call < t {
			total += share(h, op)
		}
	}
	return total
}

func prematureReset(h *History, p *partitionIndex, i int, from, to int64, why string) Anomaly {
	return Anomaly{
		Kind: AnomalyPrematureDeletion, Partition: p.tp, Ops: []int{i}, Offset: from,
		Explanation: fmt.Sprintf("%s was refused offset %d as out of range and reset to offset %d, but %s: offsets %d..%d were deleted early",
			describeOp(h, i), from, to, why, from, to-1),
	}
}

// legalStartAt bounds from above where the log of p may have started at
// time t: any deletion before t left at least Retention.Bytes of records
// sent before t above its new start, so the start is at most the largest k
// with est_t(k) >= Retention.Bytes (bytesWrittenBefore). The final legal
// start (p.keepFrom) bounds only the final log: in a cluster a replica
// that missed a retention may lead later with a lower start, so the start
// at t may lie above the final one (sim seed 1900443: a lookup answered
// from a leader's log start of 519 while the final drain began at 86). On
// one broker the bound is never above the final one, whose bytes include
// everything sent before t. It returns p.keepFrom() when the drain is
// incomplete or nothing may be deleted, and the end when time retention
// may act.
func (p *partitionIndex) legalStartAt(h *History, t int64) int64 {
	r := h.Retention
	d := &p.drain
	switch {
	case len(d.polls) == 0 || p.end < 0 || d.reached < p.end || r == nil || (r.Bytes < 0 && !r.TimeCanAct):
		return p.keepFrom()
	case r.TimeCanAct || r.Bytes < 0:
		return max(p.end, d.reached)
	}
	hi := max(p.end, d.reached)
	// est_t(k) does not grow with k: find the first k whose est_t is below
	// Bytes; the largest k that makes it is the one before.
	first := sort.Search(int(hi+1), func(k int) bool { return p.bytesWrittenBefore(h, int64(k), t) < r.Bytes })
	return max(int64(first)-1, 0)
}
