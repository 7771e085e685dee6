package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// observation is a value seen at an offset, by an acknowledged produce or
// a record returned by a poll, however many times it was seen.
type observation struct {
	offset int64
	value  string
	// op is the first operation (in history order) that saw it, and read
	// the first poll that did, or -1.
	op   int
	read int
}

// observationKey names an observation for deduplication.
type observationKey struct {
	offset int64
	value  string
}

func compareObservations(a, b observation) int {
	if c := cmp.Compare(a.offset, b.offset); c != 0 {
		return c
	}
	return strings.Compare(a.value, b.value)
}

// partitionIndex gathers what the checks need about one partition.
type partitionIndex struct {
	tp TopicPartition
	// ops are the indexes of every operation on the partition, in history
	// order.
	ops []int
	// producers maps a value to the produce operations that sent it, in
	// history order. It is only looked up, never ranged over.
	producers map[string][]int
	// observations are the distinct (offset, value) pairs observed, sorted
	// by offset and value; byValue holds the same sorted by value and
	// offset. Polls return the same records many times, so the pairs are
	// deduplicated as they are gathered (observed maps a pair to its
	// position; it is only looked up).
	observations []observation
	byValue      []observation
	observed     map[observationKey]int
	drain        drainView
	// end is the high-water mark observed after healing, or -1; start is
	// the log start offset observed then (0 when unknown).
	end   int64
	start int64
	// endError is the error the broker kept answering for the partition
	// after healing (End.Error), empty when the drain could read it.
	endError string
	// keep is the legal log start (see legalStart), and keptBytes the
	// bound on the bytes kept from it that decided it.
	keep      int64
	keptBytes int64
}

// keepFrom is the lowest offset from which the partition's log must still
// hold every record it ever held durably: retention may have deleted what
// lies below it, nothing above it. It is derived from the configuration
// and the history (legalStart), never from the broker's reported start.
func (p *partitionIndex) keepFrom() int64 {
	return p.keep
}

// historyIndex is a history split into partitions, in partition order.
type historyIndex struct {
	h          *History
	partitions []*partitionIndex
}

// acknowledged reports whether op is a produce that returned its offset
// with a promise to keep it there (see effectiveOutcome).
func acknowledged(op *Op) bool {
	return op.Kind == KindProduce && effectiveOutcome(op) == OutcomeOK
}

// buildIndex splits a valid history into partitions.
func buildIndex(h *History) *historyIndex {
	h = excuseUnclean(excuseDamage(h))
	byPartition := make(map[TopicPartition]*partitionIndex)
	var partitions []*partitionIndex
	lookup := func(tp TopicPartition) *partitionIndex {
		p, ok := byPartition[tp]
		if !ok {
			p = &partitionIndex{tp: tp, producers: make(map[string][]int), observed: make(map[observationKey]int), end: -1}
			byPartition[tp] = p
			partitions = append(partitions, p)
		}
		return p
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		p := lookup(op.TopicPartition())
		p.ops = append(p.ops, i)
		p.index(h, i)
	}
	for _, e := range h.Ends {
		p := lookup(TopicPartition{Topic: e.Topic, Partition: e.Partition})
		p.end, p.start, p.endError = e.Offset, e.Start, e.Error
	}
	slices.SortFunc(partitions, func(a, b *partitionIndex) int {
		if a.tp == b.tp {
			return 0
		}
		if a.tp.less(b.tp) {
			return -1
		}
		return 1
	})
	for _, p := range partitions {
		slices.SortFunc(p.observations, compareObservations)
		for j := 1; j < len(p.observations); j++ {
			if compareObservations(p.observations[j-1], p.observations[j]) >= 0 {
				panic(fmt.Sprintf("checker: observations of %s repeat or are unsorted at %d", p.tp, j))
			}
		}
		p.byValue = sortedByValue(p.observations)
		p.observed = nil // positions are stale after sorting
		p.drain.finish()
		p.legalStart(h)
	}
	return &historyIndex{h: h, partitions: partitions}
}

// index records operation i, which touches p.
func (p *partitionIndex) index(h *History, i int) {
	op := &h.Ops[i]
	switch op.Kind {
	case KindProduce:
		p.producers[op.Produce.Value] = append(p.producers[op.Produce.Value], i)
		if acknowledged(op) {
			p.observe(op.Produce.Offset, op.Produce.Value, i, false)
		}
	case KindPoll:
		if op.Outcome != OutcomeOK {
			return
		}
		for _, r := range op.Poll.Records {
			p.observe(r.Offset, r.Value, i, true)
		}
		if op.Poll.Final {
			p.drain.add(i, op.Poll)
		}
	}
}

