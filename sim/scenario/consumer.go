package scenario

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/sim"
)

// fetchPartitionBytesMax is the consumers' max.partition.fetch.bytes.
const fetchPartitionBytesMax = 64 << 10

// consumerActor is one consumer client on its own simulated host: it polls
// in a loop and records every delivery as poll operations (one per
// partition), and with a group commits after (at-least-once) or before
// (at-most-once) processing.
type consumerActor struct {
	r        *run
	index    int
	clientID int
	spec     ConsumerSpec
	host     *sim.Node
	cluster  *client.Cluster
	consumer *client.Consumer
	session  int
	// positions are the positions snapshotted when Poll was called; a
	// partition missing here, or marked in reset, starts over.
	positions map[client.TopicPartition]int64
	reset     map[client.TopicPartition]bool
	// outOfRange holds, per partition, the position the broker refused
	// with OFFSET_OUT_OF_RANGE since the partition's last poll, from which
	// the consumer reset to the log start.
	outOfRange map[client.TopicPartition]int64
	// final marks the drain consumer, whose polls are recorded as Final.
	final bool
	// read counts records per partition (used by the drain).
	next map[client.TopicPartition]int64
	// configure, when set, adjusts the consumer's configuration last, before
	// every session's consumer is built (the drain uses it).
	configure func(*client.ConsumerConfig)
	// handouts are the memberships the consumer's SyncGroup answers
	// confirmed, with when each SyncGroup was sent and answered; commits
	// carry them into the history (workload_group.go).
	handouts map[client.GroupMembership]checker.Member
	// fetches are the windows of the session's latest Fetch requests, by
	// their number modulo fetchWindowsMax (fetchWindow).
	fetches [fetchWindowsMax]fetchWindow
}

// fetchWindowsMax is how many of its latest Fetch requests a consumer
// remembers the windows of: far more than a delivery spans.
const fetchWindowsMax = 1024

// fetchWindow is when one Fetch request was sent and answered, in the
// simulation's true time (the consumer's own clock may drift and jump).
type fetchWindow struct {
	id             uint64
	sent, received int64
}

// servedWindow bounds when the broker served records: from the earliest
// sending to the latest answer of the Fetch requests that returned them.
// ok is false when a window is unknown (forgotten, or not answered yet).
func (c *consumerActor) servedWindow(records []client.Record) (call, ret int64, ok bool) {
	call, ret = math.MaxInt64, math.MinInt64
	for _, rec := range records {
		w := c.fetches[rec.FetchID%fetchWindowsMax]
		if rec.FetchID == 0 || w.id != rec.FetchID || w.received < w.sent {
			return 0, 0, false
		}
		call, ret = min(call, w.sent), max(ret, w.received)
	}
	return call, ret, len(records) > 0
}

func (c *consumerActor) name() string {
	if c.final {
		return "drain"
	}
	return fmt.Sprintf("consumer-%d", c.index)
}

