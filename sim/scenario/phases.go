package scenario

import (
	"fmt"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/sim"
)

// durable reports whether an acknowledged write with these acks is promised
// to survive every fault of the run. This is the promise table of
// docs/durability.md, from the configuration alone:
//
//	                      no power loss   power loss, or a failed fsync that drops pages
//	durable, acks=all     kept            kept
//	durable, acks=1       kept            may be lost (unless flushed per message)
//	caching, acks=1/all   kept            may be lost (unless flushed per message)
//	replicated, acks=1    may be lost     may be lost
//
// A process crash keeps the page cache, so only power loss, or a failed
// fsync after which the kernel dropped the dirty pages, can take an
// acknowledged write that was written but not synced.
func (r *run) durable(acks int16) bool {
	switch {
	case acks == 0:
		return false
	case acks == 1 && r.cfg.Cluster.replicationFactor() > 1:
		// The leader alone had it: a leader change (a crash, a partition
		// that isolates it) lets followers that never fetched it truncate
		// it away, whatever the disks do (docs/durability.md).
		return false
	case r.cfg.promiseDurable, r.cfg.FlushPerMessage, !r.cfg.Faults[FaultPowerLoss] && !r.cfg.dropsPages():
		return true
	}
	return acks == -1 && !r.cfg.WriteCaching
}

// dropsPages reports whether a failed fsync may also drop the unsynced
// pages from the page cache, as Linux may: then what was written but not
// synced can vanish without any power loss, and the node's restart finds
// only what was synced (sim seeds 700545, 700636 and 700851, the first
// swarm sweep: with disk errors but no power loss, acks=1 and caching-mode
// writes were promised and lost).
func (c Config) dropsPages() bool {
	return c.Faults[FaultDiskErrors] && c.Harsh.DropPagesChance > 0
}

// uncleanConfig is Kafka's topic setting for unclean leader election.
const uncleanConfig = "unclean.leader.election.enable"

// setup creates the topic through an admin client, before any fault.
func (r *run) setup() error {
	host := r.sched.AddNode("admin", sim.NodeOptions{})
	cluster, err := client.NewCluster(host.Env(), client.ClusterConfig{Bootstrap: r.bootstrap(), ClientID: "admin"})
	if err != nil {
		return err
	}
	defer cluster.Close()
	// Partitions go to the unfenced brokers: a cluster waits for all of
	// them, so that the topic spreads over every node.
	if err := r.waitClusterReady(setupTimeMax, "every broker registered and unfenced"); err != nil {
		return err
	}
	admin := client.NewAdmin(cluster)
	created := false
	var attempt func()
	attempt = func() {
		spec := client.TopicSpec{Topic: topicName, Partitions: r.cfg.Partitions, ReplicationFactor: r.cfg.Cluster.replicationFactor()}
		if r.cfg.Cluster.UncleanElection {
			spec.Configs = map[string]string{uncleanConfig: "true"}
		}
		admin.CreateTopics([]client.TopicSpec{spec}, func(errs []client.TopicError, err error) {
			if err == nil && len(errs) == 1 && errs[0].Err == nil {
				created = true
				return
			}
			host.AfterFunc(100*time.Millisecond, attempt)
		})
	}
	attempt()
	if err := r.runUntil(setupTimeMax, "creating the topic", func() bool { return created }); err != nil {
		return err
	}
	return nil
}

// startClients adds a host per producer and consumer and starts them.
func (r *run) startClients() {
	clientID := 0
	for i, spec := range r.cfg.Producers {
		p := &producerActor{r: r, index: i, clientID: clientID, spec: spec}
		clientID++
		p.host = r.sched.AddNode(p.name(), sim.NodeOptions{ClockDriftPPM: r.drift()})
		r.producers = append(r.producers, p)
		p.start()
	}
	for i, spec := range r.cfg.Consumers {
		if spec.Group && len(r.recorder.groups) == 0 {
			delivery := checker.DeliveryAtLeastOnce
			if spec.AtMostOnce {
				delivery = checker.DeliveryAtMostOnce
			}
			r.recorder.groups = append(r.recorder.groups, checker.GroupPromise{Group: groupName, Delivery: delivery})
		}
		c := &consumerActor{r: r, index: i, clientID: clientID, spec: spec}
		clientID++
		c.host = r.sched.AddNode(c.name(), sim.NodeOptions{ClockDriftPPM: r.drift()})
		r.consumers = append(r.consumers, c)
		c.start()
	}
}

