package scenario

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// Fault names, as --faults takes them.
const (
	FaultCrash      = "crash"       // the broker process is killed; the page cache survives
	FaultPowerLoss  = "powerloss"   // the machine loses power: unsynced data is lost, writes tear
	FaultDiskErrors = "disk-errors" // I/O errors on writes and syncs (a failed sync halts the broker)
	FaultDiskFull   = "disk-full"   // the disk fills up for a while
	FaultBitFlips   = "bitflips"    // reads return a flipped bit now and then
	FaultNetwork    = "network"     // delay, loss (connection breaks), resets, isolated clients
	FaultClients    = "clients"     // client processes crash and restart
	FaultClock      = "clock"       // clocks drift and jump
	FaultCorruption = "corruption"  // synced record batches are damaged at rest: bytes change or become unreadable
	FaultPause      = "pause"       // the broker pauses (a long GC or a stopped VM)
	FaultRetention  = "retention"   // aggressive size retention deletes segments under the clients
	FaultCluster    = "cluster"     // the seed may run a cluster of 3 to 5 nodes instead of one broker (cluster.go)
	FaultPartition  = "partition"   // network partitions between the nodes of a cluster, of every shape (partitions.go)
)

// AllFaults lists every fault, sorted.
var AllFaults = []string{
	FaultBitFlips, FaultClients, FaultClock, FaultCluster, FaultCorruption, FaultCrash, FaultDiskErrors,
	FaultDiskFull, FaultNetwork, FaultPartition, FaultPause, FaultPowerLoss, FaultRetention,
}

// Faults is a set of enabled faults.
type Faults map[string]bool

// ParseFaults reads "none", "all" or a comma-separated list of fault names.
func ParseFaults(s string) (Faults, error) {
	f := Faults{}
	switch s {
	case "none", "":
		return f, nil
	case "all":
		for _, name := range AllFaults {
			f[name] = true
		}
		return f, nil
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !isFault(name) {
			return nil, fmt.Errorf("unknown fault %q (known: none, all, %s)", name, strings.Join(AllFaults, ", "))
		}
		f[name] = true
	}
	return f, nil
}

func isFault(name string) bool {
	for _, known := range AllFaults {
		if known == name {
			return true
		}
	}
	return false
}

// String renders the set as ParseFaults reads it.
func (f Faults) String() string {
	names := f.names()
	if len(names) == 0 {
		return "none"
	}
	if slices.Equal(names, AllFaults) {
		return "all"
	}
	return strings.Join(names, ",")
}

// names returns the enabled fault names in AllFaults order.
func (f Faults) names() []string {
	var names []string
	for _, name := range AllFaults {
		if f[name] {
			names = append(names, name)
		}
	}
	return names
}

// ProducerSpec is one producer of the workload.
type ProducerSpec struct {
	Acks       int16
	Idempotent bool
	Codec      record.Codec
	Linger     time.Duration
	// Interval is the mean time between two produced records.
	Interval time.Duration
}

// ConsumerSpec is one consumer of the workload.
type ConsumerSpec struct {
	// Group subscribes through the consumer group; otherwise the consumer
	// assigns itself every partition from the start.
	Group bool
	// AtMostOnce commits a delivery's positions before processing it;
	// otherwise (at-least-once) it processes, then commits. Group only.
	AtMostOnce bool
}