func (c *consumerActor) start() {
	c.session++
	c.positions = make(map[client.TopicPartition]int64)
	c.reset = make(map[client.TopicPartition]bool)
	c.outOfRange = make(map[client.TopicPartition]int64)
	if c.next == nil {
		c.next = make(map[client.TopicPartition]int64)
	}
	cluster, err := client.NewCluster(c.host.Env(), client.ClusterConfig{Bootstrap: c.r.bootstrap(), ClientID: c.name()})
	if err != nil {
		c.r.fail(fmt.Errorf("%s: %w", c.name(), err))
		return
	}
	group := ""
	if c.spec.Group {
		group = groupName
	}
	cfg := client.DefaultConsumerConfig(group)
	cfg.AutoOffsetReset = client.ResetEarliest
	cfg.AutoCommit = false
	cfg.CommitOnRevoke = false
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = time.Second
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.RequestTimeout = 10 * time.Second
	// Small fetches: the disk flips a bit in one read call in up to a
	// hundred, and a fetch of a megabyte makes hundreds of read calls, so
	// with large logs nearly every big fetch would fail and be retried.
	cfg.MaxPartitionBytes = fetchPartitionBytesMax
	cfg.MaxBytes = 4 * fetchPartitionBytesMax
	session := c.session
	c.fetches = [fetchWindowsMax]fetchWindow{}
	cfg.OnFetchSent = func(id uint64) {
		if c.session == session {
			c.fetches[id%fetchWindowsMax] = fetchWindow{id: id, sent: int64(c.r.sched.Now()), received: -1}
		}
	}
	cfg.OnFetchReceived = func(id uint64) {
		if w := &c.fetches[id%fetchWindowsMax]; c.session == session && w.id == id {
			w.received = int64(c.r.sched.Now())
		}
	}
	cfg.OnFetchAnswer = func(a client.FetchAnswer) {
		if c.session == session {
			c.recordFetch(a)
		}
	}
	cfg.OnFetchError = func(tp client.TopicPartition, offset int64, err error) {
		if c.session == session && errors.Is(err, kerr.OffsetOutOfRange) {
			// The client resets the position (auto.offset.reset): the
			// next poll starts over, and the checker judges it from there.
			// In a cluster a log start is not monotonic across leaders:
			// a replica that missed the old leader's retention may lead
			// later with the records consumers were reset past (sim seed
			// 100250). The refused position goes into the history, so
			// that the checker judges the jump (checkOutOfRangeResets).
			c.reset[tp] = true
			if _, refused := c.outOfRange[tp]; !refused {
				c.outOfRange[tp] = offset
			}
		}
	}
	cfg.OnAssigned = func(tps []client.TopicPartition) {
		if c.session == session {
			for _, tp := range tps {
				// A new assignment starts from the committed offset,
				// not from a reset to the log start.
				c.reset[tp] = true
				delete(c.outOfRange, tp)
			}
		}
	}
	if !c.final {
		c.configureMember(&cfg)
	}
	if c.configure != nil {
		c.configure(&cfg)
	}
	consumer, err := client.NewConsumer(cluster, cfg)
	if err != nil {
		c.r.fail(fmt.Errorf("%s: %w", c.name(), err))
		return
	}
	c.cluster, c.consumer = cluster, consumer
	if c.spec.Group && !c.final {
		startCommitReader(c.r)
		if c.session == 1 && c.firstGroupConsumer() {
			startZombie(c.r)
		}
		c.scheduleRejoin()
	}
	if c.spec.Group {
		err = consumer.Subscribe([]string{topicName})
	} else {
		var all []client.PartitionOffset
		for p := range c.r.cfg.Partitions {
			all = append(all, client.PartitionOffset{Topic: topicName, Partition: p, Offset: client.OffsetEarliest})
		}
		err = consumer.Assign(all)
	}
	if err != nil {
		c.r.fail(fmt.Errorf("%s: %w", c.name(), err))
		return
	}
	c.poll()
}

// poll asks for the next delivery, now and then looking up an offset by
// time first (workload_lookup.go).
func (c *consumerActor) poll() {
	if c.lookupDue() {
		c.lookUpTime(c.pollNow)
		return
	}
	c.pollNow()
}

// pollNow snapshots the positions and asks for the next delivery.
func (c *consumerActor) pollNow() {
	clear(c.positions)
	for _, tp := range c.consumer.Assigned() {
		if pos, ok := c.consumer.Position(tp); ok && pos >= 0 {
			c.positions[tp] = pos
		}
	}
	session := c.session
	err := c.consumer.Poll(func(records []client.Record) {
		if c.session == session {
			c.deliver(records)
		}
	})
	if err != nil {
		c.r.fail(fmt.Errorf("%s: poll: %w", c.name(), err))
	}
}

// deliver handles one delivery according to the consumer's commit mode.
func (c *consumerActor) deliver(records []client.Record) {
	byPartition := splitByPartition(records)
	if c.spec.Group && c.spec.AtMostOnce {
		// At-most-once: commit where this delivery ends, and process only
		// once the commit is durable; on a failed commit the records are
		// dropped unprocessed.
		session := c.session
		c.commit(byPartition, func(ok bool) {
			if c.session != session {
				return
			}
			if ok {
				c.process(byPartition)
			} else {
				c.markAllReset()
			}
			c.poll()
		})
		return
	}
	c.process(byPartition)
	if c.spec.Group {
		session := c.session
		c.commit(byPartition, func(bool) {
			if c.session == session {
				c.poll()
			}
		})
		return
	}
	c.poll()
}