func (r *run) drift() int64 {
	if r.cfg.ClockDriftPPMMax == 0 {
		return 0
	}
	return r.rand.Int64Range(-r.cfg.ClockDriftPPMMax, r.cfg.ClockDriftPPMMax)
}

// heal stops every fault, restarts the broker if it is down, stops the
// producers and waits until every produce has an outcome.
func (r *run) heal() error {
	r.sched.Network().HealAll()
	if err := r.sched.Network().SetDefaultLink(sim.LinkConfig{DelayMin: 50 * time.Microsecond, DelayMax: 500 * time.Microsecond}); err != nil {
		return err
	}
	r.healTime = r.sched.Now()
	for _, b := range r.brokers {
		b.disk.ClearFaults()
		b.disk.ClearCrashPoint()
		b.disk.SetCapacity(0)
		if b.host.Paused() {
			b.host.Resume()
		}
	}
	for _, p := range r.producers {
		p.restart()
	}
	for _, c := range r.consumers {
		c.restart()
	}
	for _, b := range r.brokers {
		if b.down {
			r.rebootBroker(b)
		}
	}
	settled := func() bool {
		if r.anyDown() {
			return false
		}
		for _, p := range r.producers {
			if p.producer != nil && p.inflight > 0 {
				return false
			}
		}
		return true
	}
	if err := r.runUntil(healTimeMax, "healing (every produce answered)", settled); err != nil {
		return err
	}
	// A cluster must also have taken every broker back and given every
	// partition a leader within the quorum's liveness bound, or the drain
	// would find partitions it cannot read.
	bound := r.healTime + QuorumLivenessBound - r.sched.Now()
	if err := r.waitClusterReady(max(bound, 0), "after healing, every broker unfenced and every partition led", topicName); err != nil {
		return err
	}
	r.readyTime = r.sched.Now()
	return nil
}

// waitClusterReady runs a cluster until its committed metadata has every
// broker unfenced and each of topics led on every partition, failing with
// what is missing after limit. A single broker is always ready.
func (r *run) waitClusterReady(limit time.Duration, what string, topics ...string) error {
	if r.quorum == nil {
		return nil
	}
	ready := func() bool {
		ok, _ := r.quorum.ready(r.brokers, topics...)
		return ok
	}
	if err := r.runUntil(limit, what, ready); err != nil {
		_, missing := r.quorum.ready(r.brokers, topics...)
		return fmt.Errorf("%w: %s", err, missing)
	}
	return nil
}

