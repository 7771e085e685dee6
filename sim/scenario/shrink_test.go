package scenario

import (
	"fmt"
	"slices"
	"testing"
)

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

// TestShrinkSubsetFindsTheNeededEvents runs delta debugging with fake
// predicates over numbered events: a failure that needs some events must
// shrink to exactly those, within the bound of tries, and every result
// must fail. The tries counted are the predicate's calls.
func TestShrinkSubsetFindsTheNeededEvents(t *testing.T) {
	needs := func(needed ...int) func([]int) bool {
		return func(keep []int) bool {
			for _, n := range needed {
				if !slices.Contains(keep, n) {
					return false
				}
			}
			return true
		}
	}
	cases := []struct {
		name     string
		count    int
		triesMax int
		fails    func([]int) bool
		want     []int
		minimal  bool
	}{
		{"two of ten", 10, 200, needs(3, 7), []int{3, 7}, true},
		{"one of one", 1, 200, needs(0), []int{0}, true},
		{"none needed", 30, 200, needs(), []int{}, true},
		{"every one needed", 5, 200, needs(0, 1, 2, 3, 4), []int{0, 1, 2, 3, 4}, true},
		{"three of sixty", 60, 200, needs(1, 2, 59), []int{1, 2, 59}, true},
		{"adjacent pair of a hundred", 100, 200, needs(41, 42), []int{41, 42}, true},
		{"an empty schedule", 0, 200, needs(), []int{}, true},
		// Out of tries: the result still fails but need not be minimal.
		{"two of sixty in four tries", 60, 4, needs(3, 50), nil, false},
		{"no tries at all", 8, 0, needs(3), []int{0, 1, 2, 3, 4, 5, 6, 7}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			var steps [][]int
			fails := func(keep []int) bool { calls++; return c.fails(keep) }
			got := ShrinkSubset(c.count, c.triesMax, fails, func(tries int, keep []int) {
				if tries != calls {
					t.Errorf("progress says %d tries after %d calls", tries, calls)
				}
				steps = append(steps, keep)
			})
			if c.want != nil && !slices.Equal(got.Keep, c.want) {
				t.Errorf("kept %v, want %v", got.Keep, c.want)
			}
			if c.count > 0 && !c.fails(got.Keep) {
				t.Errorf("kept %v, which passes", got.Keep)
			}
			if got.Minimal != c.minimal || got.Tries != calls || calls > c.triesMax {
				t.Errorf("minimal %v tries %d calls %d, want minimal %v and at most %d tries", got.Minimal, got.Tries, calls, c.minimal, c.triesMax)
			}
			t.Logf("kept %v after %d tries", got.Keep, got.Tries)
			for i := 1; i < len(steps); i++ {
				if len(steps[i]) >= len(steps[i-1]) {
					t.Errorf("progress step %v is no smaller than %v", steps[i], steps[i-1])
				}
			}
		})
	}
}

// TestShrinkSubsetTriesEachSubsetOnce checks, with a predicate that
// passes everything but the whole set, that no subset is run twice: a
// try is a whole simulation.
func TestShrinkSubsetTriesEachSubsetOnce(t *testing.T) {
	seen := map[string]bool{}
	got := ShrinkSubset(12, 200, func(keep []int) bool {
		key := fmt.Sprint(keep)
		if seen[key] {
			t.Errorf("tried %v twice", keep)
		}
		seen[key] = true
		return len(keep) == 12
	}, nil)
	if len(got.Keep) != 12 || !got.Minimal {
		t.Fatalf("kept %v (minimal %v), want all 12, minimal", got.Keep, got.Minimal)
	}
}
