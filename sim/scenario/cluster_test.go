package scenario

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// clusterSeeds returns the first count seeds from first on whose run with
// faults is a cluster.
func clusterSeeds(t *testing.T, faultList string, first uint64, count int) []uint64 {
	t.Helper()
	faults, err := ParseFaults(faultList)
	if err != nil {
		t.Fatal(err)
	}
	var seeds []uint64
	for seed := first; len(seeds) < count; seed++ {
		if seed > first+uint64(20*count) {
			t.Fatalf("fewer than %d cluster seeds from %d on with faults %s", count, first, faultList)
		}
		if Derive(seed, faults).Cluster.Nodes > 0 {
			seeds = append(seeds, seed)
		}
	}
	return seeds
}

// sameQuorumHistory reports whether two runs recorded the same quorum
// history, byte for byte.
func sameQuorumHistory(a, b Result) bool {
	x, _ := json.Marshal(a.QuorumHistory)
	y, _ := json.Marshal(b.QuorumHistory)
	return bytes.Equal(x, y)
}

// TestDeriveClusterKeepsSingleBrokerSeeds checks that clusters leave every
// other choice of a seed alone: with "all", a seed derives what it derives
// without the cluster faults, plus its cluster. Of 200 seeds some run one
// broker and some run each cluster size; a combined cluster has 3 to 5
// nodes, a separate one 3 controllers and 1 to 3 brokers.
func TestDeriveClusterKeepsSingleBrokerSeeds(t *testing.T) {
	all, _ := ParseFaults("all")
	single, _ := ParseFaults(singleBrokerFaults)
	sizes := map[int]int{}
	separate := 0
	for seed := uint64(1); seed <= 200; seed++ {
		withCluster, without := Derive(seed, all), Derive(seed, single)
		sizes[withCluster.Cluster.Nodes]++
		c := withCluster.Cluster
		nodesMin, nodesMax := 3, 5
		if c.Separate {
			nodesMin, nodesMax = 4, 6
		}
		if c.Nodes > 0 && (c.Nodes < nodesMin || c.Nodes > nodesMax || c.Voters != 3 || c.PartitionEvery <= 0) {
			t.Errorf("seed %d: cluster %+v, want %d to %d nodes, 3 voters and partitions", seed, c, nodesMin, nodesMax)
		}
		if c.Separate {
			separate++
		}
		// A cluster's partition count is the cluster's choice
		// (TestClusterPartitionCounts checks it).
		withCluster.Cluster, withCluster.Faults, withCluster.Partitions = ClusterSpec{}, single, without.Partitions
		a, _ := json.Marshal(withCluster)
		b, _ := json.Marshal(without)
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: the cluster faults changed other choices:\n%s\n%s", seed, a, b)
		}
	}
	for _, nodes := range []int{0, 3, 4, 5} {
		if sizes[nodes] == 0 {
			t.Errorf("no seed of 200 has %d nodes: %v", nodes, sizes)
		}
	}
	if separate == 0 {
		t.Error("no seed of 200 runs separate controllers")
	}
}

// TestClusterSeedReplaysByteForByte runs a cluster seed with every fault
// twice: the event trace, the clients' history and the quorum history
// must be identical.
func TestClusterSeedReplaysByteForByte(t *testing.T) {
	faults, _ := ParseFaults("all")
	seed := clusterSeeds(t, "all", 1, 1)[0]
	first := Run(Derive(seed, faults), Options{})
	second := Run(Derive(seed, faults), Options{})
	if first.TraceHash != second.TraceHash {
		t.Fatalf("seed %d: trace hashes differ: %s vs %s", seed, first.TraceHash, second.TraceHash)
	}
	a, _ := json.Marshal(first.History)
	b, _ := json.Marshal(second.History)
	if !bytes.Equal(a, b) || !sameQuorumHistory(first, second) || first.Verdict() != second.Verdict() {
		t.Fatalf("seed %d: the runs differ", seed)
	}
	if first.QuorumHistory == nil || len(first.QuorumHistory.Voters) != 3 || len(first.QuorumHistory.Nodes) < 3 {
		t.Fatalf("seed %d: the quorum history is %+v, want 3 voters among 3 to 5 nodes", seed, first.QuorumHistory)
	}
}

// clusterSweep runs cluster seeds and fails on each one whose verdict,
// the clients' or the quorum's, is not OK, or whose quorum liveness was
// not judged. It returns the statistics summed.
func clusterSweep(t *testing.T, faultList string, count int) Stats {
	t.Helper()
	faults, _ := ParseFaults(faultList)
	var total Stats
	for _, seed := range clusterSeeds(t, faultList, 1, count) {
		result := Run(Derive(seed, faults), Options{})
		if !result.Passed() {
			t.Errorf("seed %d: %s\nreproduce: go run ./cmd/sim --seed %d --faults %s", seed, result.Verdict(), seed, faults)
			continue
		}
		if result.Quorum == nil || result.Quorum.ControllerActiveTime < 0 {
			t.Errorf("seed %d: the quorum's liveness after the heal was not judged", seed)
		}
		total.BrokerCrashes += result.Stats.BrokerCrashes
		total.PowerLosses += result.Stats.PowerLosses
		for shape, n := range result.Stats.NetworkPartitions {
			total.NetworkPartitions[shape] += n
		}
	}
	return total
}

// TestClusterSeedsWithoutFaults runs clusters of 3 to 5 nodes with the
// whole client workload and no fault: the topic is created through the
// controller, groups get their coordinator, and both checkers pass with
// liveness judged after the heal.
func TestClusterSeedsWithoutFaults(t *testing.T) { clusterSweep(t, FaultCluster, 6) }

// TestClusterSeedsWithFaults sweeps cluster seeds with every fault,
// network partitions of every shape included, and requires every shape,
// crashes and power losses to have struck.
func TestClusterSeedsWithFaults(t *testing.T) {
	total := clusterSweep(t, "all", 40)
	for shape, n := range total.NetworkPartitions {
		if n == 0 {
			t.Errorf("no %s partition struck", partitionShapeNames[shape])
		}
	}
	if total.BrokerCrashes == 0 || total.PowerLosses == 0 {
		t.Errorf("%d crashes and %d power losses, want both", total.BrokerCrashes, total.PowerLosses)
	}
}

// TestSplitNodes checks that a split deals every node to exactly one of
// two non-empty sides, whatever the draw.
func TestSplitNodes(t *testing.T) {
	for _, n := range []int{2, 3, 4, 5} {
		for seed := uint64(1); seed <= 200; seed++ {
			r := &run{rand: core.NewRand(seed)}
			nodes := make([]*brokerNode, n)
			for i := range nodes {
				nodes[i] = &brokerNode{id: int32(i + 1)}
			}
			a, b := r.splitNodes(nodes)
			seen := map[int32]int{}
			for _, x := range append(append([]*brokerNode{}, a...), b...) {
				seen[x.id]++
			}
			if len(a) == 0 || len(b) == 0 || len(seen) != n || len(a)+len(b) != n {
				t.Fatalf("%d nodes, seed %d: sides of %d and %d, %d distinct", n, seed, len(a), len(b), len(seen))
			}
		}
	}
}
