package client

import (
	"fmt"
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// Special offsets for Assign and Seek.
const (
	// OffsetLatest starts at the log end (ListOffsets timestamp -1).
	OffsetLatest int64 = -1
	// OffsetEarliest starts at the log start (ListOffsets timestamp -2).
	OffsetEarliest int64 = -2
	// OffsetCommitted starts at the group's committed offset, or where
	// AutoOffsetReset says when nothing is committed.
	OffsetCommitted int64 = -3
)

// OffsetReset is auto.offset.reset: where to start when no committed offset
// exists or the position is out of range.
type OffsetReset uint8

const (
	// ResetLatest starts at the log end.
	ResetLatest OffsetReset = iota
	// ResetEarliest starts at the log start.
	ResetEarliest
	// ResetNone stops fetching the partition and reports the error through
	// ConsumerConfig.OnError.
	ResetNone
)

// maxPollRecordsDefault is Kafka's max.poll.records default.
const maxPollRecordsDefault = 500

// ConsumerConfig configures a Consumer. Start from DefaultConsumerConfig.
type ConsumerConfig struct {
	// Group is group.id. Empty means no group: Subscribe and Commit are
	// unavailable, Assign works.
	Group string
	// Assignor is partition.assignment.strategy: AssignorRange (default) or
	// AssignorRoundRobin.
	Assignor string
	// SessionTimeout is session.timeout.ms (default 45s), RebalanceTimeout
	// is max.poll.interval.ms, the time members get to rejoin (default 60s),
	// HeartbeatInterval is heartbeat.interval.ms (default 3s).
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// AutoOffsetReset is auto.offset.reset. Default ResetLatest.
	AutoOffsetReset OffsetReset
	// MaxWait is fetch.max.wait.ms (default 500ms), MinBytes fetch.min.bytes
	// (default 1), MaxBytes fetch.max.bytes (default 50 MiB) and
	// MaxPartitionBytes max.partition.fetch.bytes (default 1 MiB).
	MaxWait           time.Duration
	MinBytes          int32
	MaxBytes          int32
	MaxPartitionBytes int32
	// ReadCommitted is isolation.level=read_committed: records of aborted
	// transactions are skipped and nothing past the last stable offset is
	// returned. Default false (read_uncommitted).
	ReadCommitted bool
	// AutoCommit is enable.auto.commit (default true): the delivered
	// positions are committed every AutoCommitInterval
	// (auto.commit.interval.ms, default 5s), before a rebalance and on Close.
	AutoCommit         bool
	AutoCommitInterval time.Duration
	// CommitOnRevoke commits the delivered positions of revoked partitions
	// before the group rebalances, even without AutoCommit. Default true.
	CommitOnRevoke bool
	// OnCommit, when set, is told of every commit the consumer sends on its
	// own (auto-commit, commit on revoke, commit on Close), not of Commit
	// calls: it is called as the commit is sent, with the offsets and the
	// membership the request carries, and the function it returns, if not
	// nil, is called once with the commit's outcome (nil when the
	// coordinator stored it). Tools and tests use it to record every
	// commit a consumer makes.
	OnCommit func(offsets []PartitionOffset, member GroupMembership) func(error)
	// OnSyncGroup, when set, is called as the consumer sends SyncGroup for
	// a generation it was handed by JoinGroup, and the function it
	// returns, if not nil, is called once with the outcome: nil when the
	// SyncGroup answer made the consumer a member of that generation.
	OnSyncGroup func(member GroupMembership) func(error)
	// MaxPollRecords is max.poll.records (default 500): one Poll delivers
	// at most this many records; the rest stay buffered for the next Poll.
	MaxPollRecords int
	// OnAssigned and OnRevoked are the rebalance callbacks. OnRevoked runs
	// before partitions are given up (after the commit on revoke), OnAssigned
	// after new ones are taken.
	OnAssigned func([]TopicPartition)
	OnRevoked  func([]TopicPartition)
	// OnError receives errors that stop a partition (e.g. an out of range
	// offset with ResetNone) or a group (a fatal group error). May be nil.
	OnError func(error)
	// OnFetchError receives every error a fetch got for one partition,
	// with the offset it fetched from: an error the broker answered for
	// the partition or the request (the partition is fetched again after
	// RetryBackoff), one wrapping ErrCorruptFetch when the fetched data
	// failed the consumer's validation, or one wrapping ErrNoBroker and
	// the partition's error when the metadata shows it without a leader
	// (LEADER_NOT_AVAILABLE, say). It observes; it decides nothing. May be nil.
	OnFetchError func(tp TopicPartition, offset int64, err error)
	// OnFetchSent and OnFetchReceived observe each Fetch request, by the
	// number its records carry (Record.FetchID): when it is handed to the
	// connection, and when its answer (or failure) arrives. Together they
	// bound when the broker served a record. May be nil.
	OnFetchSent, OnFetchReceived func(id uint64)
	// OnFetchAnswer observes each partition that a Fetch answer carried
	// without an error, right after OnFetchReceived: the high watermark
	// the leader answered and the leader epoch the request carried, which
	// the broker checked. A checker uses them to see the high watermark
	// move within one leader epoch. It observes; it decides nothing. May
	// be nil.
	OnFetchAnswer func(FetchAnswer)
	// BufferedRecordsMax bounds records fetched and not yet polled; fetching
	// pauses beyond it. Default 100000.
	BufferedRecordsMax int
	// RetryBackoff is retry.backoff.ms. Default 100ms.
	RetryBackoff time.Duration
	// RequestTimeout is request.timeout.ms for fetches, beyond MaxWait.
	// Default 30s.
	RequestTimeout time.Duration
}

// FetchAnswer is one partition of a Fetch answer without an error.
type FetchAnswer struct {
	// ID is the Fetch request's number, as OnFetchSent was told.
	ID        uint64
	Partition TopicPartition
	// LeaderEpoch is the CurrentLeaderEpoch the request carried: the
	// partition's leader epoch in the client's metadata, or -1 when it
	// knew none (the broker then checks no epoch).
	LeaderEpoch   int32
	HighWatermark int64
}

// DefaultConsumerConfig returns Kafka's consumer defaults for group.
func DefaultConsumerConfig(group string) ConsumerConfig {
	return ConsumerConfig{
		Group:              group,
		Assignor:           AssignorRange,
		SessionTimeout:     45 * time.Second,
		RebalanceTimeout:   60 * time.Second,
		HeartbeatInterval:  3 * time.Second,
		AutoOffsetReset:    ResetLatest,
		MaxWait:            500 * time.Millisecond,
		MinBytes:           1,
		MaxBytes:           50 << 20,
		MaxPartitionBytes:  1 << 20,
		AutoCommit:         true,
		AutoCommitInterval: 5 * time.Second,
		CommitOnRevoke:     true,
		BufferedRecordsMax: 100_000,
		MaxPollRecords:     maxPollRecordsDefault,
		RetryBackoff:       retryBackoffDefault,
		RequestTimeout:     requestTimeoutDefault,
	}
}

func (cfg *ConsumerConfig) validate() error {
	switch {
	case cfg.Assignor != AssignorRange && cfg.Assignor != AssignorRoundRobin:
		return fmt.Errorf("%w: assignor %q", ErrInvalidConfig, cfg.Assignor)
	case cfg.SessionTimeout <= 0 || cfg.RebalanceTimeout <= 0 || cfg.HeartbeatInterval <= 0 ||
		cfg.HeartbeatInterval >= cfg.SessionTimeout:
		return fmt.Errorf("%w: group timeouts (need 0 < heartbeat < session)", ErrInvalidConfig)
	case cfg.MaxWait < 0 || cfg.MinBytes < 0 || cfg.MaxBytes <= 0 || cfg.MaxPartitionBytes <= 0:
		return fmt.Errorf("%w: fetch sizes", ErrInvalidConfig)
	case cfg.AutoCommit && cfg.AutoCommitInterval <= 0:
		return fmt.Errorf("%w: auto.commit.interval.ms", ErrInvalidConfig)
	case cfg.BufferedRecordsMax < 1 || cfg.BufferedRecordsMax > consumerBufferedRecordsMax:
		return fmt.Errorf("%w: buffered records %d", ErrInvalidConfig, cfg.BufferedRecordsMax)
	case cfg.MaxPollRecords < 1 || cfg.MaxPollRecords > pollRecordsMax:
		return fmt.Errorf("%w: max.poll.records %d (want 1 to %d)", ErrInvalidConfig, cfg.MaxPollRecords, pollRecordsMax)
	case cfg.RetryBackoff < 0 || cfg.RequestTimeout <= 0:
		return fmt.Errorf("%w: retry backoff or request timeout", ErrInvalidConfig)
	case cfg.AutoOffsetReset > ResetNone:
		return fmt.Errorf("%w: auto.offset.reset %d", ErrInvalidConfig, cfg.AutoOffsetReset)
	}
	return nil
}

// PartitionOffset is a partition and an offset in it (or one of
// OffsetLatest, OffsetEarliest, OffsetCommitted).
type PartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// consumePart is the consumer's state for one assigned partition.
type consumePart struct {
	tp TopicPartition
	// position is the offset of the next record Poll delivers; fetchOffset
	// the next offset to fetch (ahead of position by the buffered records).
	// Negative values are the special offsets still to be resolved.
	position    int64
	fetchOffset int64
	resolving   bool
	fetching    bool
	backoff     bool
	stopped     bool
	buffered    []Record
	// version increments on every seek, so that answers to requests made
	// before it are dropped.
	version uint64
}

// Consumer reads records from assigned or group-assigned partitions.
type Consumer struct {
	// commitQueue holds the commits not yet handed to a connection, oldest
	// first (sendCommit).
	commitQueue []pendingCommit
	cluster     *Cluster
	cfg         ConsumerConfig
	clock       core.Clock
	parts       map[TopicPartition]*consumePart
	// partOrder lists parts' keys in order.
	partOrder    []TopicPartition
	buffered     int
	nodeFetching map[int32]bool
	// fetchCount numbers the Fetch requests sent; fetchID is the number of
	// the response being applied, stamped on the records it holds.
	fetchCount, fetchID uint64
	reader              record.Reader
	pollFn              func([]Record)
	// pollNext is the index in partOrder where the next Poll starts
	// taking records, so that a small MaxPollRecords serves every
	// partition in turn instead of always the first.
	pollNext      int
	pollScheduled bool
	fetchPending  bool
	metaPending   bool
	group         *groupState
	interest      []string
	// owner keys this consumer's own group connections in the cluster.
	owner  uint64
	closed bool
}

// NewConsumer returns a consumer reading through cluster. Closing the
// consumer does not close the cluster.
func NewConsumer(cluster *Cluster, cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		cluster:      cluster,
		cfg:          cfg,
		clock:        cluster.env.Clock,
		parts:        make(map[TopicPartition]*consumePart),
		nodeFetching: make(map[int32]bool),
		owner:        cluster.newOwner(),
	}
	cluster.onMetadata(c.scheduleFetch)
	return c, nil
}

