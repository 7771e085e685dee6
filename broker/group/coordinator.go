package group

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicChecker tells the coordinator which partitions exist, so that commits
// to unknown partitions fail with UNKNOWN_TOPIC_OR_PARTITION as in Kafka.
type TopicChecker interface {
	// PartitionExists reports whether topic has a partition numbered
	// partition.
	PartitionExists(topic string, partition int32) bool
}

// Client identifies the connection a JoinGroup came from. DescribeGroups
// reports it, and generated member ids start with the client id, as in Kafka.
type Client struct {
	// ID is the client id from the request header.
	ID string
	// Host is the client's address, as Kafka reports it ("/10.0.0.1").
	Host string
}

// Coordinator runs the groups of one node. It is not safe for concurrent use:
// every method must be called on the node's event loop.
type Coordinator struct {
	clock  core.Clock
	rand   *core.Rand
	log    *slog.Logger
	cfg    Config
	store  Store
	topics TopicChecker

	// groups indexes groups by id; names keeps the ids sorted so that
	// listings and shutdown never depend on map order.
	groups map[string]*group
	names  []string
	closed bool
	// unloadedPartitions marks, by __consumer_offsets partition, the
	// partitions whose groups this coordinator no longer serves (their
	// partition went offline). No group of such a partition is in groups.
	unloadedPartitions []bool
}

// NewCoordinator returns a coordinator with no groups. Replay the
// __consumer_offsets log into it before serving. topics may be nil, in which
// case commits to any partition are accepted.
func NewCoordinator(clock core.Clock, rand *core.Rand, log *slog.Logger, cfg Config, store Store, topics TopicChecker) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil || rand == nil || log == nil || store == nil {
		panic("group: NewCoordinator needs a clock, a rand, a logger and a store")
	}
	c := &Coordinator{
		clock: clock, rand: rand, log: log, cfg: cfg, store: store, topics: topics,
		groups:             make(map[string]*group),
		unloadedPartitions: make([]bool, cfg.OffsetsPartitions),
	}
	if cfg.PartitionsStartUnloaded {
		for i := range c.unloadedPartitions {
			c.unloadedPartitions[i] = true
		}
	}
	return c, nil
}

// LoadPartition starts serving the groups of offsets partition partition,
// which this coordinator had unloaded or never served: replay must call
// apply (Replay) for every record of the partition, in log order. The
// groups come back from the log, never from what this coordinator held
// before, as in Kafka when a broker becomes an offsets partition's leader.
// On an error the partition is left unloaded, with nothing of the partial
// replay kept. Loading a served partition does nothing.
func (c *Coordinator) LoadPartition(partition int32, replay func(apply func(key, value []byte) error) error) error {
	if partition < 0 || partition >= c.cfg.OffsetsPartitions {
		panic(fmt.Sprintf("group: LoadPartition(%d) outside the %d offsets partitions", partition, c.cfg.OffsetsPartitions))
	}
	if !c.unloadedPartitions[partition] || c.closed {
		return nil
	}
	c.unloadedPartitions[partition] = false
	if err := replay(c.Replay); err != nil {
		c.UnloadPartition(partition)
		return err
	}
	c.log.Info("groups loaded", "partition", partition)
	return nil
}

// UnloadPartition stops serving the groups whose offsets live in
// __consumer_offsets partition partition, because that partition went
// offline (its stored data is corrupt). As Kafka's coordinator does when it
// loses a partition (GroupMetadataManager.removeGroupsForPartition), their
// in-memory state is dropped, not reset: parked JoinGroup and SyncGroup
// requests are answered NOT_COORDINATOR, timers stop, writes in flight are
// answered when the Store calls back, and every later request for those
// groups is answered NOT_COORDINATOR, so no client reads "nothing
// committed" from state that is merely unavailable. The groups come back
// only from a replay of the partition (a restart after a repair). Calling
// it again for the same partition does nothing.
func (c *Coordinator) UnloadPartition(partition int32) {
	if partition < 0 || partition >= c.cfg.OffsetsPartitions {
		panic(fmt.Sprintf("group: UnloadPartition(%d) outside the %d offsets partitions", partition, c.cfg.OffsetsPartitions))
	}
	if c.unloadedPartitions[partition] {
		return
	}
	c.unloadedPartitions[partition] = true
	unloaded := 0
	for _, name := range slices.Clone(c.names) {
		if c.partitionOf(name) == partition {
			c.unload(c.groups[name], kerr.NotCoordinator.Code)
			unloaded++
		}
	}
	for _, name := range c.names {
		if c.partitionOf(name) == partition {
			panic(fmt.Sprintf("group: group %q left in unloaded partition %d", name, partition))
		}
	}
	c.log.Warn("groups unloaded: their offsets partition is offline", "partition", partition, "groups", unloaded)
}

