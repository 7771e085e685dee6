package scenario

import (
	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/core"
)

// Lookups by time: now and then a consumer asks the leader of one of its
// partitions for the first record at or after a time (ListOffsets with a
// timestamp, KIP-79), as an application that replays "since 10:00" does,
// and seeks there. The history records the lookup with its answer, which
// the checker judges against the timestamps the producers sent and the
// consumers received (wrong-time-lookup), and the seek, which excuses the
// jump in the consumer's reads.

// lookupDue decides whether the consumer's next poll starts with a lookup
// by time: one poll in Workload.TimeLookupOneIn, never in the drain, and
// only once something was sent to aim at.
func (c *consumerActor) lookupDue() bool {
	n := c.r.cfg.Workload.TimeLookupOneIn
	if n <= 0 || c.final || c.r.recorder.sentCount == 0 || len(c.consumer.Assigned()) == 0 {
		return false
	}
	return c.r.rand.IntN(n) == 0
}

// lookUpTime looks up one assigned partition's offset for a time, records
// the lookup, seeks to the answer when the consumer's promise allows, and
// then runs next.
func (c *consumerActor) lookUpTime(next func()) {
	assigned := c.consumer.Assigned()
	tp := assigned[c.r.rand.IntN(len(assigned))]
	target := lookupTarget(c.r.rand, &c.r.recorder)
	op := c.r.recorder.begin(checker.Op{
		Client: c.clientID, Process: c.session, Kind: checker.KindTimeLookup, Call: int64(c.r.sched.Now()),
		Topic: tp.Topic, Partition: tp.Partition, Lookup: &checker.Lookup{Target: target, Offset: -1, Timestamp: -1},
	})
	session := c.session
	c.consumer.OffsetForTime(tp, target, func(res client.OffsetResult) {
		if c.session != session {
			return // the session crashed; the lookup closes as indefinite
		}
		if res.Err != nil {
			// A lookup changes nothing, so an error is a plain failure.
			c.r.recorder.end(op, c.r.sched.Now(), checker.OutcomeFail)
			next()
			return
		}
		done := c.r.recorder.end(op, c.r.sched.Now(), checker.OutcomeOK)
		done.Lookup.Offset, done.Lookup.Timestamp = res.Offset, res.Timestamp
		if res.Offset >= 0 && c.seekAllowed(tp, res.Offset) {
			c.seek(tp, res.Offset)
		}
		next()
	})
}

// lookupTarget draws a time around one of the latest sends: exactly its
// timestamp, a millisecond either side (to land between records of one
// batch), a little further, or well after every send (no record yet).
func lookupTarget(r *core.Rand, rec *recorder) int64 {
	kept := min(rec.sentCount, sentTimestampsMax)
	at := rec.sent[r.IntN(kept)]
	switch r.IntN(5) {
	case 0:
	case 1:
		at--
	case 2:
		at++
	case 3:
		at += r.Int64Range(-100, 100)
	default:
		at += 60_000
	}
	return max(at, 0)
}

// seekAllowed says whether the consumer moves tp to offset. A consumer
// without a group promises nothing and always seeks. A group consumer at
// most once may skip forward. A group consumer at least once may not skip,
// and does not replay either: its commits would then go below a committed
// offset that the commit reader read after the seek, which the
// backward-commit check excuses only when the seek falls between the two
// (docs/checker.md, known gaps); its lookups are judged all the same.
func (c *consumerActor) seekAllowed(tp client.TopicPartition, offset int64) bool {
	if !c.spec.Group {
		return true
	}
	position, ok := c.consumer.Position(tp)
	return ok && c.spec.AtMostOnce && offset >= position
}

// seek moves tp to offset and records the seek, naming the group so that
// the group's next commit may go back.
func (c *consumerActor) seek(tp client.TopicPartition, offset int64) {
	if err := c.consumer.Seek(tp, offset); err != nil {
		return // revoked while the lookup was out
	}
	// The next poll starts at the sought offset, not at a log start the
	// consumer reset to.
	delete(c.outOfRange, tp)
	seek := &checker.Group{Offset: offset}
	if c.spec.Group {
		seek.Group = groupName
	}
	now := int64(c.r.sched.Now())
	c.r.recorder.instant(checker.Op{
		Client: c.clientID, Process: c.session, Kind: checker.KindSeek, Call: now, Return: now,
		Outcome: checker.OutcomeOK, Topic: tp.Topic, Partition: tp.Partition, Group: seek,
	})
}
