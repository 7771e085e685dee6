package scenario

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSwarmIsDeterministicAndVaries checks the subsets that 200 seeds draw
// from every fault: the same seed draws the same subset, every class but
// cluster is on in some seeds and off in others, cluster is always on,
// and no seed is left with cluster alone.
func TestSwarmIsDeterministicAndVaries(t *testing.T) {
	all, _ := ParseFaults("all")
	const seeds = 200
	on := map[string]int{}
	subsets := map[string]bool{}
	for seed := uint64(1); seed <= seeds; seed++ {
		subset := Swarm(seed, all)
		if again := Swarm(seed, all); again.String() != subset.String() {
			t.Fatalf("seed %d: swarmed %s, then %s", seed, subset, again)
		}
		if len(subset.names()) < 2 {
			t.Errorf("seed %d: swarmed %s, no fault beside cluster", seed, subset)
		}
		for _, name := range subset.names() {
			on[name]++
		}
		subsets[subset.String()] = true
	}
	for _, name := range AllFaults {
		switch {
		case name == FaultCluster && on[name] != seeds:
			t.Errorf("cluster is on in %d of %d seeds, want every one", on[name], seeds)
		case name != FaultCluster && (on[name] == 0 || on[name] == seeds):
			t.Errorf("%s is on in %d of %d seeds, want some but not all", name, on[name], seeds)
		}
	}
	// With one chance in two per class, 200 seeds draw almost as many
	// subsets (of 4,096).
	if len(subsets) < seeds*9/10 {
		t.Errorf("200 seeds drew only %d different subsets", len(subsets))
	}
}

// TestSwarmKeepsOneFault finds a seed whose draws leave out every fault
// class (about one in 4,096) and checks that it still keeps one, beside
// cluster, drawn from the requested classes.
func TestSwarmKeepsOneFault(t *testing.T) {
	all, _ := ParseFaults("all")
	for seed := uint64(1); seed <= 100_000; seed++ {
		if !swarmDrawsNothing(seed) {
			continue
		}
		subset := Swarm(seed, all)
		if names := subset.names(); len(names) != 2 || !subset[FaultCluster] {
			t.Fatalf("seed %d draws no class, and swarms %s; want cluster and one fault", seed, subset)
		}
		list, _ := ParseFaults("crash,network")
		if got := Swarm(seed, list); len(got) != 1 || !list[got.names()[0]] {
			t.Fatalf("seed %d swarms %s of crash,network; want one of the two", seed, got)
		}
		return
	}
	t.Fatal("no seed of 100,000 drew no fault class")
}

// swarmDrawsNothing reports whether seed's swarm draws leave out every
// class that is not always kept.
func swarmDrawsNothing(seed uint64) bool {
	for name := range swarmDraw(newSwarmRand(seed)) { // order-independent: any one class answers
		if !swarmAlwaysKept[name] {
			return false
		}
	}
	return true
}

// TestSwarmOfAListIsTheSwarmOfAllWithinIt checks that a class's fate in a
// seed does not depend on the other classes requested: swarming a list
// keeps the classes of the list that swarming every fault keeps (unless
// that leaves none, when one of the list is kept).
func TestSwarmOfAListIsTheSwarmOfAllWithinIt(t *testing.T) {
	all, _ := ParseFaults("all")
	list, _ := ParseFaults("crash,disk-full,network,partition")
	for seed := uint64(1); seed <= 200; seed++ {
		fromAll, fromList := Swarm(seed, all), Swarm(seed, list)
		within := Faults{}
		for _, name := range list.names() {
			if fromAll[name] {
				within[name] = true
			}
		}
		for _, name := range fromList.names() {
			if !list[name] {
				t.Fatalf("seed %d: swarmed %s of %s", seed, name, list)
			}
		}
		if len(within) > 0 && within.String() != fromList.String() {
			t.Fatalf("seed %d: swarmed %s of %s, but %s of all", seed, fromList, list, fromAll)
		}
		if len(fromList) == 0 {
			t.Fatalf("seed %d: swarmed nothing of %s", seed, list)
		}
	}
	if got := Swarm(3, Faults{}); len(got) != 0 {
		t.Fatalf("swarming none gave %s", got)
	}
}

