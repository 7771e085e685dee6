package scenario

import (
	"time"

	"github.com/kafkasim/kafkasim/checker"
)

// recorder collects the history. An operation is recorded when it is
// called and completed when its outcome is known; one still open at the
// end of the run (its client crashed, or it never returned) is closed as
// indefinite.
type recorder struct {
	ops    []checker.Op
	open   []bool
	ends   []checker.End
	groups []checker.GroupPromise
	// commitReader is the run's reader of committed offsets, once started
	// (workload_commits.go); it records into this history.
	commitReader *commitReader
	// retention is what the configuration lets retention delete
	// (check_retention.go), recorded once the clients start.
	retention *checker.Retention
	// sent holds the timestamps of the latest sends, sentCount how many
	// were ever recorded: lookups by time aim around them
	// (workload_lookup.go).
	sent      [sentTimestampsMax]int64
	sentCount int
	// damage is the simulator's record of the batches it damaged at rest
	// (damage.go).
	damage []checker.Damage
	// fetches are the consumers' fetch answers without an error, with
	// their high watermarks (replicas.go).
	fetches []checker.Fetch
}

// sentTimestampsMax is how many of the latest send timestamps the recorder
// keeps for lookups by time to aim at.
const sentTimestampsMax = 64

// sentAt notes the timestamp of a send.
func (rec *recorder) sentAt(timestamp int64) {
	rec.sent[rec.sentCount%sentTimestampsMax] = timestamp
	rec.sentCount++
}

// begin records the call of an operation and returns its index.
func (rec *recorder) begin(op checker.Op) int {
	rec.ops = append(rec.ops, op)
	rec.open = append(rec.open, true)
	return len(rec.ops) - 1
}

// end records an operation's outcome.
func (rec *recorder) end(index int, at time.Duration, outcome checker.Outcome) *checker.Op {
	if !rec.open[index] {
		panic("scenario: operation completed twice")
	}
	rec.open[index] = false
	op := &rec.ops[index]
	op.Return = int64(at)
	op.Outcome = outcome
	return op
}

// instant records an operation that happened at one instant.
func (rec *recorder) instant(op checker.Op) {
	rec.ops = append(rec.ops, op)
	rec.open = append(rec.open, false)
}

// history closes every open operation as indefinite and returns the
// history.
func (rec *recorder) history(now time.Duration) checker.History {
	for i, open := range rec.open {
		if open {
			rec.end(i, now, checker.OutcomeIndefinite)
		}
	}
	return checker.History{Ops: rec.ops, Ends: rec.ends, Groups: rec.groups, Retention: rec.retention, Damage: rec.damage}
}
