package scenario

import (
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
	Err         error
	Stats       Stats
	TraceHash   string
	Events      uint64
	VirtualTime time.Duration
}

// Passed reports whether every property held.
func (r *Result) Passed() bool { return r.Err == nil && r.Check.Status == checker.StatusOK }

// Verdict is the one-line summary.
func (r *Result) Verdict() string {
	if r.Err != nil {
		return "FAIL: " + r.Err.Error()
	}
	return r.Check.Verdict
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

	host      *sim.Node
	disk      *sim.Disk
	io        *sim.IO
	node      *broker.Node
	brokerCfg broker.Config
	down      bool

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
	r := &run{cfg: cfg, opts: opts, sched: sim.NewScheduler(cfg.Seed)}
	r.rand = r.sched.ForkRand()
	r.sched.SetEventsMax(runEventsMax)
	if opts.Trace != nil {
		r.sched.SetTraceWriter(opts.Trace)
	}
	r.err = r.execute()
	if r.io != nil {
		r.stats.IO = r.io.Stats()
	}
	if r.disk != nil {
		r.stats.Disk = r.disk.Stats()
	}
	r.stats.Network = r.sched.Network().Stats()
	result := Result{
		Config: cfg, Err: r.err, Stats: r.stats, TraceHash: r.sched.TraceHash(),
		Events: r.sched.EventsExecuted(), VirtualTime: r.sched.Now(),
	}
	result.History = r.recorder.history(r.sched.Now())
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
	return result
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
	r.phase = phaseDrain
	if err := r.drain(); err != nil {
		return err
	}
	r.phase = phaseDone
	return nil
}

// startBroker adds the broker's host with its disk and boots the node.
func (r *run) startBroker() error {
	r.host = r.sched.AddNode(brokerName, sim.NodeOptions{})
	// One IO for every incarnation: a crash drops the completions pending
	// on the host's clock, so the jobs in flight never ran.
	r.io = sim.NewIO(r.host, r.sched.ForkRand(), r.cfg.IOLatency)
	r.disk = sim.NewDisk(r.sched.ForkRand(), r.cfg.Harsh.diskOptions(sim.DiskOptions{
		TornWriteProbability:   r.cfg.TornWriteChance,
		ReadBitFlipProbability: r.cfg.BitFlipChance,
	}))
	// Bound to its host for crash points; installed as a plain FS (below)
	// so that a process crash keeps the page cache.
	r.disk.Bind(r.host)
	// The disk is installed as a plain FS so that a process crash keeps
	// the page cache; power loss calls disk.Crash explicitly.
	r.host.SetFS(r.disk)
	r.disk.Stall = r.host.Stall
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
	return r.bootBroker()
}

// bootBroker builds the node from what the disk holds, as a process start
// does. A boot that fails (a disk error during recovery) is retried later.
func (r *run) bootBroker() error {
	env := r.host.Env()
	env.IO = r.io
	if r.opts.Log != nil {
		env.Log = slog.New(slog.NewTextHandler(r.opts.Log, nil))
	}
	node, err := broker.New(env, r.brokerCfg)
	if err == nil {
		err = node.Start()
	}
	if err != nil {
		r.sched.Trace("broker boot failed: %v", err)
		r.stats.BootFailures++
		r.down = true
		r.host.Crash()
		r.host.Restart()
		r.sched.After(time.Second, "broker-reboot", func() { r.rebootBroker() })
		return nil
	}
	r.node, r.down = node, false
	node.OnHalt = func(err error) {
		r.sched.Trace("broker halted: %v", err)
		r.stats.BrokerHalts++
		r.sched.After(0, "broker-halt-crash", func() { r.crashBroker(false) })
	}
	return nil
}

// crashBroker kills the broker process (and with power loss, the machine)
// and schedules its restart.
func (r *run) crashBroker(powerLoss bool) {
	if r.down {
		return
	}
	r.down = true
	r.node = nil
	r.disk.ClearCrashPoint()
	if powerLoss && r.rand.Chance(r.cfg.Harsh.PowerOffChance) {
		// The machine goes silent: its peers see no reset and must find
		// out through their own timeouts.
		r.host.PowerOff()
	} else {
		r.host.Crash()
	}
	r.stats.BrokerCrashes++
	if powerLoss {
		r.disk.Crash()
		r.stats.PowerLosses++
	}
	r.host.Restart()
	r.scheduleRestart()
}

// scheduleRestart boots the broker again after a drawn downtime.
func (r *run) scheduleRestart() {
	downtime := time.Duration(r.rand.Int64Range(int64(10*time.Millisecond), int64(max(r.cfg.DowntimeMax, 20*time.Millisecond))))
	r.sched.After(downtime, "broker-restart", func() { r.rebootBroker() })
}

func (r *run) rebootBroker() {
	if !r.down {
		return
	}
	if err := r.bootBroker(); err != nil {
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
