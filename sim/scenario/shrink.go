package scenario

import (
	"fmt"
	"slices"
)

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

// SubsetShrink is what ShrinkSubset found.
type SubsetShrink struct {
	// Keep lists the indexes of the smallest failing subset found,
	// ascending.
	Keep []int
	// Tries counts the calls of fails.
	Tries int
	// Minimal is set when removing any one element of Keep was tried and
	// passed (Keep is 1-minimal); it is false when the tries ran out first.
	Minimal bool
}

// ShrinkSubset looks for a small subset of count elements (fault events,
// numbered 0 to count-1) that still fails, assuming the whole set does: it
// is Zeller's delta debugging (ddmin). It first tries the empty set, then
// splits the current subset into n chunks (n = 2 at first) and tries each
// chunk alone, then (for n > 2) the subset without each chunk; a failing
// try becomes the current subset and the chunks grow again (n = 2 after a
// chunk, n-1 after a complement), a round without one doubles n, and it
// stops when the chunks are single elements and none can go. A failure
// that needs a few events among many costs a few tries per needed event
// and halving; removing one event at a time would cost one try per event
// and pass.
//
// Each try calls fails, a full run of the seed, so the tries are bounded:
// after triesMax calls it stops and returns the smallest failing subset
// so far, not known to be minimal. A subset already seen to pass is not
// tried again. progress, if not nil, is called after each try that
// failed, with the tries so far and the new, smaller subset.
func ShrinkSubset(count, triesMax int, fails func(keep []int) bool, progress func(tries int, keep []int)) SubsetShrink {
	s := subsetShrinker{fails: fails, progress: progress, triesMax: triesMax, passed: make(map[string]bool)}
	current := make([]int, count)
	for i := range current {
		current[i] = i
	}
	if count == 0 {
		return SubsetShrink{Keep: current, Minimal: true}
	}
	if failed, ok := s.try([]int{}); !ok || failed {
		if failed {
			current = []int{}
		}
		return SubsetShrink{Keep: current, Tries: s.tries, Minimal: ok}
	}
	for chunks := 2; len(current) >= 2; {
		next, ok := s.reduce(current, chunks)
		switch {
		case !ok:
			return SubsetShrink{Keep: current, Tries: s.tries}
		case next.keep != nil:
			current, chunks = next.keep, max(next.chunks, 2)
		case chunks >= len(current):
			return SubsetShrink{Keep: current, Tries: s.tries, Minimal: true}
		default:
			chunks = min(2*chunks, len(current))
		}
	}
	return SubsetShrink{Keep: current, Tries: s.tries, Minimal: true}
}

// subsetShrinker holds ShrinkSubset's state between tries.
type subsetShrinker struct {
	fails    func(keep []int) bool
	progress func(tries int, keep []int)
	triesMax int
	tries    int
	// passed holds the subsets (by fmt's rendering) that were tried and
	// passed (lookups only).
	passed map[string]bool
}

// reduction is one step of ShrinkSubset: the smaller failing subset found
// (nil for none) and how many chunks to cut it into next.
type reduction struct {
	keep   []int
	chunks int
}

// reduce tries each of the chunks of current alone, then (with more than
// two chunks, whose complements are the other chunk) current without each
// chunk. It reports false when the tries ran out.
func (s *subsetShrinker) reduce(current []int, chunks int) (reduction, bool) {
	parts := splitChunks(current, chunks)
	for _, part := range parts {
		failed, ok := s.try(part)
		if !ok || failed {
			return reduction{keep: part, chunks: 2}, ok
		}
	}
	if chunks == 2 {
		return reduction{}, true
	}
	for i := range parts {
		var complement []int
		for j, part := range parts {
			if j != i {
				complement = append(complement, part...)
			}
		}
		failed, ok := s.try(complement)
		if !ok || failed {
			return reduction{keep: complement, chunks: chunks - 1}, ok
		}
	}
	return reduction{}, true
}

// try runs fails on keep, unless it is known to pass; it reports false
// when no try was left.
func (s *subsetShrinker) try(keep []int) (failed, ok bool) {
	key := fmt.Sprint(keep)
	if s.passed[key] {
		return false, true
	}
	if s.tries >= s.triesMax {
		return false, false
	}
	s.tries++
	if !s.fails(slices.Clone(keep)) {
		s.passed[key] = true
		return false, true
	}
	if s.progress != nil {
		s.progress(s.tries, slices.Clone(keep))
	}
	return true, true
}

// splitChunks cuts list into n chunks of nearly equal length, in order
// (n <= len(list)).
func splitChunks(list []int, n int) [][]int {
	chunks := make([][]int, 0, n)
	for i := range n {
		chunks = append(chunks, list[i*len(list)/n:(i+1)*len(list)/n])
	}
	return chunks
}
