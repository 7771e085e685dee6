package scenario

import (
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// HarshSpec holds the fault options that make the simulator at least as
// harsh as real hardware, beyond the basic rate of each fault class: where
// a crash strikes, how a torn write ends, what a failed fsync leaves in the
// page cache, which calls fail, how long a disk stays full, and one-way
// network cuts. Each is drawn per seed, swarm style, only for the fault
// classes the run enables.
type HarshSpec struct {
	// PowerOffChance is, per power loss, the chance that the machine goes
	// silent (its peers see no reset and must time out) instead of its
	// connections being reset. Zero without powerloss.
	PowerOffChance float64
	// StallPowerLossChance is, per power loss, the chance that the disk
	// first stalls (every fsync due during the stall completes only at its
	// end) for longer than the producers' request timeout, and the power
	// fails during the stall: right after a retried idempotent acks=all
	// send is acknowledged, or else just before the stall ends. Producers
	// time out and retry batches whose original waits on a stalled fsync,
	// and the power loss takes everything the stalled fsyncs would have
	// made durable: an answer that relied on such data (a retry answered
	// before its original was durable) shows up as a lost write. The
	// broker's other faults and client crashes wait during the stall. Zero
	// without powerloss.
	StallPowerLossChance float64
	// TornZeroTailChance and TornGarbageTailChance are, per torn write, the
	// chances that the surviving prefix is followed by zeros or garbage.
	TornZeroTailChance    float64
	TornGarbageTailChance float64
	// CrashPointChance is, per broker crash, the chance that it strikes
	// inside a handler, between two of its disk calls, instead of between
	// two events; CrashPointCallsMax bounds how many calls run before it.
	CrashPointChance   float64
	CrashPointCallsMax int
	// DiskErrorEveryCall makes disk-error bursts hit every kind of call
	// (create, rename, remove, directory sync, read, truncate, ...), not
	// only writes and syncs; AmbiguousChance is, per burst, the chance that
	// a failed call may still have taken effect.
	DiskErrorEveryCall bool
	AmbiguousChance    float64
	// DropPagesChance is, per failed fsync, the chance that the kernel also
	// drops the unsynced pages from its cache.
	DropPagesChance float64
	// LongFullChance is, per full-disk spell, the chance that the disk stays
	// full, with a few KiB free, until healing; SyncNoSpaceChance is the
	// chance that an fsync on a full disk fails with ENOSPC.
	LongFullChance    float64
	SyncNoSpaceChance float64
	// BlackholeChance is, per network fault, the chance that it is a
	// one-way cut on open connections instead of a reset or an isolation.
	BlackholeChance float64
	// SegmentAgeMs is log.roll.ms, short enough that clock faults move
	// segment rolls; ClockJumpMax bounds how far apart two clocks may be
	// after jumps (each jumps to an offset within ±ClockJumpMax/2 of true
	// time), long enough to roll every active segment at once. It stays
	// below producer.id.expiration.ms (a day), measured between a
	// producer's timestamps and the broker's clock, within which the
	// checker holds idempotent producers to no duplicates. Zero without
	// clock faults.
	SegmentAgeMs int64
	ClockJumpMax time.Duration

	// schedule, when set, records the run's fault events or replays only
	// some of them (schedule.go; Config.WithFaultSchedule). It travels in
	// the configuration because a replay is a different run of the seed,
	// and is printed with the options (fault.events) when it replays.
	schedule *FaultSchedule
}

// crashPointCallsLimit bounds CrashPointCallsMax: a few hundred calls is
// several handlers' worth of appends, rolls and checkpoints.
const crashPointCallsLimit = 400

// deriveHarsh draws the harsh options of the enabled fault classes.
func deriveHarsh(r *core.Rand, faults Faults) HarshSpec {
	var h HarshSpec
	if faults[FaultPowerLoss] {
		h.PowerOffChance = r.Float64()
		h.TornZeroTailChance = r.Float64() / 2
		h.TornGarbageTailChance = r.Float64() / 2
		h.StallPowerLossChance = r.Float64()
	}
	if faults[FaultCrash] || faults[FaultPowerLoss] {
		h.CrashPointChance = r.Float64()
		h.CrashPointCallsMax = 1 + r.IntN(crashPointCallsLimit)
	}
	if faults[FaultDiskErrors] {
		h.DiskErrorEveryCall = r.Chance(0.7)
		h.AmbiguousChance = r.Float64()
		h.DropPagesChance = r.Float64()
	}
	if faults[FaultDiskFull] {
		h.LongFullChance = r.Float64() / 2
		h.SyncNoSpaceChance = r.Float64()
	}
	if faults[FaultNetwork] {
		h.BlackholeChance = r.Float64() / 2
	}
	if faults[FaultClock] {
		h.SegmentAgeMs = int64(1000 + r.IntN(30_000))
		h.ClockJumpMax = time.Duration(r.Int64Range(int64(2*time.Second), int64(20*time.Hour)))
	}
	return h
}

type harshLine struct {
	name  string
	value any
}

// lines describes the options that are on, for Config.Lines.
func (h HarshSpec) lines() []harshLine {
	all := []struct {
		harshLine
		on bool
	}{
		{harshLine{"fault.poweroff.chance", h.PowerOffChance}, h.PowerOffChance > 0},
		{harshLine{"fault.powerloss.after-stall.chance", h.StallPowerLossChance}, h.StallPowerLossChance > 0},
		{harshLine{"fault.torn-tail.zero.chance", h.TornZeroTailChance}, h.TornZeroTailChance > 0},
		{harshLine{"fault.torn-tail.garbage.chance", h.TornGarbageTailChance}, h.TornGarbageTailChance > 0},
		{harshLine{"fault.crash-point.chance", h.CrashPointChance}, h.CrashPointChance > 0},
		{harshLine{"fault.crash-point.calls.max", h.CrashPointCallsMax}, h.CrashPointChance > 0},
		{harshLine{"fault.disk-error.every-call", h.DiskErrorEveryCall}, h.DiskErrorEveryCall},
		{harshLine{"fault.disk-error.ambiguous.chance", h.AmbiguousChance}, h.AmbiguousChance > 0},
		{harshLine{"fault.fsync-failure.drop-pages.chance", h.DropPagesChance}, h.DropPagesChance > 0},
		{harshLine{"fault.disk-full.long.chance", h.LongFullChance}, h.LongFullChance > 0},
		{harshLine{"fault.disk-full.fsync-enospc.chance", h.SyncNoSpaceChance}, h.SyncNoSpaceChance > 0},
		{harshLine{"fault.network.one-way.chance", h.BlackholeChance}, h.BlackholeChance > 0},
		{harshLine{"log.roll.ms", h.SegmentAgeMs}, h.SegmentAgeMs > 0},
		{harshLine{"fault.clock.jump.max", h.ClockJumpMax}, h.ClockJumpMax > 0},
		{harshLine{"fault.events", h.keptEvents()}, h.schedule.Replaying()},
	}
	var lines []harshLine
	for _, l := range all {
		if l.on {
			lines = append(lines, l.harshLine)
		}
	}
	return lines
}

// keptEvents renders the fault events a replay keeps, "" without one.
func (h HarshSpec) keptEvents() string {
	if !h.schedule.Replaying() {
		return ""
	}
	return FormatFaultEvents(h.schedule.kept)
}

// diskOptions adds the harsh disk options to opts.
func (h HarshSpec) diskOptions(opts sim.DiskOptions) sim.DiskOptions {
	opts.TornZeroTailProbability = h.TornZeroTailChance
	opts.TornGarbageTailProbability = h.TornGarbageTailChance
	opts.SyncFailureDropPagesProbability = h.DropPagesChance
	opts.SyncNoSpaceProbability = h.SyncNoSpaceChance
	return opts
}

// everyCallOps are the disk calls a burst may fail when DiskErrorEveryCall
// is set.
var everyCallOps = []sim.DiskOp{
	sim.DiskOpCreate, sim.DiskOpOpen, sim.DiskOpWrite, sim.DiskOpRead, sim.DiskOpSync,
	sim.DiskOpTruncate, sim.DiskOpRemove, sim.DiskOpRename, sim.DiskOpMkdir, sim.DiskOpReadDir,
	sim.DiskOpSyncDir, sim.DiskOpRemoveAll, sim.DiskOpSize, sim.DiskOpClose,
}

// armCrashPoint makes the broker crash just before one of its next disk
// calls, inside whatever handler makes it: between the write and the sync
// of an append, the rename and the directory sync of a checkpoint, or in
// the middle of recovery.
func (r *run) armCrashPoint(b *brokerNode, powerLoss bool) {
	if b.down || b.disk.CrashPointArmed() {
		return
	}
	r.stats.CrashPointsArmed++
	callsBefore := r.rand.IntN(r.cfg.Harsh.CrashPointCallsMax + 1)
	r.noteFault("%s point on %s: %s at its disk call %d from now", crashName(powerLoss), b.name, crashName(powerLoss), callsBefore+1)
	b.disk.SetCrashPoint(sim.CrashPoint{
		CallsBefore: callsBefore,
		PowerLoss:   powerLoss,
		OnHit:       func() { r.crashPointHit(b, powerLoss) },
	})
}

// crashPointHit runs after the simulator crashed the broker's host at a
// crash point (and, with power loss, its disk): it books the crash as
// crashBroker does and schedules the restart. The crash may have struck
// during a boot, when the broker was already down.
func (r *run) crashPointHit(b *brokerNode, powerLoss bool) {
	r.stats.BrokerCrashes++
	if powerLoss {
		r.stats.PowerLosses++
	}
	b.down = true
	b.node = nil
	r.quorum.stop(r, b)
	b.host.Restart()
	r.scheduleRestart(b)
}

// blackhole cuts one direction between the broker and a client for a
// while: frames on open connections stop one way, and nobody is told;
// the heal delivers them late, as TCP's retransmission does.
func (r *run) blackhole() {
	nw := r.sched.Network()
	nodes := r.sched.Nodes()
	b := r.pickBroker()
	other := nodes[r.rand.IntN(len(nodes))]
	if other == b.host {
		return
	}
	from, to := b.host, other
	if r.rand.Chance(0.5) {
		from, to = to, from
	}
	nw.Blackhole(from, to)
	length := time.Duration(r.rand.Int64Range(int64(100*time.Millisecond), int64(5*time.Second)))
	r.noteFault("one-way cut from %s to %s for %v", from.Name(), to.Name(), length.Round(time.Millisecond))
	r.sched.After(length, "network-heal", func() {
		if r.phase == phaseSafety {
			nw.HealAll()
		}
	})
}

// stallThenPowerLoss stalls the broker's disk for a while longer than the
// producers' request timeout, so that they time out and retry while their
// batches wait on a stalled fsync, and then fails the power while the
// stalled fsyncs are in flight: right after an idempotent acks=all send is
// acknowledged, once a request timeout has passed in the stall, more than
// a request timeout after it was made (a retry, whose answer may only rest
// on data made durable some other way, such as by a segment roll: one
// given early is then lost before anything else makes it durable), or else
// at most a millisecond before the stall ends. The power loss must strike
// before safetyEnd, when faults stop: it reports false, and stalls
// nothing, when too little of the safety phase is left or the broker is
// paused.
func (r *run) stallThenPowerLoss(b *brokerNode, safetyEnd time.Duration) bool {
	timeout := r.cfg.Workload.produceRequestTimeout()
	shortest := timeout + stallPastTimeoutMin
	longest := min(2*timeout+stallPastTimeoutMax, safetyEnd-r.sched.Now())
	if longest < shortest || b.host.Paused() {
		return false
	}
	if b.down {
		return true
	}
	stall := time.Duration(r.rand.Int64Range(int64(shortest), int64(longest)))
	early := time.Duration(r.rand.Int64Range(int64(time.Microsecond), int64(time.Millisecond)))
	until := r.sched.Now() + stall
	r.sched.Trace("disk-stall %s for=%v power-loss-in=%v", b.name, stall, stall-early)
	r.noteFault("disk of %s stalls for %v, power loss in it", b.name, stall.Round(time.Millisecond))
	b.io.StallUntil(until)
	// The stall replaces a crash point armed before: it has its own.
	b.disk.ClearCrashPoint()
	r.strikeOnRetryAcknowledged(b, until, timeout)
	r.sched.After(stall-early, "fault-powerloss-after-stall", func() { r.strikeStall(b, until, "stall ending") })
	return true
}

// strikeOnRetryAcknowledged makes the stall that ends at until strike as
// soon as an idempotent acks=all send is acknowledged, once a request
// timeout has passed in the stall, more than a request timeout after it
// was made: a retry (or a send that waited behind one).
func (r *run) strikeOnRetryAcknowledged(b *brokerNode, until, timeout time.Duration) {
	armedAt := r.sched.Now() + timeout
	for _, p := range r.producers {
		if p.spec.Acks != -1 || !p.spec.Idempotent {
			continue
		}
		p.acknowledged = func(latency time.Duration) {
			if latency > timeout && r.sched.Now() > armedAt && b.io.StalledUntil() == until {
				// A separate event: the producer's callback is still
				// running.
				r.sched.After(0, "fault-powerloss-in-stall", func() { r.strikeStall(b, until, "a retried acks=all send acknowledged") })
			}
		}
	}
}

// strikeStall fails the power during the stall that ends at until, once:
// nothing happens when that stall is over (its power loss struck, or
// another crash ended it first, which ends a stall too).
func (r *run) strikeStall(b *brokerNode, until time.Duration, cause string) {
	if b.io.StalledUntil() != until || !b.io.Stalling() {
		return
	}
	for _, p := range r.producers {
		p.acknowledged = nil
	}
	if r.phase != phaseSafety {
		return
	}
	r.sched.Trace("power loss in a disk stall: %s", cause)
	r.crashBroker(b, true)
}

// A stall lasts from stallPastTimeoutMin more than the producers' request
// timeout to twice that timeout and stallPastTimeoutMax: long enough for
// the retry backoff (100 ms), a new connection and a few round trips, so
// that a retry reaches the broker while the stall holds its original.
const (
	stallPastTimeoutMin = 500 * time.Millisecond
	stallPastTimeoutMax = time.Second
)
