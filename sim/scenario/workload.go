package scenario

import (
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// WorkloadSpec holds the workload's shape beyond its producers and
// consumers: what the clients do that exercises rarer broker paths.
type WorkloadSpec struct {
	// OversizeOneIn makes one send in this many of an idempotent producer
	// an oversize record that the broker refuses without appending
	// (MESSAGE_TOO_LARGE), sent back to back with the next record of the
	// same partition (workload_oversize.go). The refused record leaves a
	// hole in the producer's sequence that a correct broker never lets a
	// later batch jump. 0 turns it off.
	OversizeOneIn int
	// CommitReadEvery is the mean time between two rounds of reading the
	// group's committed offsets back (workload_commits.go); 0 turns it off.
	CommitReadEvery time.Duration
	// KeyBytes gives every normal record an incompressible key of this
	// many bytes (workload_oversize.go), 0 for none: logs grow past
	// log.retention.bytes within a run, so that size retention acts.
	KeyBytes int
	// TimeLookupOneIn makes one poll in this many of a consumer (not the
	// drain) start with a lookup by time (ListOffsets with a timestamp,
	// KIP-79) of one of its partitions, aimed around the latest send
	// timestamps, and a seek to the answer where the consumer's delivery
	// promise allows (workload_lookup.go). 0 turns it off.
	TimeLookupOneIn int
	// ProduceRequestTimeout is every producer's request.timeout.ms, which
	// the broker also takes as the longest an acks=all produce may wait
	// for its fsync; 0 means 5 s. Shorter than the fsync's tail, it makes
	// the broker answer REQUEST_TIMED_OUT while an fsync is in flight and
	// the producer retry a batch whose original is not durable yet.
	ProduceRequestTimeout time.Duration
	// Members shape the consumers' own commits and poll sizes: consumer
	// i (not the drain) takes Members[i % len(Members)]
	// (workload_group.go). Empty leaves every consumer committing only
	// explicitly, with the client's default max.poll.records.
	Members []MemberSpec
	// RejoinEvery is the mean time between two times a group consumer
	// closes (committing on Close when its member spec commits on its
	// own) and joins again as a new member, ending its generation
	// (workload_group.go); 0 turns it off.
	RejoinEvery time.Duration
	// ZombieEvery is the mean time between two replays of an earlier
	// commit under a membership that the clients have already seen
	// superseded, which the coordinator must refuse
	// (workload_group_zombie.go); 0 turns it off.
	ZombieEvery time.Duration
}

// MemberSpec is how one consumer commits on its own and polls.
type MemberSpec struct {
	// AutoCommitInterval turns on enable.auto.commit with this
	// auto.commit.interval.ms; 0 leaves auto-commit off.
	AutoCommitInterval time.Duration
	// CommitOnRevoke commits the delivered positions before a rebalance
	// takes the partitions away.
	CommitOnRevoke bool
	// MaxPollRecords is max.poll.records; 0 keeps the client's default.
	MaxPollRecords int
}

// memberSpecsMax is how many member specs a workload draws: at least as
// many as a run has consumers, so that each may differ.
const memberSpecsMax = 3

// produceRequestTimeoutDefault is the producers' request timeout when the
// workload draws none.
const produceRequestTimeoutDefault = 5 * time.Second

// produceRequestTimeout is ProduceRequestTimeout or its default.
func (w WorkloadSpec) produceRequestTimeout() time.Duration {
	if w.ProduceRequestTimeout > 0 {
		return w.ProduceRequestTimeout
	}
	return produceRequestTimeoutDefault
}

// deriveWorkload draws the workload's shape. It is called last in Derive,
// so that what it draws leaves every earlier choice of a seed unchanged.
func deriveWorkload(r *core.Rand) WorkloadSpec {
	var w WorkloadSpec
	if r.Chance(0.6) {
		w.OversizeOneIn = 20 + r.IntN(200)
	}
	w.CommitReadEvery = time.Duration(200+r.IntN(1800)) * time.Millisecond
	if r.Chance(0.5) {
		w.KeyBytes = 256 + r.IntN(1792)
	}
	if r.Chance(0.8) {
		w.TimeLookupOneIn = 2 + r.IntN(30)
	}
	if r.Chance(0.5) {
		w.ProduceRequestTimeout = time.Duration(r.Int64Range(int64(50*time.Millisecond), int64(2*time.Second)))
	}
	deriveGroupWorkload(r, &w)
	return w
}

// deriveGroupWorkload draws how the consumers commit on their own, poll,
// rejoin their group and replay stale commits.
func deriveGroupWorkload(r *core.Rand, w *WorkloadSpec) {
	for range memberSpecsMax {
		var m MemberSpec
		if r.Chance(0.5) {
			m.AutoCommitInterval = time.Duration(r.Int64Range(int64(100*time.Millisecond), int64(2*time.Second)))
		}
		m.CommitOnRevoke = r.Chance(0.5)
		if r.Chance(0.4) {
			m.MaxPollRecords = 1 + r.IntN(5)
		}
		w.Members = append(w.Members, m)
	}
	if r.Chance(0.85) {
		w.RejoinEvery = time.Duration(1+r.IntN(5)) * time.Second
	}
	if r.Chance(0.9) {
		w.ZombieEvery = time.Duration(200+r.IntN(1800)) * time.Millisecond
	}
}