// Assign replaces the consumer's partitions with the given ones, starting at
// the given offsets. It cannot be combined with Subscribe.
func (c *Consumer) Assign(partitions []PartitionOffset) error {
	if c.closed {
		return ErrClosed
	}
	if c.group != nil {
		return fmt.Errorf("%w: Assign after Subscribe", ErrInvalidConfig)
	}
	for _, po := range partitions {
		if po.Topic == "" || po.Partition < 0 || po.Offset < OffsetCommitted {
			return fmt.Errorf("%w: assign %+v", ErrInvalidRecord, po)
		}
		if po.Offset == OffsetCommitted && c.cfg.Group == "" {
			return fmt.Errorf("%w: OffsetCommitted needs a group", ErrInvalidConfig)
		}
	}
	c.setAssignment(partitions)
	return nil
}

// setAssignment replaces the assigned partitions.
func (c *Consumer) setAssignment(partitions []PartitionOffset) {
	for _, tp := range c.partOrder {
		c.buffered -= len(c.parts[tp].buffered)
	}
	c.parts = make(map[TopicPartition]*consumePart, len(partitions))
	c.partOrder = c.partOrder[:0]
	for _, t := range c.interest {
		c.cluster.removeInterest(t)
	}
	c.interest = nil
	for _, po := range partitions {
		tp := TopicPartition{po.Topic, po.Partition}
		if _, dup := c.parts[tp]; dup {
			continue
		}
		c.parts[tp] = &consumePart{tp: tp, position: po.Offset, fetchOffset: po.Offset}
		c.partOrder = append(c.partOrder, tp)
		if !slices.Contains(c.interest, po.Topic) {
			if c.cluster.addInterest(po.Topic) == nil {
				c.interest = append(c.interest, po.Topic)
			}
		}
	}
	slices.SortFunc(c.partOrder, compareTopicPartition)
	if c.buffered != 0 {
		panic("client: buffered records left after reassignment")
	}
	c.scheduleFetch()
}