// PartitionUnloaded reports whether UnloadPartition was called for
// partition.
func (c *Coordinator) PartitionUnloaded(partition int32) bool {
	return c.unloadedPartitions[partition]
}

// partitionOf is the __consumer_offsets partition that holds group name.
func (c *Coordinator) partitionOf(name string) int32 {
	return OffsetsPartition(name, c.cfg.OffsetsPartitions)
}

// coordinates reports whether this coordinator serves group name: it is
// open and the group's offsets partition is loaded. Requests for a group it
// does not serve are answered NOT_COORDINATOR, as Kafka answers for a group
// whose partition it does not own.
func (c *Coordinator) coordinates(name string) bool {
	return !c.closed && !c.unloadedPartitions[c.partitionOf(name)]
}

// Close stops every timer and answers every parked JoinGroup and SyncGroup
// with NOT_COORDINATOR, as Kafka does when a coordinator unloads its groups.
// Requests waiting on the Store are answered when the Store calls back.
// Later requests are answered NOT_COORDINATOR.
func (c *Coordinator) Close() {
	if c.closed {
		return
	}
	for _, name := range slices.Clone(c.names) {
		c.unload(c.groups[name], kerr.NotCoordinator.Code)
	}
	c.closed = true
	if len(c.groups) != 0 || len(c.names) != 0 {
		panic("group: groups left after Close")
	}
}

// unload takes g out of the coordinator, answering its parked requests with
// code and stopping its timers.
func (c *Coordinator) unload(g *group, code int16) {
	for _, m := range slices.Clone(g.members) {
		c.removeMember(g, m, code)
	}
	for _, id := range sortedKeys(g.pending) {
		c.removePending(g, id)
	}
	c.stopJoinTimer(g)
	c.stopSyncTimer(g)
	g.unloaded = true
	c.removeGroup(g)
}

// APIVersions is the range of versions implemented for one Kafka API.
type APIVersions struct {
	Key, Min, Max int16
}

// supported lists, sorted by API key, the versions the coordinator
// implements and its tests exercise.
var supported = []APIVersions{
	{Key: 8, Min: 0, Max: 9},  // OffsetCommit
	{Key: 9, Min: 0, Max: 9},  // OffsetFetch
	{Key: 11, Min: 0, Max: 9}, // JoinGroup
	{Key: 12, Min: 0, Max: 4}, // Heartbeat
	{Key: 13, Min: 0, Max: 5}, // LeaveGroup
	{Key: 14, Min: 0, Max: 5}, // SyncGroup
	{Key: 15, Min: 0, Max: 6}, // DescribeGroups
	{Key: 16, Min: 0, Max: 5}, // ListGroups
	{Key: 42, Min: 0, Max: 2}, // DeleteGroups
	{Key: 47, Min: 0, Max: 0}, // OffsetDelete
}

// SupportedVersions returns the APIs and versions the coordinator handles,
// sorted by API key, for the broker to advertise in ApiVersions.
func SupportedVersions() []APIVersions {
	return slices.Clone(supported)
}

func versionSupported(key, version int16) bool {
	for _, v := range supported {
		if v.Key == key {
			return version >= v.Min && version <= v.Max
		}
	}
	panic(fmt.Sprintf("group: API key %d is not a group API", key))
}

