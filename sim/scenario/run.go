package scenario

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// Bounds of a run, in virtual time and events.
const (
	setupTimeMax  = 30 * time.Second
	healTimeMax   = 3 * time.Minute
	drainTimeMax  = 2 * time.Minute
	runEventsMax  = 50_000_000
	topicName     = "sim"
	groupName     = "sim-group"
	brokerName    = "broker"
	brokerAddress = brokerName + ":9092"
)

// Result is the outcome of one run.
type Result struct {
	Config  Config
	History checker.History
	Check   checker.Result
	// Err is set when the run itself failed to make progress (setup never
	// finished, the cluster did not heal or the drain did not complete in
	// its bound): a liveness failure, reported as a failed verdict.
	Err error
	// Progress is set when, after healing, a partition did not acknowledge
	// the probe's write (probe.go): a liveness failure found before the
	// drain, which still runs so that the checker judges the whole history.
	Progress error
	// Quorum is the controller quorum's verdict (CheckQuorum) in a
	// cluster run, nil for a single broker.
	Quorum *checker.QuorumResult
	// QuorumHistory is what the cluster's nodes recorded about the quorum,
	// nil for a single broker.
	QuorumHistory *checker.QuorumHistory
	// HealTime is when the heal phase began, or -1 when the run never
	// got there.
	HealTime    time.Duration
	Stats       Stats
	TraceHash   string
	Events      uint64
	VirtualTime time.Duration
}

// Passed reports whether every property held.
func (r *Result) Passed() bool {
	return r.Err == nil && r.Progress == nil && r.Check.Status == checker.StatusOK && (r.Quorum == nil || r.Quorum.Status == checker.StatusOK)
}

// Verdict is the one-line summary: the clients' verdict, then in a cluster
// run the quorum's.
func (r *Result) Verdict() string {
	if r.Err != nil {
		return "FAIL: " + r.Err.Error()
	}
	if r.Progress != nil {
		line := "FAIL: " + r.Progress.Error() + "; clients " + r.Check.Verdict
		if r.Quorum != nil {
			line += "; quorum " + r.Quorum.Verdict
		}
		return line
	}
	if r.Quorum == nil {
		return r.Check.Verdict
	}
	if r.Check.Status == checker.StatusOK && r.Quorum.Status != checker.StatusOK {
		return "FAIL: quorum " + r.Quorum.Verdict + "; clients " + r.Check.Verdict
	}
	return r.Check.Verdict + "; quorum " + r.Quorum.Verdict
}

// Stats count what happened in a run, so that a sweep can show its faults
// really struck.
type Stats struct {
	BrokerCrashes, PowerLosses, BrokerHalts, BootFailures                 int
	ClientCrashes, NetworkFaults, DiskErrorBursts, DiskFullSpells, Pauses int
	Acknowledged, Indefinite, Failed, Polled                              int
	// RetainedFrom sums the partitions' final log start offsets: how many
	// offsets retention deleted.
	RetainedFrom int64
	// IO is what the broker's simulated fsyncs did: how many ran, how many
	// drew a latency from the heavy tail, the longest one.
	IO sim.IOStats
	// CrashPointsArmed counts crashes aimed inside a handler (Disk counts
	// those that struck); LongDiskFullSpells counts disks left full until
	// healing.
	CrashPointsArmed, LongDiskFullSpells int
	// NetworkPartitions counts the cluster's network partitions by shape
	// (partitions.go).
	NetworkPartitions [partitionShapeCount]int
	// Damages counts record batches damaged at rest (damage.go).
	Damages int
	// Disk and Network are the effects the simulated disk and network
	// caused, for the strike test.
	Disk    sim.DiskStats
	Network sim.NetworkStats
}

// Options are knobs that do not change what a run does.
type Options struct {
	// Trace, if set, receives the human-readable event trace.
	Trace io.Writer
	// Log, if set, receives the nodes' structured logs.
	Log io.Writer
}

// run is the state of one simulation.
type run struct {
	cfg   Config
	opts  Options
	sched *sim.Scheduler
	rand  *core.Rand
	phase phase
	// healTime is when the heal phase began, or -1 before; readyTime is
	// when the healed cluster was ready (heal), or -1 before.
	healTime  time.Duration
	readyTime time.Duration
	// progress is the probe's failure (Result.Progress).
	progress error

	// brokers are the run's broker nodes: one standalone broker, or a
	// cluster (cluster.go).
	brokers []*brokerNode
	// brokerCfg is the configuration every broker shares; a cluster node
	// adds its id, listeners and roles (clusterConfig).
	brokerCfg broker.Config
	// quorum records the cluster's controller quorum, nil for a single
	// broker (quorum.go).
	quorum *quorumRecording

	producers []*producerActor
	consumers []*consumerActor
	recorder  recorder
	stats     Stats
	err       error
}

type phase int

