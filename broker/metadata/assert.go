package metadata

import "fmt"

// assert panics when an invariant does not hold. Apply validates every record
// before it changes anything, so a failed assertion means a bug in this
// package, not bad input: continuing would hand brokers a corrupt view of
// the cluster. The simulator turns the panic into a failing seed.
func assert(ok bool, message string) {
	if !ok {
		panic(fmt.Sprintf("metadata: invariant violated: %s", message))
	}
}
