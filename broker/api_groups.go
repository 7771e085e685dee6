package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/group"
	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core/record"
)

// Coordinator types of FindCoordinator.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// registerGroupAPIs adds FindCoordinator and the group coordinator's APIs,
// with the versions package group implements and tests.
func registerGroupAPIs(table map[int16]api) {
	table[10] = api{versionRange{0, 4}, handleFindCoordinator}
	handlers := map[int16]func(n *Node, r *request, req kmsg.Request){
		8: func(n *Node, r *request, req kmsg.Request) {
			n.groups.OffsetCommit(req.(*kmsg.OffsetCommitRequest), respondWith[*kmsg.OffsetCommitResponse](r))
		},
		9: func(n *Node, r *request, req kmsg.Request) {
			n.groups.OffsetFetch(req.(*kmsg.OffsetFetchRequest), respondWith[*kmsg.OffsetFetchResponse](r))
		},
		11: func(n *Node, r *request, req kmsg.Request) {
			client := group.Client{ID: r.header.clientID, Host: "/" + hostOf(r.conn.net.RemoteAddr())}
			n.groups.JoinGroup(client, req.(*kmsg.JoinGroupRequest), respondWith[*kmsg.JoinGroupResponse](r))
		},
		12: func(n *Node, r *request, req kmsg.Request) {
			n.groups.Heartbeat(req.(*kmsg.HeartbeatRequest), respondWith[*kmsg.HeartbeatResponse](r))
		},
		13: func(n *Node, r *request, req kmsg.Request) {
			n.groups.LeaveGroup(req.(*kmsg.LeaveGroupRequest), respondWith[*kmsg.LeaveGroupResponse](r))
		},
		14: func(n *Node, r *request, req kmsg.Request) {
			n.groups.SyncGroup(req.(*kmsg.SyncGroupRequest), respondWith[*kmsg.SyncGroupResponse](r))
		},
		15: func(n *Node, r *request, req kmsg.Request) {
			n.groups.DescribeGroups(req.(*kmsg.DescribeGroupsRequest), respondWith[*kmsg.DescribeGroupsResponse](r))
		},
		16: func(n *Node, r *request, req kmsg.Request) {
			n.groups.ListGroups(req.(*kmsg.ListGroupsRequest), respondWith[*kmsg.ListGroupsResponse](r))
		},
		42: func(n *Node, r *request, req kmsg.Request) {
			n.groups.DeleteGroups(req.(*kmsg.DeleteGroupsRequest), respondWith[*kmsg.DeleteGroupsResponse](r))
		},
		47: func(n *Node, r *request, req kmsg.Request) {
			n.groups.OffsetDelete(req.(*kmsg.OffsetDeleteRequest), respondWith[*kmsg.OffsetDeleteResponse](r))
		},
	}
	for _, v := range group.SupportedVersions() {
		handle, ok := handlers[v.Key]
		if !ok {
			panic(fmt.Sprintf("broker: group API %d has no handler", v.Key))
		}
		table[v.Key] = api{versionRange{v.Min, v.Max}, func(n *Node, r *request, req kmsg.Request) {
			if n.groups == nil {
				// Cluster mode, before __consumer_offsets has local
				// partitions: the coordinator is still loading.
				r.respond(group.ErrorResponse(req, kerr.CoordinatorLoadInProgress))
				return
			}
			handle(n, r, req)
		}}
	}
}

// respondWith adapts a request's respond to a coordinator's typed callback.
// A parked group request (a join waiting for the rebalance) may be answered
// after its connection closed; conn.respond drops such answers.
func respondWith[T kmsg.Response](r *request) func(T) {
	return func(resp T) { r.respond(resp) }
}

// hostOf returns the host part of "host:port".
func hostOf(addr string) string {
	if cut := strings.LastIndexByte(addr, ':'); cut >= 0 {
		return addr[:cut]
	}
	return addr
}

