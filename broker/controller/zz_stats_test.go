package controller

import (
	"fmt"
	"testing"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

func TestZZStats(t *testing.T) {
	stats := map[string]int{}
	rapid.Check(t, func(rt *rapid.T) {
		m := newModel(rt)
		for range rapid.IntRange(20, 200).Draw(rt, "steps") {
			m.step(rt)
			m.check(rt)
		}
		m.finish(rt)
		stats["runs"]++
		stats["calls"] += len(m.calls)
		stats["offset"] += int(m.committed.AppliedOffset())
		stats["topics"] += len(m.committed.TopicNames())
		for _, b := range m.committed.Brokers() {
			if b.Fenced {
				stats["fenced"]++
			} else {
				stats["unfenced"]++
			}
		}
		for _, p := range partitionStates(m.committed) {
			if p.LeaderRecovering {
				stats["recovering"]++
			}
			if p.Leader == metadata.NoLeader {
				stats["leaderless"]++
			}
			if p.LeaderEpoch > 0 {
				stats["moved"]++
			}
		}
		_ = kmsg.NewPtrBrokerHeartbeatRequest
		for _, e := range m.log {
			r, err := metadata.Decode(e.data)
			if err != nil { continue }
			for _, x := range r.(*metadata.BatchRecord).Records {
				stats[fmt.Sprintf("kind%d", x.Kind())]++
				if pc, ok := x.(*metadata.PartitionChangeRecord); ok && pc.LeaderRecovering { stats["unclean-change"]++ }
			}
		}
	})
	t.Log(stats)
}