// observe records that operation i saw value at offset.
func (p *partitionIndex) observe(offset int64, value string, i int, read bool) {
	key := observationKey{offset: offset, value: value}
	at, seen := p.observed[key]
	if !seen {
		at = len(p.observations)
		p.observed[key] = at
		p.observations = append(p.observations, observation{offset: offset, value: value, op: i, read: -1})
	}
	if o := &p.observations[at]; read && o.read < 0 {
		o.read = i
	}
}

// sortedByValue returns a copy of observations sorted by value and offset.
func sortedByValue(observations []observation) []observation {
	obs := slices.Clone(observations)
	slices.SortFunc(obs, func(a, b observation) int {
		if c := strings.Compare(a.value, b.value); c != 0 {
			return c
		}
		return cmp.Compare(a.offset, b.offset)
	})
	return obs
}

// interval is the half-open offset range [from, to).
type interval struct {
	from, to int64
}

// drainView is what the final polls of a partition saw.
type drainView struct {
	// polls are the final ok polls, in history order.
	polls []int
	// records are the drained records, sorted by offset and value, without
	// repeats.
	records []Record
	// covered are the offset ranges the drain read through, sorted and
	// merged: a Kafka fetch returns every record it holds from the fetch
	// offset up to the last record returned, so an offset inside a covered
	// range but missing from records is absent from the log (a control
	// record, or compacted away).
	covered []interval
	// reached is the furthest position the drain got to: the largest fetch
	// offset or last returned offset + 1. It is -1 before any final poll.
	reached int64
}

// add records final poll i.
func (d *drainView) add(i int, poll *Poll) {
	if len(d.polls) == 0 {
		d.reached = -1
	}
	d.polls = append(d.polls, i)
	d.records = append(d.records, poll.Records...)
	to := poll.FetchOffset
	for _, r := range poll.Records {
		to = max(to, r.Offset+1)
	}
	d.reached = max(d.reached, to)
	if to > poll.FetchOffset {
		d.covered = append(d.covered, interval{from: poll.FetchOffset, to: to})
	}
}

// finish sorts and merges what add gathered.
func (d *drainView) finish() {
	if len(d.polls) == 0 {
		d.reached = -1
	}
	slices.SortFunc(d.records, func(a, b Record) int {
		if c := cmp.Compare(a.Offset, b.Offset); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	d.records = slices.Compact(d.records)
	slices.SortFunc(d.covered, func(a, b interval) int { return cmp.Compare(a.from, b.from) })
	merged := d.covered[:0]
	for _, c := range d.covered {
		if n := len(merged); n > 0 && c.from <= merged[n-1].to {
			merged[n-1].to = max(merged[n-1].to, c.to)
			continue
		}
		merged = append(merged, c)
	}
	d.covered = merged
}

// holds reports whether the drain returned value at offset.
func (d *drainView) holds(offset int64, value string) bool {
	_, found := slices.BinarySearchFunc(d.records, Record{Offset: offset, Value: value}, func(a, b Record) int {
		if c := cmp.Compare(a.Offset, b.Offset); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return found
}

// valuesAt returns the values the drain returned at offset.
func (d *drainView) valuesAt(offset int64) []string {
	first, _ := slices.BinarySearchFunc(d.records, offset, func(r Record, o int64) int { return cmp.Compare(r.Offset, o) })
	var values []string
	for i := first; i < len(d.records) && d.records[i].Offset == offset; i++ {
		values = append(values, d.records[i].Value)
	}
	return values
}

// absent reports whether the drain proves that no record exists in the
// offset range gap: the drain read through all of it and returned none.
func (d *drainView) absent(gap interval) bool {
	if gap.from >= gap.to {
		return true
	}
	inside := false
	for _, c := range d.covered {
		if c.from <= gap.from && gap.to <= c.to {
			inside = true
			break
		}
	}
	if !inside {
		return false
	}
	first, _ := slices.BinarySearchFunc(d.records, gap.from, func(r Record, o int64) int { return cmp.Compare(r.Offset, o) })
	return first == len(d.records) || d.records[first].Offset >= gap.to
}