const (
	phaseSetup phase = iota
	phaseSafety
	phaseHeal
	phaseDrain
	phaseDone
)

// Run executes one simulation and checks its history.
func Run(cfg Config, opts Options) Result {
	r := &run{cfg: cfg, opts: opts, sched: sim.NewScheduler(cfg.Seed), healTime: -1, readyTime: -1}
	r.rand = r.sched.ForkRand()
	r.sched.SetEventsMax(runEventsMax)
	if opts.Trace != nil {
		r.sched.SetTraceWriter(opts.Trace)
	}
	r.err = r.execute()
	r.sumBrokerStats()
	r.stats.Network = r.sched.Network().Stats()
	result := Result{
		Config: cfg, Err: r.err, Stats: r.stats, TraceHash: r.sched.TraceHash(),
		Events: r.sched.EventsExecuted(), VirtualTime: r.sched.Now(), HealTime: r.healTime, Progress: r.progress,
	}
	result.History = r.recorder.history(r.sched.Now())
	result.History.Replication = r.replication() // after the trace hash: reading the disks traces nothing
	result.Err = cmp.Or(result.Err, r.err)
	for _, e := range result.History.Ends {
		result.Stats.RetainedFrom += e.Start
	}
	for _, op := range result.History.Ops {
		switch {
		case op.Kind == checker.KindPoll:
			result.Stats.Polled += len(op.Poll.Records)
		case op.Kind != checker.KindProduce:
		case op.Outcome == checker.OutcomeOK:
			result.Stats.Acknowledged++
		case op.Outcome == checker.OutcomeFail:
			result.Stats.Failed++
		default:
			result.Stats.Indefinite++
		}
	}
	result.Check = checker.Check(&result.History, checker.Options{})
	result.Quorum = r.quorum.check(r.healTime, r.sched.Now())
	if r.quorum != nil {
		result.QuorumHistory = r.quorum.recorder.History()
	}
	return result
}

// sumBrokerStats adds up what every broker's disk and fsyncs did.
func (r *run) sumBrokerStats() {
	for _, b := range r.brokers {
		io, disk := b.io.Stats(), b.disk.Stats()
		s := &r.stats
		s.IO.Submitted += io.Submitted
		s.IO.Completed += io.Completed
		s.IO.Tail += io.Tail
		s.IO.LatencyMax = max(s.IO.LatencyMax, io.LatencyMax)
		s.IO.Stalled += io.Stalled
		s.IO.Cancelled += io.Cancelled
		s.IO.CancelledStalled += io.CancelledStalled
		if len(r.brokers) == 1 {
			s.Disk = disk
			return
		}
		addDiskStats(&s.Disk, disk)
	}
}

// addDiskStats adds d to sum, field by field.
func addDiskStats(sum *sim.DiskStats, d sim.DiskStats) {
	for i := range d.CallsFailed {
		sum.CallsFailed[i] += d.CallsFailed[i]
	}
	for i := range d.TornTails {
		sum.TornTails[i] += d.TornTails[i]
	}
	sum.CallsFailedTookEffect += d.CallsFailedTookEffect
	sum.WritesNoSpace += d.WritesNoSpace
	sum.WriteBytesRefused += d.WriteBytesRefused
	sum.SyncsNoSpace += d.SyncsNoSpace
	sum.SyncsLostData += d.SyncsLostData
	sum.PagesDropped += d.PagesDropped
	sum.BytesDropped += d.BytesDropped
	sum.ReadBitFlips += d.ReadBitFlips
	sum.ReadsCorrupted += d.ReadsCorrupted
	sum.BytesReadCorrupted += d.BytesReadCorrupted
	sum.LatentReadsFailed += d.LatentReadsFailed
	sum.TornTailBytes += d.TornTailBytes
	sum.CrashPointsHit += d.CrashPointsHit
	sum.Crashes += d.Crashes
}

func (r *run) execute() error {
	if err := r.sched.Network().SetDefaultLink(sim.LinkConfig{DelayMin: 50 * time.Microsecond, DelayMax: 500 * time.Microsecond}); err != nil {
		return err
	}
	if err := r.startBroker(); err != nil {
		return err
	}
	if err := r.setup(); err != nil {
		return err
	}
	r.phase = phaseSafety
	r.startClients()
	r.scheduleFaults()
	r.every(r.cfg.Damage.Every, "fault-damage", r.damageStoredData)
	if err := r.sched.RunFor(r.cfg.SafetyDuration); err != nil {
		return err
	}
	r.phase = phaseHeal
	if err := r.heal(); err != nil {
		return err
	}
	if err := r.probe(); err != nil {
		if r.err != nil {
			return err // the harness failed, not the cluster
		}
		r.progress = err
	}
	r.phase = phaseDrain
	if err := r.drain(); err != nil {
		return err
	}
	if err := r.waitLivenessBound(); err != nil {
		return err
	}
	r.phase = phaseDone
	return nil
}

