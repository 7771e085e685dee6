package scenario

import "github.com/kafkasim/kafkasim/core"

// Swarm testing (Groce, Zhang, Eide, Chen and Regehr, "Swarm testing",
// ISSTA 2012): instead of running every requested fault class in every
// seed, each seed runs a random subset of them. A fault that is always
// present can mask a bug that another fault exposes (frequent crashes
// restart a broker before a slow disk's backlog ever matters; bit flips
// fail a run before the corruption checks are reached), and leaving it
// out of some seeds lets the others show what they find on their own.
// The rates of the kept faults are drawn by Derive as before.

// swarmKeepChance is the chance that a seed keeps each requested fault
// class. One half is the paper's choice: it makes every subset equally
// likely, so each pair of classes is seen together, each one apart from
// the other, and both absent in a quarter of the seeds.
const swarmKeepChance = 0.5

// swarmAlwaysKept lists the classes that every swarmed seed keeps when
// they are requested. The cluster class is no fault but the choice of
// topology: deriveCluster already leaves half the seeds a single broker,
// and swarming it too would make only a quarter of the seeds clusters.
var swarmAlwaysKept = Faults{FaultCluster: true}

// swarmStreamSalt makes the swarm's random stream differ from Derive's and
// the cluster's, so that the subset a seed draws leaves the rest of its
// derivation as Derive draws it for that subset.
const swarmStreamSalt = 0x737761726d2d2d2d

// Swarm returns the subset of faults that seed runs under swarm testing.
// It draws from its own stream, one draw per class in AllFaults order
// whether or not the class was requested, so a class's fate in a seed
// does not depend on which other classes were requested. A seed never
// ends with no fault class that strikes (beside the always-kept ones)
// while one was requested: if every such class was left out, one of them,
// drawn uniformly, is kept, so that no swarmed seed is a fault-free run
// (about one seed in 4,096 with every fault requested). Swarming "none"
// is "none".
func Swarm(seed uint64, faults Faults) Faults {
	r := newSwarmRand(seed)
	drawn := swarmDraw(r)
	kept := Faults{}
	var candidates []string
	keptCandidate := false
	for _, name := range AllFaults {
		switch {
		case !faults[name]:
		case swarmAlwaysKept[name]:
			kept[name] = true
		default:
			candidates = append(candidates, name)
			if drawn[name] {
				kept[name] = true
				keptCandidate = true
			}
		}
	}
	if !keptCandidate && len(candidates) > 0 {
		kept[candidates[r.IntN(len(candidates))]] = true
	}
	return kept
}

// newSwarmRand is the swarm's random stream of seed.
func newSwarmRand(seed uint64) *core.Rand { return core.NewRand(seed ^ swarmStreamSalt) }

// swarmDraw draws, for every class in AllFaults order, whether a seed
// keeps it.
func swarmDraw(r *core.Rand) Faults {
	drawn := Faults{}
	for _, name := range AllFaults {
		if r.Chance(swarmKeepChance) {
			drawn[name] = true
		}
	}
	return drawn
}

// SwarmByDefault reports whether a run of faults is swarmed unless the
// user says otherwise: only "all" is, since an explicit list names the
// faults the user wants to see, every one of them in every seed.
func SwarmByDefault(faults Faults) bool {
	return len(faults) > 0 && faults.String() == "all"
}

// DeriveSwarm derives seed's run from a swarmed subset of faults: exactly
// the run Derive(seed, Swarm(seed, faults)) derives, so that the subset,
// given as an explicit --faults list, replays the seed too, with SwarmOf
// noting the set it was drawn from.
func DeriveSwarm(seed uint64, faults Faults) Config {
	c := Derive(seed, Swarm(seed, faults))
	c.SwarmOf = faults
	return c
}