// process records each partition's records as one poll operation.
func (c *consumerActor) process(byPartition []partitionRecords) {
	now := int64(c.r.sched.Now())
	for _, pr := range byPartition {
		from, known := c.positions[pr.tp]
		reset := !known || c.reset[pr.tp]
		if reset {
			// The partition was (re)assigned while the poll was pending:
			// the snapshot is stale, and the consumer restarted from the
			// group's committed offset, where this delivery begins. The
			// group's delivery check judges where that was.
			from = pr.records[0].Offset
		}
		delete(c.reset, pr.tp)
		poll := &checker.Poll{FetchOffset: from, Reset: reset, Final: c.final}
		if refused, ok := c.outOfRange[pr.tp]; ok && reset {
			poll.FetchOffset, poll.OutOfRange = refused, true
		}
		delete(c.outOfRange, pr.tp)
		if c.spec.Group {
			poll.Group = groupName
		}
		for _, rec := range pr.records {
			poll.Records = append(poll.Records, checker.Record{Offset: rec.Offset, Value: string(rec.Value), Timestamp: rec.Timestamp, LeaderEpoch: max(rec.LeaderEpoch, 0)})
		}
		// The records were read when the broker served them, within the
		// windows of the fetches that returned them, not when the
		// consumer handed them over.
		call, ret, served := c.servedWindow(pr.records)
		if !served {
			call, ret = now, now
		}
		c.r.recorder.instant(checker.Op{
			Client: c.clientID, Process: c.session, Kind: checker.KindPoll, Call: call, Return: ret,
			Outcome: checker.OutcomeOK, Topic: pr.tp.Topic, Partition: pr.tp.Partition, Poll: poll,
		})
		c.next[pr.tp] = pr.records[len(pr.records)-1].Offset + 1
	}
}

// commit commits, for every partition of the delivery, the offset after its
// last record, recording one commit operation per partition.
func (c *consumerActor) commit(byPartition []partitionRecords, done func(ok bool)) {
	if len(byPartition) == 0 {
		c.host.AfterFunc(0, func() { done(true) })
		return
	}
	var offsets []client.PartitionOffset
	for _, pr := range byPartition {
		offset := pr.records[len(pr.records)-1].Offset + 1
		offsets = append(offsets, client.PartitionOffset{Topic: pr.tp.Topic, Partition: pr.tp.Partition, Offset: offset})
	}
	end := c.recordCommit(c.session, offsets, c.consumer.Membership())
	c.consumer.Commit(offsets, func(err error) {
		end(err)
		done(err == nil)
	})
}

// recordCommit records a commit of offsets by the session's consumer under
// member as one commit operation per partition, called now, and returns
// the function that records its outcome.
func (c *consumerActor) recordCommit(session int, offsets []client.PartitionOffset, member client.GroupMembership) func(error) {
	var ops []int
	for _, po := range offsets {
		ops = append(ops, c.r.recorder.begin(checker.Op{
			Client: c.clientID, Process: session, Kind: checker.KindCommit, Call: int64(c.r.sched.Now()),
			Topic: po.Topic, Partition: po.Partition,
			Group: &checker.Group{Group: groupName, Offset: po.Offset, Member: c.handout(member)},
		}))
	}
	return func(err error) {
		outcome := commitOutcome(err)
		for _, op := range ops {
			c.r.recorder.end(op, c.r.sched.Now(), outcome)
		}
	}
}

// commitOutcome is what a commit's error tells about its effect: the
// coordinator's refusals of a member (stale generation, unknown member,
// rebalance in progress) and the client's own refusals to send leave
// nothing stored; any other error may follow a stored commit.
func commitOutcome(err error) checker.Outcome {
	switch {
	case err == nil:
		return checker.OutcomeOK
	case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID),
		errors.Is(err, kerr.FencedInstanceID), errors.Is(err, kerr.RebalanceInProgress),
		errors.Is(err, client.ErrInvalidConfig), errors.Is(err, client.ErrInvalidRecord):
		return checker.OutcomeFail
	}
	return checker.OutcomeIndefinite
}

func (c *consumerActor) markAllReset() {
	for _, tp := range c.consumer.Assigned() {
		c.reset[tp] = true
	}
	// The dropped delivery may have begun at a log start the consumer
	// reset to; the next one does not.
	clear(c.outOfRange)
}

// crash kills the consumer's host; a new session starts over from the
// committed offsets (or the start).
func (c *consumerActor) crash() {
	c.host.Crash()
	c.session++
	c.r.sched.After(time.Duration(c.r.rand.Int64Range(int64(10*time.Millisecond), int64(time.Second))), c.name()+"-restart", c.restart)
}

// restart brings a crashed consumer back; heal may have done so already.
func (c *consumerActor) restart() {
	if c.host.Alive() {
		return
	}
	c.host.Restart()
	c.start()
}

// partitionRecords are the records of one partition in one delivery.
type partitionRecords struct {
	tp      client.TopicPartition
	records []client.Record
}

// splitByPartition groups records by partition, keeping first-seen order.
func splitByPartition(records []client.Record) []partitionRecords {
	var out []partitionRecords
	for _, rec := range records {
		tp := client.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
		i := len(out) - 1
		for i >= 0 && out[i].tp != tp {
			i--
		}
		if i < 0 {
			out = append(out, partitionRecords{tp: tp})
			i = len(out) - 1
		}
		out[i].records = append(out[i].records, rec)
	}
	return out
}
