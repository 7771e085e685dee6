package scenario

import (
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// scheduleFaults arms a recurring event for every enabled fault. Each fires
// at exponential-ish random intervals (uniform in [0.5, 1.5] of the mean)
// while the safety phase lasts.
func (r *run) scheduleFaults() {
	safetyEnd := r.sched.Now() + r.cfg.SafetyDuration
	r.every(r.cfg.CrashEvery, "fault-crash", func() {
		if r.stalling() {
			return // a power loss ends the stall (stallThenPowerLoss)
		}
		b := r.pickBroker()
		powerLoss := r.cfg.Faults[FaultPowerLoss] && (!r.cfg.Faults[FaultCrash] || r.rand.Chance(0.5))
		if powerLoss && r.cfg.Harsh.StallPowerLossChance > 0 && r.rand.Chance(r.cfg.Harsh.StallPowerLossChance) && r.stallThenPowerLoss(b, safetyEnd) {
			return
		}
		if r.rand.Chance(r.cfg.Harsh.CrashPointChance) {
			r.armCrashPoint(b, powerLoss)
			return
		}
		if !b.down {
			r.noteFault("%s of %s", crashName(powerLoss), b.name)
		}
		r.crashBroker(b, powerLoss)
	})
	// The broker's other faults, and client crashes, wait while its disk
	// stalls, so that the stall's power loss (stallThenPowerLoss) strikes a
	// broker that served the same clients through the stall.
	r.every(r.cfg.DiskErrorEvery, "fault-disk-error", r.unlessStalling(r.injectDiskErrors))
	r.every(r.cfg.DiskFullEvery, "fault-disk-full", r.unlessStalling(r.fillDisk))
	r.every(r.cfg.ClientCrashEvery, "fault-client-crash", r.unlessStalling(r.crashClient))
	r.every(r.cfg.NetworkFaultEvery, "fault-network", r.networkFault)
	r.every(r.cfg.PauseEvery, "fault-pause", r.unlessStalling(r.pauseBroker))
	r.every(r.cfg.Cluster.PartitionEvery, "fault-partition", r.unlessStalling(r.partitionNodes))
	if r.cfg.Faults[FaultNetwork] {
		link := sim.LinkConfig{DelayMin: 50 * time.Microsecond, DelayMax: 50*time.Microsecond + r.cfg.DelayMax, LossProbability: r.cfg.LossChance}
		if err := r.sched.Network().SetDefaultLink(link); err != nil {
			r.fail(err)
		}
	}
	if r.cfg.Faults[FaultClock] {
		r.every(5*time.Second, "fault-clock-jump", func() {
			nodes := r.sched.Nodes()
			n := nodes[r.rand.IntN(len(nodes))]
			// The clock jumps to an offset from true time drawn within
			// ±ClockJumpMax/2, so no two clocks ever differ by more than
			// ClockJumpMax, however many jumps a run makes.
			half := max(r.cfg.Harsh.ClockJumpMax, 2*time.Second) / 2
			offset := time.Duration(r.rand.Int64Range(-int64(half), int64(half)))
			r.noteFault("clock of %s set %v from true time", n.Name(), offset.Round(time.Millisecond))
			if err := n.Clock().SetOffset(offset); err != nil {
				r.fail(err)
			}
		})
	}
}

// crashName names a broker crash for a fault event's description.
func crashName(powerLoss bool) string {
	if powerLoss {
		return "power loss"
	}
	return "crash"
}

// unlessStalling returns f, skipped while a broker's disk stalls.
func (r *run) unlessStalling(f func()) func() {
	return func() {
		if !r.stalling() {
			f()
		}
	}
}

// around draws a wait uniform in [mean/2, 3·mean/2]: every recurring
// event of a run is spaced so.
func (r *run) around(mean time.Duration) time.Duration {
	return time.Duration(r.rand.Int64Range(int64(mean/2), int64(mean*3/2)))
}

// every runs f at random intervals around mean during the safety phase.
func (r *run) every(mean time.Duration, label string, f func()) {
	if mean <= 0 {
		return
	}
	wait := r.around(mean)
	r.sched.After(wait, label, func() {
		if r.phase != phaseSafety {
			return
		}
		r.fireFault(label, f)
		r.every(mean, label, f)
	})
}

// injectDiskErrors makes a burst of calls of one kind fail: writes or
// syncs, or with DiskErrorEveryCall any kind of call, possibly ambiguously
// (the failed call may have taken effect).
func (r *run) injectDiskErrors() {
	op := sim.DiskOpWrite
	if r.cfg.Harsh.DiskErrorEveryCall {
		op = everyCallOps[r.rand.IntN(len(everyCallOps))]
	} else if r.rand.Chance(0.5) {
		op = sim.DiskOpSync
	}
	r.stats.DiskErrorBursts++
	ambiguous := r.rand.Chance(r.cfg.Harsh.AmbiguousChance)
	b := r.pickBroker()
	disk := b.disk
	count := 1 + r.rand.IntN(3)
	disk.InjectFault(sim.DiskFault{Op: op, Probability: 0.5, Count: count, Err: core.ErrIO, Ambiguous: ambiguous})
	length := time.Duration(r.rand.Int64Range(int64(100*time.Millisecond), int64(2*time.Second)))
	r.noteFault("disk errors on %s: up to %d %s calls fail (ambiguous: %v) for %v", b.name, count, op, ambiguous, length.Round(time.Millisecond))
	r.sched.After(length, "disk-errors-clear", disk.ClearFaults)
}

// fillDisk caps the disk just above what it holds for a while, or, with
// LongFullChance, leaves a few KiB free until healing.
func (r *run) fillDisk() {
	r.stats.DiskFullSpells++
	b := r.pickBroker()
	disk := b.disk
	if r.rand.Chance(r.cfg.Harsh.LongFullChance) {
		r.stats.LongDiskFullSpells++
		// Sometimes not one byte free: an fsync of data written before may
		// then fail with ENOSPC (delayed allocation).
		free := int64(0)
		if r.rand.Chance(0.5) {
			free = r.rand.Int64Range(1, 8<<10)
		}
		r.noteFault("disk of %s full until healing, %d bytes free", b.name, free)
		disk.LeaveFree(free)
		return
	}
	disk.SetCapacity(disk.UsedBytes() + r.rand.Int64Range(0, 64<<10))
	length := time.Duration(r.rand.Int64Range(int64(200*time.Millisecond), int64(3*time.Second)))
	r.noteFault("disk of %s full for %v", b.name, length.Round(time.Millisecond))
	r.sched.After(length, "disk-full-clear", func() {
		disk.SetCapacity(0)
	})
}

func (r *run) crashClient() {
	actors := len(r.producers) + len(r.consumers)
	if actors == 0 {
		return
	}
	i := r.rand.IntN(actors)
	r.stats.ClientCrashes++
	if i < len(r.producers) {
		if r.producers[i].host.Alive() {
			r.noteFault("crash of %s", r.producers[i].name())
			r.producers[i].crash()
		}
		return
	}
	if c := r.consumers[i-len(r.producers)]; c.host.Alive() {
		r.noteFault("crash of %s", c.name())
		c.crash()
	}
}

// networkFault either resets connections or isolates a client for a while.
func (r *run) networkFault() {
	nw := r.sched.Network()
	r.stats.NetworkFaults++
	if r.rand.Chance(r.cfg.Harsh.BlackholeChance) {
		r.blackhole()
		return
	}
	if r.rand.Chance(0.5) {
		if nw.ResetRandom() {
			r.noteFault("a connection reset")
		}
		return
	}
	nodes := r.sched.Nodes()
	victim := nodes[r.rand.IntN(len(nodes))]
	nw.Isolate(victim)
	length := time.Duration(r.rand.Int64Range(int64(100*time.Millisecond), int64(5*time.Second)))
	r.noteFault("%s isolated for %v", victim.Name(), length.Round(time.Millisecond))
	r.sched.After(length, "network-heal", func() {
		if r.phase == phaseSafety {
			nw.HealAll()
		}
	})
}

func (r *run) pauseBroker() {
	host := r.pickBroker().host
	if host.Paused() || !host.Alive() {
		return
	}
	host.Pause()
	r.stats.Pauses++
	length := time.Duration(r.rand.Int64Range(int64(10*time.Millisecond), int64(3*time.Second)))
	r.noteFault("pause of %s for %v", host.Name(), length.Round(time.Millisecond))
	r.sched.After(length, "broker-resume", func() {
		if host.Paused() {
			host.Resume()
		}
	})
}
