package raft

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// networkMessagesMax bounds the messages in flight in the random schedule; a
// network holding more loses its oldest, as a congested one would.
const networkMessagesMax = 400

// TestRandomSchedulesKeepRaftSafe drives 3 to 5 voters (and 0 to 2
// observers, which must never act as or count as voters) through a random
// schedule of ticks, Ready flushes, deliveries out of order, drops,
// duplicates, partitions, proposals, crashes (losing whatever the host had
// not made durable, also part way through performing a Ready) and restarts.
// The harness checks after every event that each epoch has at most one
// leader, that committed prefixes agree, that a running node's high
// watermark never moves back, that every leader holds the entries committed
// before its epoch and that a majority of voters' disks hold every committed
// entry. Then it heals everything and requires the quorum to commit a new
// entry on every node, observers included, within a bound (liveness).
func TestRandomSchedulesKeepRaftSafe(t *testing.T) {
	runs, compactions, installs := 0, 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		count := rapid.IntRange(3, 5).Draw(rt, "voters")
		observers := rapid.IntRange(0, 2).Draw(rt, "observers")
		seed := rapid.Uint64().Draw(rt, "seed")
		c := newClusterWithObservers(rt, count, observers, seed, func(config *Config) {
			config.ElectionTimeoutTicks = 4
			config.FetchTimeoutTicks = 8
			config.RequestTimeoutTicks = 3
			config.FetchEntriesMax = 3
			config.SnapshotChunkBytesMax = 5 // a snapshot of 8 bytes and its checksum travels in 3 chunks
		})
		s := &schedule{c: c, count: count + observers}
		s.run(rt)
		s.requireLiveness(rt)
		runs, compactions, installs = runs+1, compactions+c.compactions, installs+c.installs
	})
	// The snapshot paths must have run, or the schedules proved nothing
	// about them.
	t.Logf("%d schedules: %d snapshots taken, %d fetched snapshots installed", runs, compactions, installs)
	if runs >= 50 && (compactions == 0 || installs == 0) {
		t.Fatalf("%d schedules took %d snapshots and installed %d fetched ones; both paths must run", runs, compactions, installs)
	}
}

// schedule holds the random schedule's state between actions.
type schedule struct {
	c         *cluster
	count     int // voters and observers
	proposals int
}

func (s *schedule) node(rt *rapid.T, label string) int32 {
	return int32(rapid.IntRange(1, s.count).Draw(rt, label))
}

func (s *schedule) message(rt *rapid.T) (int, bool) {
	if len(s.c.network) == 0 {
		return 0, false
	}
	return rapid.IntRange(0, len(s.c.network)-1).Draw(rt, "message"), true
}

// action is one kind of event of the schedule, drawn with a weight.
type action struct {
	name   string
	weight int
	run    func(*rapid.T)
}

// run draws a schedule length, then that many weighted events, checking the
// cluster's last invariants after each (each event checks its own as well).
func (s *schedule) run(rt *rapid.T) {
	actions := s.actions()
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	steps := rapid.IntRange(50, 1500).Draw(rt, "steps")
	for range steps {
		pick := rapid.IntRange(0, total-1).Draw(rt, "event")
		for _, a := range actions {
			if pick < a.weight {
				a.run(rt)
				break
			}
			pick -= a.weight
		}
		if len(s.c.network) > networkMessagesMax {
			s.c.network = s.c.network[len(s.c.network)-networkMessagesMax:]
		}
		s.c.check()
	}
}

// actions lists the schedule's events. Rounds (tick, flush and deliver
// everywhere) weigh most so that elections and commits happen between
// faults; crashes and partitions are rarer, as they are in the field.
func (s *schedule) actions() []action {
	c := s.c
	round := func(rt *rapid.T) {
		for _, tn := range c.nodes {
			c.tick(tn.id)
			c.flush(tn.id)
		}
		deliveries := rapid.IntRange(0, len(c.network)).Draw(rt, "deliveries")
		for range deliveries {
			if i, ok := s.message(rt); ok {
				c.deliver(i)
			}
		}
	}
	return []action{
		{"round", 24, round},
		{"tick", 2, func(rt *rapid.T) { c.tick(s.node(rt, "tick")) }},
		{"flush", 2, func(rt *rapid.T) { c.flush(s.node(rt, "flush")) }},
		{"deliver", 4, func(rt *rapid.T) {
			if i, ok := s.message(rt); ok {
				c.deliver(i)
			}
		}},
		{"drop", 2, func(rt *rapid.T) {
			if i, ok := s.message(rt); ok {
				c.network = append(c.network[:i], c.network[i+1:]...)
			}
		}},
		{"duplicate", 2, func(rt *rapid.T) {
			if i, ok := s.message(rt); ok {
				c.deliverCopy(c.network[i])
			}
		}},
		{"propose", 6, func(rt *rapid.T) {
			if leader := c.leader(); leader != NoNode {
				s.proposals++
				c.propose(leader, fmt.Sprintf("p%d", s.proposals))
			}
		}},
		{"crash", 1, func(rt *rapid.T) { c.crash(s.node(rt, "crash")) }},
		{"crashDuringFlush", 1, func(rt *rapid.T) {
			c.crashDuringFlush(s.node(rt, "crash"), rapid.IntRange(0, 8).Draw(rt, "steps"))
		}},
		{"restart", 2, func(rt *rapid.T) { c.restart(s.node(rt, "restart")) }},
		{"compact", 2, func(rt *rapid.T) { c.compact(s.node(rt, "compact"), rapid.Bool().Draw(rt, "deleteEntries")) }},
		{"isolate", 1, func(rt *rapid.T) { c.isolate(s.node(rt, "isolate")) }},
		{"cutLink", 1, func(rt *rapid.T) {
			from, to := s.node(rt, "from"), s.node(rt, "to")
			c.cut[[2]int32{from, to}] = true
		}},
		{"heal", 2, func(rt *rapid.T) { c.heal() }},
	}
}

// requireLiveness heals the network, restarts every node and requires a new
// entry to be committed everywhere within a bound of ticks.
func (s *schedule) requireLiveness(rt *rapid.T) {
	c := s.c
	c.heal()
	for _, tn := range c.nodes {
		c.restart(tn.id)
	}
	target, proposer := int64(-1), NoNode
	for range 300 {
		c.tickAll(1)
		leader := c.leader()
		if leader == NoNode {
			continue
		}
		if leader != proposer {
			// A leader deposed before committing may lose its proposal;
			// the new leader proposes again.
			target, proposer = c.propose(leader, "after-heal"), leader
			continue
		}
		if c.allCommitted(target) {
			return
		}
	}
	rt.Fatalf("after healing, the quorum did not commit a new entry on every node within 300 ticks (target %d, leader %d): %s", target, c.leader(), c.describe())
}

// allCommitted reports whether every node's high watermark passed offset.
func (c *cluster) allCommitted(offset int64) bool {
	for _, tn := range c.nodes {
		if tn.node == nil || tn.node.HighWatermark() <= offset {
			return false
		}
	}
	return true
}

// describe summarizes every node for a failure message.
func (c *cluster) describe() string {
	out := ""
	for _, tn := range c.nodes {
		if tn.node == nil {
			out += fmt.Sprintf("[%d down]", tn.id)
			continue
		}
		n := tn.node
		out += fmt.Sprintf("[%d %s %+v end %d last epoch %d hw %d durable %d]", tn.id, n.Role(), n.HardState(), n.EndOffset(), n.log.lastEpoch(), n.HighWatermark(), n.durableEndOffset)
	}
	return out
}