// waitLivenessBound runs a cluster until the quorum's liveness bound after
// the heal has passed, so that the quorum checker can judge liveness.
func (r *run) waitLivenessBound() error {
	if r.quorum == nil {
		return nil
	}
	bound := r.healTime + QuorumLivenessBound
	if r.sched.Now() >= bound {
		return nil
	}
	return r.sched.RunFor(bound - r.sched.Now())
}

// startBroker adds the brokers' hosts with their disks and boots them.
func (r *run) startBroker() error {
	r.addBrokerNodes()
	cfg := broker.DefaultConfig()
	cfg.Listeners = []string{brokerAddress}
	cfg.LogDir = "data"
	cfg.NumPartitions = r.cfg.Partitions
	cfg.AutoCreateTopics = false
	cfg.SegmentBytes = r.cfg.SegmentBytes
	cfg.GroupInitialRebalanceDelayMs = 0
	if r.cfg.FlushPerMessage {
		cfg.FlushIntervalMessages = 1
	}
	cfg.WriteCaching = r.cfg.WriteCaching
	if r.cfg.Harsh.SegmentAgeMs > 0 {
		cfg.SegmentMs = r.cfg.Harsh.SegmentAgeMs
	}
	if r.cfg.RetentionBytes > 0 {
		cfg.RetentionBytes = r.cfg.RetentionBytes
		cfg.RetentionCheckIntervalMs = r.cfg.RetentionCheck.Milliseconds()
	}
	r.brokerCfg = cfg
	if r.clustered() {
		r.quorum = newQuorumRecording(r.cfg.Cluster)
	}
	for _, b := range r.brokers {
		b.cfg = r.clusterConfig(cfg, b)
		if err := r.bootBroker(b); err != nil {
			return err
		}
	}
	return nil
}

// bootBroker builds the node from what the disk holds, as a process start
// does. A boot that fails (a disk error during recovery) is retried later.
func (r *run) bootBroker(b *brokerNode) error {
	env := b.host.Env()
	env.IO = b.io
	if r.opts.Log != nil {
		env.Log = slog.New(slog.NewTextHandler(r.opts.Log, nil))
	}
	node, err := broker.New(env, b.cfg)
	if err == nil {
		r.quorum.start(r, b, node)
		err = node.Start()
	}
	if err != nil {
		r.sched.Trace("broker boot failed: %v", err)
		r.quorum.stop(r, b)
		r.stats.BootFailures++
		b.down = true
		b.host.Crash()
		b.host.Restart()
		r.sched.After(time.Second, "broker-reboot", func() { r.rebootBroker(b) })
		return nil
	}
	b.node, b.down = node, false
	node.OnHalt = func(err error) {
		r.sched.Trace("broker halted: %v", err)
		r.stats.BrokerHalts++
		r.sched.After(0, "broker-halt-crash", func() { r.crashBroker(b, false) })
	}
	return nil
}

// crashBroker kills the broker process (and with power loss, the machine)
// and schedules its restart.
func (r *run) crashBroker(b *brokerNode, powerLoss bool) {
	if b.down {
		return
	}
	b.down = true
	b.node = nil
	r.quorum.stop(r, b)
	b.disk.ClearCrashPoint()
	if powerLoss && r.rand.Chance(r.cfg.Harsh.PowerOffChance) {
		// The machine goes silent: its peers see no reset and must find
		// out through their own timeouts.
		b.host.PowerOff()
	} else {
		b.host.Crash()
	}
	r.stats.BrokerCrashes++
	if powerLoss {
		b.disk.Crash()
		r.stats.PowerLosses++
	}
	b.host.Restart()
	r.scheduleRestart(b)
}

// scheduleRestart boots the broker again after a drawn downtime.
func (r *run) scheduleRestart(b *brokerNode) {
	downtime := time.Duration(r.rand.Int64Range(int64(10*time.Millisecond), int64(max(r.cfg.DowntimeMax, 20*time.Millisecond))))
	r.sched.After(downtime, "broker-restart", func() { r.rebootBroker(b) })
}

func (r *run) rebootBroker(b *brokerNode) {
	if !b.down {
		return
	}
	if err := r.bootBroker(b); err != nil {
		r.fail(fmt.Errorf("broker reboot: %w", err))
	}
}

func (r *run) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// runUntil runs the scheduler until done() or until limit passes.
func (r *run) runUntil(limit time.Duration, what string, done func() bool) error {
	deadline := r.sched.Now() + limit
	err := r.sched.RunWhile(func() bool { return !done() && r.sched.Now() < deadline && r.err == nil })
	if err != nil {
		return err
	}
	if r.err != nil {
		return r.err
	}
	if !done() {
		return fmt.Errorf("no progress: %s did not finish within %v of virtual time", what, limit)
	}
	return nil
}
