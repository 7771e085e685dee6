package raft

import "fmt"

// assert panics when one of Raft's invariants does not hold. Continuing would
// risk two leaders in one epoch or a committed entry that is later lost; the
// simulator turns the panic into a failing seed.
func assert(ok bool, message string) {
	if !ok {
		panic("raft: invariant violated: " + message)
	}
}

// assertf is assert with a formatted message. The message is built only when
// the invariant fails, so dense assertions stay cheap.
func assertf(ok bool, format string, args ...any) {
	if !ok {
		panic("raft: invariant violated: " + fmt.Sprintf(format, args...))
	}
}
