package broker

import (
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/client"
)

// failoverPartitions is the size of the topic the failover benchmarks move.
const failoverPartitions = 1000

// newFailoverCluster starts three voters and two broker-only nodes with a
// topic of failoverPartitions partitions, three replicas each, and waits
// until every partition's ISR holds all three (the followers fetched and
// the leaders' AlterPartitions committed), so that a dead broker's
// leaderships move by clean elections.
func newFailoverCluster(b *testing.B, seed uint64) *simCluster {
	sc := newSimClusterWithVoters(b, seed, 5, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 30*time.Second, sc.unfenced)
	done := false
	var failure string
	sc.admin.CreateTopics([]client.TopicSpec{{Topic: "wide", Partitions: failoverPartitions, ReplicationFactor: 3}},
		func(errs []client.TopicError, err error) {
			done = true
			if err != nil || errs[0].Err != nil {
				failure = "create failed"
			}
		})
	sc.runUntil("the topic created", 60*time.Second, func() bool { return done })
	if failure != "" {
		b.Fatal(failure)
	}
	sc.runUntil("every ISR full", 120*time.Second, func() bool {
		a := sc.activeController()
		if a == nil {
			return false
		}
		topic, ok := a.node.cluster.image.TopicByName("wide")
		if !ok {
			return false
		}
		for _, p := range topic.Partitions {
			if len(p.ISR) < 3 {
				return false
			}
		}
		return true
	})
	return sc
}

// ledBy counts the partitions of "wide" that broker id leads, and those
// without a leader, in image.
func ledBy(image *metadata.Image, id int32) (led, leaderless int) {
	topic, _ := image.TopicByName("wide")
	for _, p := range topic.Partitions {
		switch p.Leader {
		case id:
			led++
		case metadata.NoLeader:
			leaderless++
		}
	}
	return led, leaderless
}

// BenchmarkBrokerFailover kills a broker-only node that leads about a
// fifth of 1,000 partitions and reports the virtual time until every one
// of them has another leader in the active controller's committed image
// (virtual-s), which is broker.session.timeout.ms plus the election's
// commit. The wall time per run is the simulator's speed on this scenario.
func BenchmarkBrokerFailover(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sc := newFailoverCluster(b, uint64(100+i))
		b.StartTimer()
		victim := sc.nodes[4]
		if led, _ := ledBy(sc.activeController().node.cluster.image, victim.id); led == 0 {
			b.Fatal("the victim leads nothing")
		}
		start := sc.sched.Now()
		victim.crash()
		sc.stepUntil("every leadership moved", 60*time.Second, func() bool {
			led, leaderless := ledBy(sc.activeController().node.cluster.image, victim.id)
			return led == 0 && leaderless == 0
		})
		total += sc.sched.Now() - start
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "virtual-s")
}

// BenchmarkControllerFailover kills the active controller (a voter that
// also leads partitions) and reports the virtual time until another node's
// controller is active, which is when it has committed its first record,
// the leader-change entry of its epoch (virtual-s).
func BenchmarkControllerFailover(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sc := newFailoverCluster(b, uint64(200+i))
		b.StartTimer()
		old := sc.activeController()
		start := sc.sched.Now()
		old.crash()
		sc.stepUntil("a new active controller", 60*time.Second, func() bool {
			a := sc.activeController()
			return a != nil && a != old
		})
		total += sc.sched.Now() - start
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "virtual-s")
}

// stepUntil runs the simulation one event at a time until cond holds, so
// that the virtual time it stops at is exact, failing after limit.
func (sc *simCluster) stepUntil(what string, limit time.Duration, cond func() bool) {
	sc.t.Helper()
	deadline := sc.sched.Now() + limit
	for !cond() {
		if sc.sched.Now() > deadline || !sc.sched.Step() {
			sc.t.Fatalf("not within %v: %s", limit, what)
		}
	}
}