// drain reads the end offsets, then reads every partition from its start
// to its end with a fresh consumer, recording Final polls.
func (r *run) drain() error {
	for _, p := range r.producers {
		if p.producer != nil {
			p.producer.Close()
		}
	}
	host := r.sched.AddNode("drain", sim.NodeOptions{})
	cluster, err := client.NewCluster(host.Env(), client.ClusterConfig{Bootstrap: r.bootstrap(), ClientID: "drain"})
	if err != nil {
		return err
	}
	admin := client.NewAdmin(cluster)
	var tps []client.TopicPartition
	for p := range r.cfg.Partitions {
		tps = append(tps, client.TopicPartition{Topic: topicName, Partition: p})
	}
	unreadable := make(map[client.TopicPartition]string)
	ends, err := r.settledEnds(host, admin, tps, unreadable)
	if err != nil {
		return err
	}

	d := &consumerActor{r: r, clientID: len(r.producers) + len(r.consumers), host: host, final: true}
	stuck := make(map[client.TopicPartition]*drainStuck)
	emptyRead := make(map[client.TopicPartition]bool)
	d.configure = func(cfg *client.ConsumerConfig) {
		cfg.OnFetchError = func(tp client.TopicPartition, offset int64, err error) {
			r.drainFetchFailed(d, stuck, tp, offset, err)
		}
	}
	d.start()
	caughtUp := func() bool {
		for _, tp := range tps {
			if unreadable[tp] != "" {
				continue
			}
			if s := stuck[tp]; s != nil && r.sched.Now()-s.since >= unreadableAfter && d.next[tp] == s.next {
				unreadable[tp] = s.name
				continue
			}
			if d.next[tp] >= ends[tp].Offset {
				continue
			}
			// When retention deleted a whole partition (its log start
			// reached its end) the drain starts at the end and delivers
			// nothing (sim seed 700951): its position shows it got there,
			// recorded once as an empty final poll from that position.
			position, known := d.consumer.Position(tp)
			if !known || position < ends[tp].Offset {
				return false
			}
			if !emptyRead[tp] {
				emptyRead[tp] = true
				now := int64(r.sched.Now())
				r.recorder.instant(checker.Op{
					Client: d.clientID, Process: d.session, Kind: checker.KindPoll, Call: now, Return: now, Outcome: checker.OutcomeOK,
					Topic: tp.Topic, Partition: tp.Partition, Poll: &checker.Poll{FetchOffset: position, Reset: true, Final: true},
				})
			}
		}
		return true
	}
	if err := r.runUntil(drainTimeMax, fmt.Sprintf("draining %d partitions", len(tps)), caughtUp); err != nil {
		return err
	}
	// Every group's committed offsets are read back once more after the
	// drain, so that a commit acknowledged but never stored is caught.
	if err := r.readBackCommits(); err != nil {
		return err
	}
	// The log start is read after the drain: retention keeps running, so
	// anything the drain could not read lies below this start.
	starts, err := r.listOffsets(host, admin, tps, client.OffsetEarliest, unreadable)
	if err != nil {
		return err
	}
	for _, tp := range tps {
		end := checker.End{Topic: tp.Topic, Partition: tp.Partition, Offset: -1, Error: unreadable[tp]}
		if result, ok := ends[tp]; ok {
			end.Offset = result.Offset
		}
		if result, ok := starts[tp]; ok && end.Offset >= 0 {
			end.Start = min(result.Offset, end.Offset)
		}
		r.recorder.ends = append(r.recorder.ends, end)
	}
	return nil
}

// settleTimeMax bounds how long the drain waits for the end offsets to
// pass every write acknowledged with a durability promise.
const settleTimeMax = 30 * time.Second

// settledEnds reads the end offsets until each partition's end passes
// every write the clients saw acknowledged there with a durability
// promise, or settleTimeMax passes. In durable mode the end is the durable
// end: an acks=1 write answered just before healing may still wait for its
// fsync (a full disk, a slow device), and a drain that stopped short of it
// would report it lost (seeds 911066 and 912230 with disk-full faults).
// What is still missing after the bound the checker judges.
func (r *run) settledEnds(host *sim.Node, admin *client.Admin, tps []client.TopicPartition, unreadable map[client.TopicPartition]string) (map[client.TopicPartition]client.OffsetResult, error) {
	want := make(map[client.TopicPartition]int64)
	for i := range r.recorder.ops {
		op := &r.recorder.ops[i]
		if op.Kind == checker.KindProduce && op.Outcome == checker.OutcomeOK && op.Produce.Durable && op.Produce.Acks != checker.AcksNone {
			tp := client.TopicPartition{Topic: op.Topic, Partition: op.Partition}
			want[tp] = max(want[tp], op.Produce.Offset+1)
		}
	}
	deadline := r.sched.Now() + settleTimeMax
	for {
		ends, err := r.listOffsets(host, admin, tps, client.OffsetLatest, unreadable)
		if err != nil {
			return nil, err
		}
		settled := true
		for _, tp := range tps {
			if unreadable[tp] == "" && ends[tp].Offset < want[tp] {
				settled = false
			}
		}
		if settled || r.sched.Now() >= deadline {
			return ends, nil
		}
		waited := false
		host.AfterFunc(100*time.Millisecond, func() { waited = true })
		if err := r.runUntil(time.Second, "waiting for the end offsets", func() bool { return waited }); err != nil {
			return nil, err
		}
	}
}

