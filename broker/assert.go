package broker

import "fmt"

// assert panics when an invariant does not hold: continuing would risk
// acknowledging data the broker cannot keep. The simulator turns the panic
// into a failing seed.
func assert(ok bool, message string) {
	if !ok {
		panic(fmt.Sprintf("broker: invariant violated: %s", message))
	}
}