// TestDeriveSwarmIsDeriveOfTheSubset checks that a swarmed seed is the run
// Derive makes of its subset, so that the subset as an explicit --faults
// list replays it too, and that its printed options name the subset and
// where it came from. Derive alone (--swarm=false) keeps every fault.
func TestDeriveSwarmIsDeriveOfTheSubset(t *testing.T) {
	all, _ := ParseFaults("all")
	for seed := uint64(1); seed <= 50; seed++ {
		swarmed := DeriveSwarm(seed, all)
		if swarmed.SwarmOf.String() != "all" || swarmed.Faults.String() != Swarm(seed, all).String() {
			t.Fatalf("seed %d: faults %s swarmed of %s", seed, swarmed.Faults, swarmed.SwarmOf)
		}
		want := "faults=" + swarmed.Faults.String() + " (swarm: "
		if lines := swarmed.Lines(); !strings.HasPrefix(lines[1], want) || !strings.HasSuffix(lines[1], " classes of all)") {
			t.Fatalf("seed %d: the faults line is %q", seed, lines[1])
		}
		swarmed.SwarmOf = nil
		a, _ := json.Marshal(swarmed)
		b, _ := json.Marshal(Derive(seed, Swarm(seed, all)))
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: the swarmed run is not the run of its subset:\n%s\n%s", seed, a, b)
		}
		if every := Derive(seed, all); every.Faults.String() != "all" || every.SwarmOf != nil {
			t.Fatalf("seed %d: without swarm the faults are %s", seed, every.Faults)
		}
	}
}

// TestSwarmedConfigurationRoundTrips checks that a swarmed configuration,
// saved as the regressions are, loads with the same subset and origin,
// and that a configuration saved before swarm testing loads with none.
func TestSwarmedConfigurationRoundTrips(t *testing.T) {
	all, _ := ParseFaults("all")
	saved, _ := json.Marshal(DeriveSwarm(7, all))
	var loaded Config
	if err := json.Unmarshal(saved, &loaded); err != nil {
		t.Fatal(err)
	}
	if loaded.Faults.String() != Swarm(7, all).String() || loaded.SwarmOf.String() != "all" {
		t.Fatalf("loaded faults %s swarmed of %s", loaded.Faults, loaded.SwarmOf)
	}
	before, _ := json.Marshal(Derive(7, all))
	if bytes.Contains(before, []byte("SwarmOf")) {
		t.Fatalf("a configuration without swarm saves SwarmOf: %s", before)
	}
}

// TestCachingModeMeetsDroppedPagesOnlyFlushed checks the combination that
// swarm testing first ran: without power loss, caching mode with disk
// errors that may drop unsynced pages flushes every message, as it does
// under power loss, since a consumer may read what a failed fsync then
// takes (sim seeds 521 and 500636). Some of 300 seeds must meet the rule.
func TestCachingModeMeetsDroppedPagesOnlyFlushed(t *testing.T) {
	faults, _ := ParseFaults("disk-errors,crash,network")
	met := 0
	for seed := uint64(1); seed <= 300; seed++ {
		c := Derive(seed, faults)
		if !c.WriteCaching || !c.dropsPages() {
			continue
		}
		met++
		if !c.FlushPerMessage {
			t.Errorf("seed %d: caching mode and dropped pages without a flush per message", seed)
		}
	}
	if met == 0 {
		t.Fatal("no seed of 300 ran caching mode with disk errors that drop pages")
	}
}

// TestClusterPartitionCounts checks the partition counts of 400 seeds
// with every fault: a single broker keeps the 1 to 4 it drew before
// clusters drew more, and cluster seeds draw 1 to 16, above 4 in about
// 3 in 10.
func TestClusterPartitionCounts(t *testing.T) {
	all, _ := ParseFaults("all")
	single, _ := ParseFaults(singleBrokerFaults)
	clusters, many := 0, 0
	for seed := uint64(1); seed <= 400; seed++ {
		c := Derive(seed, all)
		if c.Cluster.Nodes == 0 {
			if c.Partitions != Derive(seed, single).Partitions || c.Partitions < 1 || c.Partitions > 4 {
				t.Errorf("seed %d: one broker with %d partitions", seed, c.Partitions)
			}
			continue
		}
		clusters++
		if c.Partitions < 1 || c.Partitions > clusterPartitionsMax {
			t.Errorf("seed %d: a cluster with %d partitions", seed, c.Partitions)
		}
		if c.Partitions > 4 {
			many++
		}
		if swarmed := DeriveSwarm(seed, all); swarmed.Partitions != c.Partitions {
			t.Errorf("seed %d: %d partitions swarmed, %d not", seed, swarmed.Partitions, c.Partitions)
		}
	}
	if clusters < 150 || many < clusters/6 || many > clusters/2 {
		t.Errorf("%d of %d cluster seeds have more than 4 partitions, want about 3 in 10", many, clusters)
	}
}
