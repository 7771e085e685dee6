package scenario

import "testing"

// TestShrinkFaultsFindsAMinimalSet checks the greedy shrinking with a
// predicate that fails exactly when crash and network are both enabled:
// from all faults it must end at {crash, network}, and it must never
// return a set that passes.
func TestShrinkFaultsFindsAMinimalSet(t *testing.T) {
	all, _ := ParseFaults("all")
	fails := func(_ uint64, f Faults) bool { return f[FaultCrash] && f[FaultNetwork] }
	got := ShrinkFaults(1, all, fails)
	if got.String() != "crash,network" {
		t.Fatalf("shrunk to %s, want crash,network", got)
	}
	alwaysFails := func(uint64, Faults) bool { return true }
	if got := ShrinkFaults(1, all, alwaysFails); got.String() != "none" {
		t.Fatalf("a failure without faults shrinks to %s, want none", got)
	}
}