// Config is everything a run does, derived from its seed and faults.
type Config struct {
	Seed uint64
	// Faults is the set of fault classes the run enables: the requested
	// set, or with swarm testing the subset drawn from it (swarm.go).
	Faults Faults
	// SwarmOf is the requested set that Faults was drawn from by swarm
	// testing (DeriveSwarm), for the printed options; nil when every
	// requested class runs. The run itself reads only Faults.
	SwarmOf Faults `json:",omitempty"`

	Partitions      int32
	FlushPerMessage bool
	// WriteCaching runs the broker in caching mode (log.write.caching):
	// the high watermark is the written log end, not the durable one.
	WriteCaching bool
	// IOLatency is how long a simulated fsync takes, tails included.
	IOLatency sim.IOLatency
	// Harsh holds the fault options that make the simulator at least as
	// harsh as real hardware (harsh.go).
	Harsh HarshSpec
	// Workload is the rest of the workload's shape (workload.go).
	Workload WorkloadSpec
	// Damage is how the run damages stored data at rest (damage.go).
	Damage DamageSpec
	// Cluster is the cluster the run builds; its zero value is one
	// standalone broker (cluster.go).
	Cluster      ClusterSpec
	SegmentBytes int64
	Producers    []ProducerSpec
	Consumers    []ConsumerSpec

	SafetyDuration time.Duration
	// Fault rates: mean time between events of each kind, and
	// probabilities. Zero when the fault is disabled.
	CrashEvery        time.Duration
	DowntimeMax       time.Duration
	DiskErrorEvery    time.Duration
	DiskFullEvery     time.Duration
	ClientCrashEvery  time.Duration
	NetworkFaultEvery time.Duration
	PauseEvery        time.Duration
	TornWriteChance   float64
	BitFlipChance     float64
	LossChance        float64
	DelayMax          time.Duration
	ClockDriftPPMMax  int64
	// RetentionBytes and RetentionCheck are log.retention.bytes and
	// log.retention.check.interval.ms; 0 when retention is off.
	RetentionBytes int64
	RetentionCheck time.Duration

	// promiseDurable marks every acknowledged write durable whatever the
	// flush policy: tests use it to break the promise on purpose and prove
	// the checker notices.
	promiseDurable bool
}

// Derive draws a run's configuration from its seed, swarm style: each
// enabled fault gets its own rate, and the workload its own shape. Every
// fault of faults is enabled; DeriveSwarm (swarm.go) enables a subset.
func Derive(seed uint64, faults Faults) Config {
	r := core.NewRand(seed)
	c := Config{Seed: seed, Faults: faults}
	c.Partitions = int32(1 + r.IntN(4))
	// Power loss no longer forces a flush per message: the default
	// settings (durable mode, no flush interval) must survive it too.
	c.FlushPerMessage = r.Chance(0.3)
	c.SegmentBytes = int64(4096 << r.IntN(6))
	c.SafetyDuration = time.Duration(10+r.IntN(21)) * time.Second
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	for range 1 + r.IntN(3) {
		p := ProducerSpec{
			Idempotent: r.Chance(0.5),
			Codec:      codecs[r.IntN(len(codecs))],
			Linger:     time.Duration(r.IntN(10)) * time.Millisecond,
			Interval:   time.Duration(2+r.IntN(40)) * time.Millisecond,
		}
		p.Acks = []int16{-1, 1, 0}[r.IntN(3)]
		if p.Idempotent {
			p.Acks = -1
		}
		c.Producers = append(c.Producers, p)
	}
	// The group's delivery promise is one for all its members: at-most-once
	// (commit, then process) or at-least-once (process, then commit).
	atMostOnce := r.Chance(0.3)
	for range r.IntN(3) {
		group := r.Chance(0.6)
		c.Consumers = append(c.Consumers, ConsumerSpec{Group: group, AtMostOnce: group && atMostOnce})
	}
	every := func(name string, low, high int) time.Duration {
		if !faults[name] {
			return 0
		}
		return time.Duration(low+r.IntN(high-low+1)) * time.Second
	}
	c.CrashEvery = every(FaultCrash, 1, 6)
	if faults[FaultPowerLoss] {
		// Power loss rides on the same crash schedule.
		c.CrashEvery = time.Duration(1+r.IntN(6)) * time.Second
		c.TornWriteChance = r.Float64()
	}
	c.DowntimeMax = time.Duration(100+r.IntN(3000)) * time.Millisecond
	c.DiskErrorEvery = every(FaultDiskErrors, 1, 6)
	c.DiskFullEvery = every(FaultDiskFull, 1, 8)
	c.ClientCrashEvery = every(FaultClients, 1, 8)
	c.NetworkFaultEvery = every(FaultNetwork, 1, 5)
	c.PauseEvery = every(FaultPause, 1, 8)
	if faults[FaultBitFlips] {
		c.BitFlipChance = r.Float64() * 0.01
	}
	if faults[FaultNetwork] {
		c.LossChance = r.Float64() * 0.002
		c.DelayMax = time.Duration(r.IntN(20)) * time.Millisecond
	}
	if faults[FaultClock] {
		c.ClockDriftPPMMax = int64(r.IntN(20_000))
	}
	// Drawn last, so that enabling it leaves every earlier choice of a
	// seed unchanged.
	if faults[FaultRetention] {
		c.RetentionBytes = 16 << 10 << r.IntN(4)
		c.RetentionCheck = time.Duration(200+r.IntN(1800)) * time.Millisecond
	}
	c.WriteCaching = r.Chance(0.2)
	if c.WriteCaching && faults[FaultPowerLoss] {
		// In caching mode a consumer may read a record that a power loss
		// then takes, and see another at its offset later. The checker
		// cannot yet tell such a read from a broken log (it would need the
		// simulator's record of when the power failed), so caching mode
		// meets power loss only with a flush per message, which makes a
		// record durable before anyone can read it.
		c.FlushPerMessage = true
	}
	c.IOLatency = deriveIOLatency(r)
	c.Harsh = deriveHarsh(r, faults)
	if c.WriteCaching && c.dropsPages() {
		// The same holds for a failed fsync that drops the unsynced pages
		// (phases.go): a consumer may have read what the failure takes.
		// Under "all" power loss always came with disk errors until swarm
		// testing ran them apart (sim seed 500636: caching mode and disk
		// errors without power loss, a read record's offset reused).
		c.FlushPerMessage = true
	}
	c.Workload = deriveWorkload(r)
	// Drawn last, so that enabling it leaves every earlier choice of a
	// seed unchanged.
	c.Damage = deriveDamage(r, faults)
	// From its own stream: a seed that runs one broker runs exactly as it
	// did before clusters existed.
	c.Cluster = deriveCluster(seed, faults)
	if c.Cluster.Nodes > 0 {
		c.Partitions = clusterPartitions(seed, c.Partitions)
	}
	return c
}

