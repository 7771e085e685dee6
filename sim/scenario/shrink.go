package scenario

// ShrinkFaults looks for a smaller fault set that still fails with the
// same seed: it drops one fault at a time (in AllFaults order) and keeps
// every drop after which fails still reports a failure. The result is
// 1-minimal: removing any single remaining fault makes the seed pass.
//
// A smaller fault set derives a different run from the seed (Derive draws
// only what the enabled faults need), so the result is a new, smaller
// reproducer of a failure, not necessarily of the same one; its verdict
// says which.
func ShrinkFaults(seed uint64, faults Faults, fails func(seed uint64, faults Faults) bool) Faults {
	current := Faults{}
	for name, on := range faults { // order-independent: copied into a set
		current[name] = on
	}
	for changed := true; changed; {
		changed = false
		for _, name := range AllFaults {
			if !current[name] {
				continue
			}
			candidate := Faults{}
			for _, other := range AllFaults {
				if current[other] && other != name {
					candidate[other] = true
				}
			}
			if fails(seed, candidate) {
				current, changed = candidate, true
			}
		}
	}
	return current
}