// unreadableAfter is how long, after healing, a partition must keep
// failing at one offset (KAFKA_STORAGE_ERROR, or data that fails the
// client's validation) before the drain records it unreadable and stops
// waiting for it: a damaged partition on a single broker stays so. The
// checker then decides whether the simulator's damage excuses it.
const unreadableAfter = 5 * time.Second

// drainStuck is the error a drained partition keeps getting at one offset
// (the consumer's position, or a special offset while it looks up where
// to start), and how far the drain had read then.
type drainStuck struct {
	name   string
	offset int64
	next   int64
	since  time.Duration
}

// drainFetchFailed records a fetch error of the drain as a failed final
// poll, once per partition, offset and error, and notes since when the
// partition has been stuck on it.
func (r *run) drainFetchFailed(d *consumerActor, stuck map[client.TopicPartition]*drainStuck, tp client.TopicPartition, offset int64, err error) {
	name := errorName(err)
	if name == "" {
		return // a lost connection or a timeout: nothing about the data
	}
	if s := stuck[tp]; s != nil && s.name == name && s.offset == offset && s.next == d.next[tp] {
		return
	}
	stuck[tp] = &drainStuck{name: name, offset: offset, next: d.next[tp], since: r.sched.Now()}
	now := int64(r.sched.Now())
	if offset < 0 {
		offset = d.next[tp] // looking up where to start: the drain's position so far
	}
	r.recorder.instant(checker.Op{
		Client: d.clientID, Process: d.session, Kind: checker.KindPoll, Call: now, Return: now, Outcome: checker.OutcomeFail,
		Topic: tp.Topic, Partition: tp.Partition, Poll: &checker.Poll{FetchOffset: offset, Final: true, Error: name},
	})
}

// listOffsets asks for the latest or earliest offsets until every
// partition answers, within the drain's bound. A partition that keeps
// failing with a Kafka error for unreadableAfter (an offline partition has
// no leader: LEADER_NOT_AVAILABLE) is marked in unreadable and left out;
// one marked there already is not asked.
func (r *run) listOffsets(host *sim.Node, admin *client.Admin, tps []client.TopicPartition, which int64, unreadable map[client.TopicPartition]string) (map[client.TopicPartition]client.OffsetResult, error) {
	var offsets map[client.TopicPartition]client.OffsetResult
	failingSince := make(map[client.TopicPartition]time.Duration)
	var list func()
	list = func() {
		var ask []client.TopicPartition
		for _, tp := range tps {
			if unreadable[tp] == "" {
				ask = append(ask, tp)
			}
		}
		if len(ask) == 0 {
			offsets = map[client.TopicPartition]client.OffsetResult{}
			return
		}
		admin.ListOffsets(ask, which, func(res map[client.TopicPartition]client.OffsetResult) {
			retry := false
			for _, tp := range ask {
				err := res[tp].Err
				if err == nil {
					delete(failingSince, tp)
					continue
				}
				retry = true
				name := errorName(err)
				if name == "" {
					delete(failingSince, tp)
					continue
				}
				since, ok := failingSince[tp]
				if !ok {
					failingSince[tp] = r.sched.Now()
				} else if r.sched.Now()-since >= unreadableAfter {
					unreadable[tp] = name
				}
			}
			if retry {
				host.AfterFunc(100*time.Millisecond, list)
				return
			}
			offsets = res
		})
	}
	list()
	err := r.runUntil(drainTimeMax, "reading offsets", func() bool { return offsets != nil })
	return offsets, err
}