// Partition counts of cluster seeds: issue 10 asks for up to about 16
// partitions with RF 3, where failover elects a leader per partition and
// the controller's metadata, the followers' fetches and the ISR changes
// grow with the count. A share of the cluster seeds draws 5 to 16; the
// others keep the 1 to 4 every seed draws, which keeps the sweeps' wall
// time in bounds.
const (
	clusterManyPartitionsChance = 0.3
	clusterPartitionsMin        = 5
	clusterPartitionsMax        = 16
)

// clusterPartitionsStreamSalt gives the cluster's partition count a random
// stream of its own, so that neither Derive's draws nor deriveCluster's
// shift, and a single-broker seed runs as before.
const clusterPartitionsStreamSalt = 0x7061727469742d73

// clusterPartitions returns the partition count of a cluster seed whose
// base draw was drawn.
func clusterPartitions(seed uint64, drawn int32) int32 {
	r := core.NewRand(seed ^ clusterPartitionsStreamSalt)
	if !r.Chance(clusterManyPartitionsChance) {
		return drawn
	}
	return int32(clusterPartitionsMin + r.IntN(clusterPartitionsMax-clusterPartitionsMin+1))
}

// deriveIOLatency draws a disk's fsync latency: a median from 20 µs (a
// battery-backed cache) to 5 ms (a busy network volume), and in most runs a
// heavy tail of up to two seconds (a stalled device), which acks=all
// producers must sit out without losing or duplicating anything.
func deriveIOLatency(r *core.Rand) sim.IOLatency {
	l := sim.IOLatency{Median: time.Duration(r.Int64Range(int64(20*time.Microsecond), int64(5*time.Millisecond)))}
	l.Min = l.Median / time.Duration(1+r.IntN(10))
	if r.Chance(0.8) {
		l.TailOneIn = r.Int64Range(20, 2000)
		l.TailMax = l.Median + time.Duration(r.Int64Range(int64(10*time.Millisecond), int64(2*time.Second)))
	}
	return l
}

// faultsLine names the enabled faults, and the set they were swarmed
// from, if they were.
func (c Config) faultsLine() string {
	if c.SwarmOf == nil {
		return fmt.Sprintf("faults=%s", c.Faults)
	}
	return fmt.Sprintf("faults=%s (swarm: %d of the %d classes of %s)", c.Faults, len(c.Faults.names()), len(c.SwarmOf.names()), c.SwarmOf)
}

// optionLine is one option for Lines, printed when on.
type optionLine struct {
	name  string
	value any
	on    bool
}

