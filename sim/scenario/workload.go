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
}

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
	return w
}