// handleFindCoordinator answers FindCoordinator (key 10), versions 0-4. This
// broker coordinates every group whose __consumer_offsets partition is
// online; a group whose partition is offline has no coordinator
// (COORDINATOR_NOT_AVAILABLE, as Kafka answers when the partition the key
// maps to has no leader), and neither do transactions yet.
func handleFindCoordinator(n *Node, r *request, req kmsg.Request) {
	fr := req.(*kmsg.FindCoordinatorRequest)
	resp := fr.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := splitHostPort(n.advertisedAddrs()[0])
	locate := func(key string) (int32, string, int32, error) {
		if p := n.offsetsPartitionOf(key); p.offline != nil {
			return -1, "", -1, fmt.Errorf("%w: %s, which holds the group, is offline", kerr.CoordinatorNotAvailable, p)
		}
		return n.cfg.NodeID, host, port, nil
	}
	if n.cluster != nil {
		locate = n.cluster.locateCoordinator
	}
	answer := func(key string) (int32, string, int32, error) {
		switch {
		case fr.CoordinatorType == coordinatorTransaction:
			return -1, "", -1, fmt.Errorf("%w: transactions are not supported yet", kerr.CoordinatorNotAvailable)
		case fr.CoordinatorType != coordinatorGroup:
			return -1, "", -1, fmt.Errorf("%w: coordinator type %d", kerr.InvalidRequest, fr.CoordinatorType)
		case key == "":
			return -1, "", -1, fmt.Errorf("%w: empty group id", kerr.InvalidGroupID)
		}
		return locate(key)
	}
	if fr.Version < 4 {
		var err error
		resp.NodeID, resp.Host, resp.Port, err = answer(fr.CoordinatorKey)
		setError(&resp.ErrorCode, &resp.ErrorMessage, err)
		r.respond(resp)
		return
	}
	for _, key := range fr.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		var err error
		c.NodeID, c.Host, c.Port, err = answer(key)
		setError(&c.ErrorCode, &c.ErrorMessage, err)
		resp.Coordinators = append(resp.Coordinators, c)
	}
	r.respond(resp)
}

// offsetsStore keeps group records in __consumer_offsets: one batch per
// Append, in the partition Kafka's hash assigns the group. The coordinator
// is told a write is done only once it is durable (a committed offset is
// promised to survive a crash, in every durability mode): the batch rides
// the partition's group commit and waits in the purgatory like an acks=all
// produce. One group's writes go to one partition and complete in append
// order, as the coordinator requires.
type offsetsStore struct {
	node *Node
	buf  []byte
	recs []record.Record
}

// Append implements group.Store. Nothing is written to an offline
// partition: the coordinator has unloaded its groups, so an append there
// would be a bug, and it is refused (NOT_COORDINATOR) instead of reaching a
// log that may not exist.
func (s *offsetsStore) Append(groupID string, records []group.StoreRecord, done func(error)) {
	p := s.node.offsetsPartitionOf(groupID)
	reply := func(err error) { done(coordinatorError(err)) }
	if p.offline != nil {
		p.failInOrder(p.offlineError(), reply)
		return
	}
	endOffset, err := s.append(p, records, reply)
	if err != nil {
		return // answered in order by append
	}
	p.whenDurable(endOffset, reply)
}

// coordinatorError maps a failed write of __consumer_offsets as Kafka's
// GroupMetadataManager does: a partition this broker can no longer write
// (KAFKA_STORAGE_ERROR, offline; NOT_LEADER_OR_FOLLOWER, closed) means it
// is not the coordinator, so clients look the coordinator up again; other
// errors become COORDINATOR_NOT_AVAILABLE in the coordinator.
func coordinatorError(err error) error {
	if errors.Is(err, kerr.KafkaStorageError) || errors.Is(err, kerr.NotLeaderForPartition) {
		return fmt.Errorf("%w: %w", group.ErrNotCoordinator, err)
	}
	return err
}

// offsetsPartitionOf is the __consumer_offsets partition that holds
// groupID, by Kafka's hash.
func (n *Node) offsetsPartitionOf(groupID string) *partition {
	t := n.catalog.topics[offsetsTopic]
	return t.partitions[group.OffsetsPartition(groupID, int32(len(t.partitions)))]
}

// errAppendAnswered is append's error once it has queued the answer itself.
var errAppendAnswered = errors.New("broker: offsets append failed and was answered in order")

