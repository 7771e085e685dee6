package scenario

import (
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/checker"
)

// partitionShape is one way a network partition splits a cluster's nodes.
type partitionShape int

const (
	// partitionSymmetric splits the nodes into two random sides that
	// cannot reach each other.
	partitionSymmetric partitionShape = iota
	// partitionOneWay cuts one direction between two nodes: frames are
	// lost and connections break, the other direction works.
	partitionOneWay
	// partitionBlackhole makes one direction between two nodes hold
	// frames silently until the heal: nobody is told, timeouts must find
	// out, and what was sent arrives late.
	partitionBlackhole
	// partitionIsolateController cuts the active controller off from
	// every other node, clients included.
	partitionIsolateController
	// partitionSplitBrain puts the active controller on a minority side
	// with some brokers, the other voters on the majority side: both sides
	// have brokers and, for a while, a controller they believe in.
	partitionSplitBrain
	// partitionBridge splits the nodes into two sides that cannot reach
	// each other but both reach one bridge node.
	partitionBridge
	partitionShapeCount
)

// partitionShapeNames name the shapes in the trace and the statistics.
var partitionShapeNames = [partitionShapeCount]string{
	"symmetric", "one-way", "blackhole", "isolate-controller", "split-brain", "bridge",
}

// partitionNodes cuts the cluster's network in a drawn shape for a drawn
// while. The partition and every other network cut heal together, at the
// latest when the heal phase begins.
func (r *run) partitionNodes() {
	shape := partitionShape(r.rand.IntN(int(partitionShapeCount)))
	var done bool
	// sides describes the cut for the fault schedule (schedule.go).
	var sides string
	switch shape {
	case partitionSymmetric:
		a, b := r.splitNodes(r.brokers)
		done, sides = r.cutBetween(a, b), sideNames(a, b)
	case partitionOneWay, partitionBlackhole:
		from, to := r.twoNodes()
		if shape == partitionOneWay {
			r.sched.Network().Cut(from.host, to.host)
		} else {
			r.sched.Network().Blackhole(from.host, to.host)
		}
		done, sides = true, from.name+" -> "+to.name
	case partitionIsolateController:
		if controller := r.activeController(); controller != nil {
			r.sched.Network().Isolate(controller.host)
			done, sides = true, controller.name+" alone"
		}
	case partitionSplitBrain:
		a, b := r.splitBrain()
		done, sides = r.cutBetween(a, b), sideNames(a, b)
	case partitionBridge:
		bridge := r.pickBroker()
		var rest []*brokerNode
		for _, b := range r.brokers {
			if b != bridge {
				rest = append(rest, b)
			}
		}
		a, b := r.splitNodes(rest)
		done, sides = r.cutBetween(a, b), sideNames(a, b)+", bridge "+bridge.name
	}
	if !done {
		return
	}
	r.stats.NetworkPartitions[shape]++
	length := time.Duration(r.rand.Int64Range(int64(100*time.Millisecond), int64(max(r.cfg.Cluster.PartitionLengthMax, 200*time.Millisecond))))
	r.sched.Trace("partition %s for=%v", partitionShapeNames[shape], length)
	r.noteFault("partition %s (%s) for %v", partitionShapeNames[shape], sides, length.Round(time.Millisecond))
	r.sched.After(length, "partition-heal", func() {
		if r.phase == phaseSafety {
			r.sched.Network().HealAll()
		}
	})
}

// splitNodes deals nodes into two non-empty sides at random (nodes has at
// least two).
func (r *run) splitNodes(nodes []*brokerNode) (a, b []*brokerNode) {
	first := r.rand.IntN(len(nodes))
	for i, n := range nodes {
		switch {
		case i == first:
			a = append(a, n)
		case len(b) == 0 && i == len(nodes)-1:
			b = append(b, n)
		case r.rand.Chance(0.5):
			a = append(a, n)
		default:
			b = append(b, n)
		}
	}
	if len(b) == 0 { // first was the last node and every other went to a
		a, b = a[1:], a[:1]
	}
	return a, b
}

// twoNodes draws two different nodes.
func (r *run) twoNodes() (from, to *brokerNode) {
	i := r.rand.IntN(len(r.brokers))
	j := (i + 1 + r.rand.IntN(len(r.brokers)-1)) % len(r.brokers)
	return r.brokers[i], r.brokers[j]
}

// cutBetween cuts both directions between every node of a and every node
// of b.
func (r *run) cutBetween(a, b []*brokerNode) bool {
	for _, x := range a {
		for _, y := range b {
			r.sched.Network().Partition(x.host, y.host)
		}
	}
	return len(a) > 0 && len(b) > 0
}

// splitBrain puts the active controller with the broker-only nodes drawn
// to join it on one side, and every other voter with the remaining
// brokers on the other, for cutBetween. Without an active controller both
// sides are empty.
func (r *run) splitBrain() (minority, majority []*brokerNode) {
	controller := r.activeController()
	if controller == nil {
		return nil, nil
	}
	minority = []*brokerNode{controller}
	for _, b := range r.brokers {
		switch {
		case b == controller:
		case int(b.id) > r.cfg.Cluster.Voters && r.rand.Chance(0.5):
			minority = append(minority, b)
		default:
			majority = append(majority, b)
		}
	}
	return minority, majority
}

// sideNames names the nodes on each side of a cut: "b1,b3 | b2".
func sideNames(a, b []*brokerNode) string {
	names := func(nodes []*brokerNode) string {
		var list []string
		for _, n := range nodes {
			list = append(list, n.name)
		}
		return strings.Join(list, ",")
	}
	return names(a) + " | " + names(b)
}

// activeController returns the running node that last recorded itself
// leader of the quorum in the highest epoch, or nil.
func (r *run) activeController() *brokerNode {
	var found *brokerNode
	for _, b := range r.brokers {
		if b.running && !b.down && b.role == checker.QuorumRoleLeader && (found == nil || b.epoch > found.epoch) {
			found = b
		}
	}
	return found
}
