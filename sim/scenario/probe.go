package scenario

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/sim"
)

// The progress probe: after healing, the cluster must take writes again.
//
// The checker judges what happened, and a broker that refused every write
// would give it nothing to object to: no write acknowledged, none lost.
// Planting such a bug once by hand (Produce frames handed back to the
// network before the broker read them, so that every batch arrived
// poisoned and failed its CRC) passed every seed of a sweep. So once the
// faults are healed and the cluster is ready, a probe producer
// (idempotent, acks=all) writes one record to every partition, and the run
// fails unless each is acknowledged within probeTimeMax. A partition whose
// stored data the simulator damaged is excused: it may be offline by
// design (a single broker's damaged partition, a damaged only in-sync
// replica), which the checker judges from the drain instead. The probe's
// writes are recorded like any other, so the drain must hold them. Then,
// when the run has an at-least-once consumer group, the group must process
// every probe record too, never going probeTimeMax without processing a
// record: after healing it settles and consumes (issue 10: "groups stable"). When it first ran, the group check
// found two bugs at once (sim seed 4): a coordinator refused commits of
// partitions it did not lead, and a follower slept out its fetch wait
// for every commit.

// probeTimeMax bounds how long after the heal's readiness every partition
// has to acknowledge the probe's write: without faults an election, an ISR
// growing back to min.insync.replicas (followers catch up in well under
// replica.lag.time.max.ms) and the producer's retries fit with room.
const probeTimeMax = 60 * time.Second

// probeGroupTimeMax bounds how long after the probe's writes the consumer
// group may take to process them while it keeps processing others.
const probeGroupTimeMax = 10 * time.Minute

// probe writes one record to every partition with a fresh idempotent
// acks=all producer and waits for every answer.
func (r *run) probe() error {
	p := &producerActor{r: r, index: len(r.producers), clientID: r.nextClientID(),
		spec: ProducerSpec{Idempotent: true, Acks: -1, Interval: time.Millisecond}}
	p.host = r.sched.AddNode(p.name(), sim.NodeOptions{})
	r.producers = append(r.producers, p)
	p.start()
	if p.producer == nil {
		return fmt.Errorf("the probe producer did not start: %w", r.err)
	}
	first := len(r.recorder.ops)
	for partition := range r.cfg.Partitions {
		p.send(partition, nil)
	}
	answered := func() bool { return p.inflight == 0 }
	if err := r.runUntil(probeTimeMax, "after healing, every partition acknowledging the probe's write", answered); err != nil {
		return err
	}
	var refused []string
	for _, op := range r.recorder.ops[first:] {
		if op.Client != p.clientID || op.Kind != checker.KindProduce || op.Outcome == checker.OutcomeOK || r.damagedPartition(op.Partition) {
			continue
		}
		why := string(op.Outcome)
		if op.Produce.Error != "" {
			why += ": " + op.Produce.Error
		}
		refused = append(refused, fmt.Sprintf("%s-%d (%s)", op.Topic, op.Partition, why))
	}
	if len(refused) > 0 {
		return fmt.Errorf("after healing, the probe's acks=all write was not acknowledged by %s", strings.Join(refused, ", "))
	}
	return r.probeGroup(p.clientID, first)
}

// probeGroup waits until the consumer group, if the run has an
// at-least-once one, has processed every probe record that was acknowledged: after healing the
// group must settle (its members rejoin, the partitions are assigned
// again) and consume, never idle for probeTimeMax. It scans the recorded
// operations once, as they come.
func (r *run) probeGroup(probeClient, first int) error {
	// An at-most-once group drops a delivery whose commit failed (a
	// rebalance as the members restart after healing, say): it promises
	// no record is processed twice, not that each is processed.
	if !slices.ContainsFunc(r.consumers, func(c *consumerActor) bool { return c.spec.Group && !c.spec.AtMostOnce }) {
		return nil
	}
	// A group whose offsets partition the simulator damaged may be
	// unavailable by design: the damaged partition goes offline with its
	// groups (docs/storage.md), on a single broker until a restart.
	if slices.ContainsFunc(r.recorder.damage, func(d checker.Damage) bool { return d.Topic == offsetsTopicName }) {
		return nil
	}
	// A damaged partition is excused here as in the probe's writes: its
	// write may be acknowledged before the scrubber finds the damage and
	// takes it offline, on a single broker until a restart (sim seed
	// 1401335).
	type probeRecord struct {
		partition int32
		offset    int64
	}
	waiting := map[string]probeRecord{}
	for _, op := range r.recorder.ops[first:] {
		if op.Client == probeClient && op.Kind == checker.KindProduce && op.Outcome == checker.OutcomeOK && !r.damagedPartition(op.Partition) {
			waiting[op.Produce.Value] = probeRecord{op.Partition, op.Produce.Offset}
		}
	}
	// The group must keep processing: it may have a backlog to work
	// through first (a member reset to the log start after healing, and
	// one that commits after every record pays a commit's round trip per
	// record: sim seed 1700078 had about a thousand records ahead of the
	// probe's, processed at one per 60 ms), so the run fails when the
	// group processes nothing for probeTimeMax, or has not reached the
	// probe's records within probeGroupTimeMax.
	scanned := first
	progressed := r.sched.Now()
	processed := func() bool {
		for ; scanned < len(r.recorder.ops); scanned++ {
			op := &r.recorder.ops[scanned]
			if op.Kind != checker.KindPoll || op.Poll.Group != groupName || op.Poll.Final {
				continue
			}
			progressed = r.sched.Now()
			for _, rec := range op.Poll.Records {
				delete(waiting, rec.Value)
			}
			if op.Poll.OutOfRange && len(op.Poll.Records) > 0 {
				// A member reset past a probe record to the log start:
				// retention deleted it before the group got to it, as
				// at-least-once allows (sim seed 1900567).
				for value, pr := range waiting { // order-independent: only deletes
					if pr.partition == op.Partition && pr.offset < op.Poll.Records[0].Offset {
						delete(waiting, value)
					}
				}
			}
		}
		return len(waiting) == 0 || r.sched.Now()-progressed >= probeTimeMax
	}
	err := r.runUntil(probeGroupTimeMax, "after healing, the consumer group processing the probe's records", processed)
	if err == nil && len(waiting) > 0 {
		err = fmt.Errorf("the group processed nothing for %v", probeTimeMax)
	}
	if err != nil {
		if r.err != nil {
			return err
		}
		var missing []string
		for value, pr := range waiting { // order-independent: sorted below
			missing = append(missing, fmt.Sprintf("%s-%d (%s)", topicName, pr.partition, value))
		}
		slices.Sort(missing)
		return fmt.Errorf("after healing, the consumer group did not process the probe's record of %s: %w", strings.Join(missing, ", "), err)
	}
	return nil
}

// damagedPartition reports whether the simulator damaged stored data of
// the workload topic's partition.
func (r *run) damagedPartition(partition int32) bool {
	return slices.ContainsFunc(r.recorder.damage, func(d checker.Damage) bool {
		return d.Topic == topicName && d.Partition == partition
	})
}

// nextClientID is the client id after every producer's and consumer's.
func (r *run) nextClientID() int { return len(r.producers) + len(r.consumers) }