// append writes records to p. On a failure it queues reply's failure
// behind the earlier appends that still wait for durability, and only then
// lets the storage failure take effect: a failed log answers those earlier
// appends at once, an answer may run the connection's next request at
// once, and that request's append must find this failure already queued,
// since the coordinator requires completions in append order (a full disk
// let a later failure overtake an earlier one: sim seeds found it before,
// and 2002983 again once produce requests pipelined).
func (s *offsetsStore) append(p *partition, records []group.StoreRecord, reply func(error)) (int64, error) {
	now := s.node.now().UnixMilli()
	s.recs = s.recs[:0]
	for _, rec := range records {
		s.recs = append(s.recs, record.Record{Timestamp: now, Key: rec.Key, Value: rec.Value})
	}
	batch, err := record.AppendBatch(s.buf[:0], record.NewBatchSpec(record.CodecNone), s.recs)
	if err != nil {
		p.failInOrder(fmt.Errorf("encode offsets batch: %w", err), reply)
		return 0, errAppendAnswered
	}
	s.buf = batch
	durableBefore := p.log.DurableEndOffset()
	_, last, err := p.log.Append(batch, p.leaderEpoch, s.node.now())
	if err != nil {
		p.failInOrder(p.storageFailureError(err), reply)
		p.storageFailure("commit offsets", err)
		return 0, errAppendAnswered
	}
	p.afterAppend(durableBefore)
	return last + 1, nil
}

// openGroups builds the group coordinator and replays __consumer_offsets
// into it, so committed offsets survive restarts. A partition that is
// offline (recovery found it corrupt) or whose replay meets corruption at
// rest is unloaded instead: its groups are unavailable (NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE) until a restart replays it whole, and the rest
// of the broker serves. Any other replay error stops the start.
func (n *Node) openGroups() error {
	partitions := n.catalog.topics[offsetsTopic].partitions
	coordinator, err := n.newGroupCoordinator(int32(len(partitions)), false)
	if err != nil {
		return err
	}
	for _, p := range partitions {
		if p.offline == nil {
			err := p.replayRecords(coordinator.Replay)
			if err != nil && !errors.Is(err, storage.ErrCorruption) {
				return err
			}
			p.checkCorruption("group replay", err)
		}
		if p.offline != nil {
			// The groups replayed from the partition's readable start
			// are dropped with the rest: a partial state would answer
			// offset fetches with older commits.
			coordinator.UnloadPartition(p.index)
		}
	}
	n.groups = coordinator
	return nil
}

// newGroupCoordinator builds the group coordinator for an offsets topic of
// partitions partitions; startUnloaded makes it serve none until loaded.
func (n *Node) newGroupCoordinator(partitions int32, startUnloaded bool) (*group.Coordinator, error) {
	cfg := group.DefaultConfig()
	cfg.SessionTimeoutMin = time.Duration(n.cfg.GroupMinSessionTimeoutMs) * time.Millisecond
	cfg.SessionTimeoutMax = time.Duration(n.cfg.GroupMaxSessionTimeoutMs) * time.Millisecond
	cfg.InitialRebalanceDelay = time.Duration(n.cfg.GroupInitialRebalanceDelayMs) * time.Millisecond
	cfg.OffsetsPartitions = partitions
	cfg.PartitionsStartUnloaded = startUnloaded
	return group.NewCoordinator(n.env.Clock, n.env.Rand.Fork(), n.log, cfg, &offsetsStore{node: n}, n.catalog)
}

// PartitionExists implements group.TopicChecker. In a cluster the
// committed metadata answers, as Kafka's OffsetCommit asks its metadata
// cache: the coordinator need not host, let alone lead, the partition a
// group commits. Asking the local catalog refused every commit of a
// partition led elsewhere with UNKNOWN_TOPIC_OR_PARTITION, and a group
// committing after each poll crawled (sim seed 4 with two replicas on
// four brokers, found by the progress probe's group check).
func (c *catalog) PartitionExists(topic string, partition int32) bool {
	if cl := c.node.cluster; cl != nil {
		t, ok := cl.image.TopicByName(topic)
		return ok && partition >= 0 && int(partition) < len(t.Partitions)
	}
	return c.partition(topic, partition) != nil
}