// OffsetsPartition returns the __consumer_offsets partition that holds
// group, as Kafka computes it (Java's String.hashCode, made non-negative,
// modulo the partition count), so clients of other brokers agree on it.
func OffsetsPartition(group string, partitions int32) int32 {
	if partitions <= 0 {
		panic("group: OffsetsPartition needs a positive partition count")
	}
	var h int32
	for _, r := range group {
		if r >= 0x10000 { // a surrogate pair in Java's UTF-16 string
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return (h & 0x7fffffff) % partitions
}

func validGroupID(name string) bool {
	return name != "" && len(name) <= groupIDBytesMax
}

// addGroup creates an Empty group; the caller checked GroupsMax.
func (c *Coordinator) addGroup(name string) *group {
	if c.groups[name] != nil || len(c.groups) >= c.cfg.GroupsMax || !c.coordinates(name) {
		panic(fmt.Sprintf("group: cannot add group %q", name))
	}
	g := newGroup(name)
	c.groups[name] = g
	i, _ := slices.BinarySearch(c.names, name)
	c.names = slices.Insert(c.names, i, name)
	return g
}

func (c *Coordinator) removeGroup(g *group) {
	if c.groups[g.name] != g {
		panic(fmt.Sprintf("group: removing group %q that is not indexed", g.name))
	}
	delete(c.groups, g.name)
	i, found := slices.BinarySearch(c.names, g.name)
	if !found {
		panic(fmt.Sprintf("group: group %q missing from the sorted names", g.name))
	}
	c.names = slices.Delete(c.names, i, i+1)
}

// removeIfUnused drops a replayed group that holds nothing worth keeping.
func (c *Coordinator) removeIfUnused(g *group) {
	if g.state == Empty && g.generation == 0 && len(g.offsets) == 0 && len(g.pending) == 0 && g.writesPending == 0 {
		c.removeGroup(g)
	}
}

// newMemberID draws a member id unique in g: the client id (or the group
// instance id of a static member) and 16 hex digits, as Kafka's
// clientId-UUID, but drawn from the node's seeded randomness. The current
// time is mixed in so that a coordinator restarted with an identically
// seeded Rand does not hand out the ids of the previous incarnation again.
func (c *Coordinator) newMemberID(g *group, prefix string) string {
	for range memberIDAttemptsMax {
		id := fmt.Sprintf("%s-%016x", prefix, c.rand.Uint64()^uint64(c.clock.Now().UnixNano()))
		if g.byID[id] == nil && g.pending[id] == nil {
			return id
		}
	}
	panic(fmt.Sprintf("group %q: %d colliding member ids in a row", g.name, memberIDAttemptsMax))
}

// append writes records for g and calls done when the Store answers. It is
// the last thing a handler does, because done may run before it returns.
func (c *Coordinator) append(g *group, records []StoreRecord, done func(error)) {
	if len(records) == 0 {
		panic("group: empty append")
	}
	g.writesPending++
	g.appendSeq++
	seq, called := g.appendSeq, false
	c.store.Append(g.name, records, func(err error) {
		if called {
			panic(fmt.Sprintf("group %q: Store called done twice for append %d", g.name, seq))
		}
		called = true
		if seq != g.doneSeq+1 {
			panic(fmt.Sprintf("group %q: Store completed append %d after %d, out of order", g.name, seq, g.doneSeq))
		}
		g.doneSeq = seq
		g.writesPending--
		done(err)
		if !g.unloaded {
			g.checkInvariants(c.cfg)
		}
	})
}

// persistGroup writes g's metadata without waiting for it: the records that
// need no answer (a group turning Empty, a static member replaced in place).
// A lost write is repaired by the next one, or by clients rejoining after a
// restart.
func (c *Coordinator) persistGroup(g *group) {
	value := groupValue(g, nil, c.clock.Now().UnixMilli())
	c.append(g, []StoreRecord{{Key: groupKey(g.name), Value: value}}, func(err error) {
		if err != nil {
			c.log.Warn("group metadata write failed", "group", g.name, "generation", g.generation, "err", err)
		}
	})
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m { // order-independent: the keys are sorted below
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