// Assigned returns the partitions the consumer owns, in order.
func (c *Consumer) Assigned() []TopicPartition {
	return slices.Clone(c.partOrder)
}

// Position returns the offset of the next record Poll will deliver for tp,
// and false if tp is not assigned or its start is not resolved yet.
func (c *Consumer) Position(tp TopicPartition) (int64, bool) {
	cp, ok := c.parts[tp]
	if !ok || cp.position < 0 {
		return -1, false
	}
	return cp.position, true
}

// Seek moves tp's position to offset (or a special offset): buffered records
// are dropped and the next Poll starts there.
func (c *Consumer) Seek(tp TopicPartition, offset int64) error {
	cp, ok := c.parts[tp]
	if !ok {
		return fmt.Errorf("%w: %v", ErrNotAssigned, tp)
	}
	if offset < OffsetCommitted || (offset == OffsetCommitted && c.cfg.Group == "") {
		return fmt.Errorf("%w: seek to %d", ErrInvalidRecord, offset)
	}
	c.resetPart(cp, offset)
	c.scheduleFetch()
	return nil
}

// resetPart moves a partition to offset, dropping buffered records and
// invalidating requests in flight for it.
func (c *Consumer) resetPart(cp *consumePart, offset int64) {
	c.buffered -= len(cp.buffered)
	cp.buffered = nil
	cp.position, cp.fetchOffset = offset, offset
	cp.version++
	cp.resolving = false
	cp.stopped = false
}

