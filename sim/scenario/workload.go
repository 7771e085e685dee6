package scenario

import "github.com/kafkasim/kafkasim/core"

// WorkloadSpec holds the workload's shape beyond its producers and
// consumers: what the clients do that exercises rarer broker paths.
type WorkloadSpec struct{}

// deriveWorkload draws the workload's shape. It is called last in Derive,
// so that what it draws leaves every earlier choice of a seed unchanged.
func deriveWorkload(r *core.Rand) WorkloadSpec {
	_ = r
	return WorkloadSpec{}
}