// Lines describes every option, one "name=value" per line, sorted: what a
// user needs to see what the seed chose.
func (c Config) Lines() []string {
	lines := []string{
		fmt.Sprintf("seed=%d", c.Seed),
		c.faultsLine(),
		fmt.Sprintf("partitions=%d", c.Partitions),
		fmt.Sprintf("log.flush.interval.messages=%s", map[bool]string{true: "1", false: "never"}[c.FlushPerMessage]),
		fmt.Sprintf("log.segment.bytes=%d", c.SegmentBytes),
		fmt.Sprintf("safety.duration=%v", c.SafetyDuration),
	}
	for i, p := range c.Producers {
		lines = append(lines, fmt.Sprintf("producer.%d=acks:%d idempotent:%v codec:%s linger:%v interval:%v",
			i, p.Acks, p.Idempotent, p.Codec, p.Linger, p.Interval))
	}
	for i, cs := range c.Consumers {
		mode := "assign"
		if cs.Group {
			mode = "group/at-least-once"
			if cs.AtMostOnce {
				mode = "group/at-most-once"
			}
		}
		lines = append(lines, fmt.Sprintf("consumer.%d=%s", i, mode))
	}
	rates := []optionLine{
		{"fault.crash.every", c.CrashEvery, c.CrashEvery > 0},
		{"fault.downtime.max", c.DowntimeMax, c.CrashEvery > 0},
		{"fault.torn-write.chance", c.TornWriteChance, c.Faults[FaultPowerLoss]},
		{"fault.disk-error.every", c.DiskErrorEvery, c.DiskErrorEvery > 0},
		{"fault.disk-full.every", c.DiskFullEvery, c.DiskFullEvery > 0},
		{"fault.bitflip.chance", c.BitFlipChance, c.Faults[FaultBitFlips]},
		{"fault.client-crash.every", c.ClientCrashEvery, c.ClientCrashEvery > 0},
		{"fault.network.every", c.NetworkFaultEvery, c.NetworkFaultEvery > 0},
		{"fault.network.loss", c.LossChance, c.Faults[FaultNetwork]},
		{"fault.network.delay.max", c.DelayMax, c.Faults[FaultNetwork]},
		{"fault.pause.every", c.PauseEvery, c.PauseEvery > 0},
		{"fault.clock.drift.ppm.max", c.ClockDriftPPMMax, c.Faults[FaultClock]},
		{"log.retention.bytes", c.RetentionBytes, c.RetentionBytes > 0},
		{"log.write.caching", c.WriteCaching, true},
		{"disk.fsync.latency", fmt.Sprintf("min:%v median:%v tail:1/%d max:%v", c.IOLatency.Min, c.IOLatency.Median, c.IOLatency.TailOneIn, c.IOLatency.TailMax), true},
		{"log.retention.check.interval", c.RetentionCheck, c.RetentionBytes > 0},
	}
	rates = append(rates,
		optionLine{"workload.oversize.one-in", c.Workload.OversizeOneIn, c.Workload.OversizeOneIn > 0},
		optionLine{"workload.commit-read.every", c.Workload.CommitReadEvery, c.Workload.CommitReadEvery > 0},
		optionLine{"workload.key.bytes", c.Workload.KeyBytes, c.Workload.KeyBytes > 0},
		optionLine{"workload.time-lookup.one-in", c.Workload.TimeLookupOneIn, c.Workload.TimeLookupOneIn > 0},
		optionLine{"producer.request.timeout", c.Workload.ProduceRequestTimeout, c.Workload.ProduceRequestTimeout > 0},
		optionLine{"workload.rejoin.every", c.Workload.RejoinEvery, c.Workload.RejoinEvery > 0},
		optionLine{"workload.zombie.every", c.Workload.ZombieEvery, c.Workload.ZombieEvery > 0})
	for i, m := range c.Workload.Members {
		rates = append(rates, optionLine{fmt.Sprintf("workload.member.%d", i),
			fmt.Sprintf("auto-commit:%v commit-on-revoke:%v max.poll.records:%d", m.AutoCommitInterval, m.CommitOnRevoke, m.MaxPollRecords), true})
	}
	rates = append(rates, c.Damage.lines()...)
	rates = append(rates, c.Cluster.lines()...)
	for _, line := range c.Harsh.lines() {
		rates = append(rates, optionLine{line.name, line.value, true})
	}
	for _, rate := range rates {
		if rate.on {
			lines = append(lines, fmt.Sprintf("%s=%v", rate.name, rate.value))
		}
	}
	sort.Strings(lines[6:])
	return lines
}
