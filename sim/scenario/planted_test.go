//go:build planted

package scenario

import (
	"flag"
	"testing"

	"github.com/kafkasim/kafkasim/core/planted"
)

var plantedSeeds = flag.Int("planted.seeds", 200, "seeds a planted bug may survive before the test fails")

// TestPlantedBugIsCaught sweeps seeds with every fault while the planted
// bug linked into this build is live, and passes at the first run the
// checker fails: the simulator alone, without any unit test, catches the
// bug. See core/planted and .ci/planted-bugs.
func TestPlantedBugIsCaught(t *testing.T) {
	if planted.Bug == "" {
		t.Skip("no planted bug linked in (-ldflags -X .../core/planted.Bug=name)")
	}
	faults, err := ParseFaults("all")
	if err != nil {
		t.Fatal(err)
	}
	// A bug that the default budget misses sweeps as far as core/planted
	// says it must.
	seeds := max(*plantedSeeds, planted.SeedsNeeded[planted.Bug])
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		result := Run(Derive(seed, faults), Options{})
		if !result.Passed() {
			t.Logf("planted bug %s caught by seed %d: %s", planted.Bug, seed, result.Verdict())
			return
		}
	}
	t.Fatalf("planted bug %s survived %d seeds with every fault", planted.Bug, seeds)
}