// Poll calls fn once, as a separate event, with the next records: at once
// if some are buffered, else when a fetch returns some. Records of one
// partition come in offset order, and the partition's position moves past
// them before fn runs. Only one Poll may be pending.
func (c *Consumer) Poll(fn func([]Record)) error {
	switch {
	case fn == nil:
		return fmt.Errorf("%w: nil poll callback", ErrInvalidConfig)
	case c.closed:
		return ErrClosed
	case c.pollFn != nil:
		return fmt.Errorf("%w: a Poll is already pending", ErrInvalidConfig)
	}
	c.pollFn = fn
	c.schedulePoll()
	c.scheduleFetch()
	return nil
}

func (c *Consumer) schedulePoll() {
	if c.pollScheduled || c.pollFn == nil || c.buffered == 0 {
		return
	}
	c.pollScheduled = true
	c.clock.AfterFunc(0, c.deliver)
}

// deliver hands buffered records to the pending Poll: at most
// MaxPollRecords, taken from the partitions in turn, starting after the
// partition the previous delivery ended with.
func (c *Consumer) deliver() {
	c.pollScheduled = false
	if c.closed || c.pollFn == nil || c.buffered == 0 {
		return
	}
	var out []Record
	n := len(c.partOrder)
	start := c.pollNext % n
	for i := range n {
		index := (start + i) % n
		cp := c.parts[c.partOrder[index]]
		take := min(len(cp.buffered), c.cfg.MaxPollRecords-len(out))
		if take == 0 {
			continue
		}
		out = append(out, cp.buffered[:take]...)
		cp.position = cp.buffered[take-1].Offset + 1
		cp.buffered = cp.buffered[take:]
		if len(cp.buffered) == 0 {
			cp.buffered = nil
			cp.position = cp.fetchOffset
		}
		c.buffered -= take
		c.pollNext = index + 1
	}
	fn := c.pollFn
	c.pollFn = nil
	c.scheduleFetch()
	fn(out)
}

// Close stops the consumer: with a group it commits (when AutoCommit is
// set) and leaves the group first. done runs once finished.
func (c *Consumer) Close(done func()) {
	if c.closed {
		c.clock.AfterFunc(0, done)
		return
	}
	finish := func() {
		c.closed = true
		c.setAssignment(nil)
		c.pollFn = nil
		done()
	}
	if c.group == nil {
		if c.cfg.AutoCommit && c.cfg.Group != "" {
			c.commitOwn(func(error) { finish() })
			return
		}
		c.clock.AfterFunc(0, finish)
		return
	}
	c.leaveGroup(finish)
}

func (c *Consumer) reportError(err error) {
	if c.cfg.OnError != nil {
		c.cfg.OnError(err)
	}
}
