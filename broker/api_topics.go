package broker

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
)

// handleCreateTopics answers CreateTopics (key 19), versions 0-7.
//
// Checks run in the order of Kafka's ReplicationControlManager.createTopics:
// the name (INVALID_TOPIC_EXCEPTION), existence (TOPIC_ALREADY_EXISTS), the
// configs (INVALID_CONFIG), then the replica assignment, replication factor
// and partition count. NumPartitions and ReplicationFactor of -1 take the
// broker defaults. With one broker the only valid replication factor is 1,
// and a manual replica assignment may only name this broker. A name given
// more than once gets one INVALID_REQUEST entry, after the others, as
// Kafka's ControllerApis answers. ValidateOnly checks everything, creates
// nothing, and from v5 answers the partitions, replication factor and
// configs the topic would get (KIP-525).
//
// Partitions are created a chunk per loop turn (catalog_chunk.go), so that
// other clients are served meanwhile, and the request is parked until
// every topic is created or failed. A topic still being created when the
// request's timeout passes is answered REQUEST_TIMED_OUT, as Kafka's
// controller answers, and its creation goes on; it appears in Metadata
// once complete. A timeout of 0 or less waits for the creation.
func handleCreateTopics(n *Node, r *request, req kmsg.Request) {
	if n.cluster != nil {
		n.forwardToController(r, req, time.Duration(req.(*kmsg.CreateTopicsRequest).TimeoutMillis)*time.Millisecond)
		return
	}
	cr := req.(*kmsg.CreateTopicsRequest)
	resp := cr.ResponseKind().(*kmsg.CreateTopicsResponse)
	names := make([]string, 0, len(cr.Topics))
	for _, rt := range cr.Topics {
		names = append(names, rt.Topic)
	}
	duplicates := duplicatedNames(names)
	w := &createWaiter{waiting: waiting{request: r, resp: resp}}
	w.onTimeout = w.markTimedOut
	for _, rt := range cr.Topics {
		if slices.Contains(duplicates, rt.Topic) {
			continue
		}
		resp.Topics = append(resp.Topics, kmsg.NewCreateTopicsResponseTopic())
		w.start(n, cr.ValidateOnly, rt, len(resp.Topics)-1)
	}
	for _, name := range duplicates {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = name
		st.NumPartitions, st.ReplicationFactor = -1, -1
		setError(&st.ErrorCode, &st.ErrorMessage, fmt.Errorf("%w: duplicate topic name %q", kerr.InvalidRequest, name))
		resp.Topics = append(resp.Topics, st)
	}
	// A closed connection drops the answer; the creations go on, as they
	// do after a timeout.
	w.wait(n, cr.TimeoutMillis)
}

// waiting is the answer of a request that waits for work it started in
// chunks (topic creations, partition growths): it is sent once every
// piece finished, or at the request's timeout after onTimeout marked what
// is still missing, and never twice. A closed connection drops it.
type waiting struct {
	request *request
	resp    kmsg.Response
	// pending counts the pieces still running; started is set once every
	// piece has started, so that pieces that finish at once do not answer
	// early.
	pending   int
	started   bool
	answered  bool
	timer     core.Timer
	onTimeout func()
}

// add counts one more running piece and returns what its completion calls.
func (w *waiting) add() func() {
	w.pending++
	return func() {
		w.pending--
		if w.started && w.pending == 0 {
			w.answer()
		}
	}
}

// wait is called once every piece has started: it answers now if none is
// still running, else parks the request until they finish or timeoutMs
// passes (0: no timeout).
func (w *waiting) wait(n *Node, timeoutMs int32) {
	w.started = true
	if w.pending == 0 {
		w.answer()
		return
	}
	w.request.conn.park(func() {})
	if timeoutMs > 0 {
		w.timer = n.env.Clock.AfterFunc(time.Duration(timeoutMs)*time.Millisecond, w.timeOut)
	}
}

func (w *waiting) timeOut() {
	if w.answered {
		return
	}
	w.onTimeout()
	w.answer()
}

func (w *waiting) answer() {
	if w.answered {
		return
	}
	w.answered = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.request.respond(w.resp)
}

// createWaiter is a CreateTopics request waiting for its topics' creation.
type createWaiter struct {
	waiting
}

func (w *createWaiter) response() *kmsg.CreateTopicsResponse {
	return w.resp.(*kmsg.CreateTopicsResponse)
}

// start checks and creates (or, for validateOnly, only checks) topic rt,
// whose answer is resp.Topics[i].
func (w *createWaiter) start(n *Node, validateOnly bool, rt kmsg.CreateTopicsRequestTopic, i int) {
	st := &w.response().Topics[i]
	st.Topic = rt.Topic
	st.NumPartitions, st.ReplicationFactor = -1, -1
	plan, err := n.planTopic(rt)
	if err == nil && validateOnly {
		err = n.catalog.validateCreate(rt.Topic, plan.partitions, plan.overrides)
	}
	if err != nil || validateOnly {
		w.settle(n, i, plan, nil, err)
		return
	}
	done := w.add()
	n.catalog.createInChunks(rt.Topic, plan.partitions, plan.overrides, func(t *topic, err error) {
		w.settle(n, i, plan, t, err)
		done()
	})
}

// settle fills in the answer for resp.Topics[i].
func (w *createWaiter) settle(n *Node, i int, plan topicPlan, t *topic, err error) {
	if w.answered {
		return
	}
	st := &w.response().Topics[i]
	setError(&st.ErrorCode, &st.ErrorMessage, err)
	if err != nil {
		return
	}
	if t != nil {
		st.TopicID = t.id
	}
	st.NumPartitions, st.ReplicationFactor = plan.partitions, plan.factor
	for _, e := range describeTopicConfig(n.cfg, plan.overrides) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source = e.name, &e.value, int8(e.source)
		st.Configs = append(st.Configs, c)
	}
}

// markTimedOut answers REQUEST_TIMED_OUT for every topic still being
// created: those whose entry is not settled yet (no error, no partition
// count).
func (w *createWaiter) markTimedOut() {
	resp := w.response()
	for i := range resp.Topics {
		st := &resp.Topics[i]
		if st.ErrorCode == 0 && st.Configs == nil && st.NumPartitions == -1 {
			setError(&st.ErrorCode, &st.ErrorMessage, fmt.Errorf("%w: the topic is still being created and appears in metadata once complete", kerr.RequestTimedOut))
		}
	}
}

// duplicatedNames returns, in order of first appearance, the names that
// appear more than once.
func duplicatedNames(names []string) []string {
	var duplicates []string
	for i, name := range names {
		if !slices.Contains(duplicates, name) && slices.Contains(names[i+1:], name) {
			duplicates = append(duplicates, name)
		}
	}
	return duplicates
}

// topicPlan is what a CreateTopics entry asks for, defaults applied.
type topicPlan struct {
	partitions int32
	factor     int16
	overrides  map[string]string
}

// planTopic checks a CreateTopics entry in Kafka's order (see
// handleCreateTopics) and returns what it would create.
func (n *Node) planTopic(rt kmsg.CreateTopicsRequestTopic) (topicPlan, error) {
	if err := validateTopicName(rt.Topic); err != nil {
		return topicPlan{}, err
	}
	if err := checkTopicAbsent(n.catalog, rt.Topic); err != nil {
		return topicPlan{}, err
	}
	plan := topicPlan{partitions: rt.NumPartitions, factor: rt.ReplicationFactor, overrides: make(map[string]string)}
	for _, c := range rt.Configs {
		if c.Value != nil {
			plan.overrides[c.Name] = *c.Value
		}
	}
	if len(plan.overrides) == 0 {
		plan.overrides = nil
	}
	if _, err := resolveTopicConfig(n.cfg, plan.overrides); err != nil {
		return topicPlan{}, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	if len(rt.ReplicaAssignment) > 0 {
		return plan, n.planAssignment(rt, &plan)
	}
	switch {
	case plan.factor < -1 || plan.factor == 0:
		return topicPlan{}, fmt.Errorf("%w: replication factor must be larger than 0, or -1 for the default", kerr.InvalidReplicationFactor)
	case plan.partitions < -1 || plan.partitions == 0:
		return topicPlan{}, fmt.Errorf("%w: %d partitions; give a positive count, or -1 for the default", kerr.InvalidPartitions, plan.partitions)
	}
	if plan.partitions == -1 {
		plan.partitions = n.cfg.NumPartitions
	}
	if plan.factor == -1 {
		plan.factor = n.cfg.DefaultReplicationFactor
	}
	if plan.factor != 1 {
		return topicPlan{}, fmt.Errorf("%w: replication factor %d, but the cluster has 1 broker", kerr.InvalidReplicationFactor, plan.factor)
	}
	return plan, nil
}

// planAssignment checks a manual replica assignment: every partition named
// once, numbered from 0, on this broker only.
func (n *Node) planAssignment(rt kmsg.CreateTopicsRequestTopic, plan *topicPlan) error {
	if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
		return fmt.Errorf("%w: give either a replica assignment or partitions and replication factor", kerr.InvalidRequest)
	}
	seen := make([]bool, len(rt.ReplicaAssignment))
	for _, a := range rt.ReplicaAssignment {
		if a.Partition < 0 || int(a.Partition) >= len(seen) || seen[a.Partition] {
			return fmt.Errorf("%w: partitions must be numbered once each from 0; partition %d is not",
				kerr.InvalidReplicaAssignment, a.Partition)
		}
		seen[a.Partition] = true
		if len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID {
			return fmt.Errorf("%w: partition %d names replicas %v; this cluster has only broker %d",
				kerr.InvalidReplicaAssignment, a.Partition, a.Replicas, n.cfg.NodeID)
		}
	}
	plan.partitions, plan.factor = int32(len(rt.ReplicaAssignment)), 1
	return nil
}

// checkTopicAbsent fails with TOPIC_ALREADY_EXISTS when a topic of that
// name exists, is being created, or is still being deleted.
func checkTopicAbsent(c *catalog, name string) error {
	if _, ok := c.topics[name]; ok {
		return fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, name)
	}
	if c.creatingName(name) {
		return fmt.Errorf("%w: topic %q is being created", kerr.TopicAlreadyExists, name)
	}
	for _, entry := range c.deleting {
		if entry.Name == name {
			return fmt.Errorf("%w: topic %q is marked for deletion", kerr.TopicAlreadyExists, name)
		}
	}
	return nil
}

// handleDeleteTopics answers DeleteTopics (key 20), versions 0-6. Topics are
// named, or from v6 identified by id. Internal topics cannot be deleted. As
// Kafka's ControllerApis.deleteTopics answers, a name or id given more than
// once gets one INVALID_REQUEST entry (listed first), and a v6 entry with
// both a name and an id, or neither, gets INVALID_REQUEST. A deleted topic's
// committed offsets are deleted from every group (tombstones in
// __consumer_offsets), and the answer waits until they are durable.
func handleDeleteTopics(n *Node, r *request, req kmsg.Request) {
	if n.cluster != nil {
		n.forwardToController(r, req, time.Duration(req.(*kmsg.DeleteTopicsRequest).TimeoutMillis)*time.Millisecond)
		return
	}
	dr := req.(*kmsg.DeleteTopicsRequest)
	resp := dr.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := dr.Topics
	for _, name := range dr.TopicNames {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = &name
		targets = append(targets, t)
	}
	var names []string
	var ids [][16]byte
	for _, rt := range targets {
		if rt.Topic != nil {
			names = append(names, *rt.Topic)
		} else {
			ids = append(ids, rt.TopicID)
		}
	}
	duplicateNames, duplicateIDs := duplicatedNames(names), duplicatedIDs(ids)
	for _, name := range duplicateNames {
		resp.Topics = append(resp.Topics, deleteError(&name, [16]byte{}, fmt.Errorf("%w: duplicate topic name %q", kerr.InvalidRequest, name)))
	}
	for _, id := range duplicateIDs {
		resp.Topics = append(resp.Topics, deleteError(nil, id, fmt.Errorf("%w: duplicate topic id", kerr.InvalidRequest)))
	}
	var deleted []string
	for _, rt := range targets {
		if (rt.Topic != nil && slices.Contains(duplicateNames, *rt.Topic)) || (rt.Topic == nil && slices.Contains(duplicateIDs, rt.TopicID)) {
			continue
		}
		st := n.deleteTopic(rt)
		if st.ErrorCode == 0 {
			deleted = append(deleted, *st.Topic)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Kafka's GroupMetadataManager forgets a deleted topic's committed
	// offsets in every group, so that a group reading a topic created again
	// under the same name applies its reset policy instead of resuming at
	// the old offsets. The answer waits until the tombstones are durable,
	// so that a client that deletes, re-creates and consumes never meets
	// the old offsets.
	n.groups.DeleteTopicOffsets(deleted, func() { r.respond(resp) })
}

// duplicatedIDs returns, in order of first appearance, the ids that appear
// more than once.
func duplicatedIDs(ids [][16]byte) [][16]byte {
	var duplicates [][16]byte
	for i, id := range ids {
		if !slices.Contains(duplicates, id) && slices.Contains(ids[i+1:], id) {
			duplicates = append(duplicates, id)
		}
	}
	return duplicates
}

func deleteError(name *string, id [16]byte, err error) kmsg.DeleteTopicsResponseTopic {
	st := kmsg.NewDeleteTopicsResponseTopic()
	st.Topic, st.TopicID = name, id
	setError(&st.ErrorCode, &st.ErrorMessage, err)
	return st
}

// deleteTopic deletes one topic of a DeleteTopics request.
func (n *Node) deleteTopic(rt kmsg.DeleteTopicsRequestTopic) kmsg.DeleteTopicsResponseTopic {
	switch {
	case rt.Topic != nil && rt.TopicID != [16]byte{}:
		return deleteError(rt.Topic, rt.TopicID, fmt.Errorf("%w: give a topic name or a topic id, not both", kerr.InvalidRequest))
	case rt.Topic == nil && rt.TopicID == [16]byte{}:
		return deleteError(nil, rt.TopicID, fmt.Errorf("%w: neither a topic name nor a topic id", kerr.InvalidRequest))
	}
	var t *topic
	if rt.Topic != nil {
		t = n.catalog.topics[*rt.Topic]
	} else {
		t = n.catalog.byID[rt.TopicID]
	}
	switch {
	case t == nil && rt.Topic == nil:
		return deleteError(nil, rt.TopicID, kerr.UnknownTopicID)
	case t == nil:
		return deleteError(rt.Topic, rt.TopicID, kerr.UnknownTopicOrPartition)
	}
	name := t.name
	return deleteError(&name, t.id, n.catalog.remove(t))
}

// handleCreatePartitions answers CreatePartitions (key 37), versions 0-3:
// a topic grows to Count partitions; it never shrinks. New partitions are
// created a chunk per loop turn and join the topic together once all exist
// (catalog_chunk.go); the request is parked until then. A growth still
// under way when the request's timeout passes is answered
// REQUEST_TIMED_OUT and goes on, as CreateTopics does.
func handleCreatePartitions(n *Node, r *request, req kmsg.Request) {
	if n.cluster != nil {
		n.forwardToController(r, req, time.Duration(req.(*kmsg.CreatePartitionsRequest).TimeoutMillis)*time.Millisecond)
		return
	}
	cr := req.(*kmsg.CreatePartitionsRequest)
	resp := cr.ResponseKind().(*kmsg.CreatePartitionsResponse)
	w := &partitionsWaiter{waiting: waiting{request: r, resp: resp}}
	w.onTimeout = w.markTimedOut
	for _, rt := range cr.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		resp.Topics = append(resp.Topics, st)
		w.settled = append(w.settled, false)
		i := len(resp.Topics) - 1
		t := n.catalog.topics[rt.Topic]
		switch {
		case t == nil:
			w.settle(i, kerr.UnknownTopicOrPartition)
		case t.internal:
			w.settle(i, fmt.Errorf("%w: %s is internal", kerr.InvalidTopicException, t.name))
		case rt.Count <= int32(len(t.partitions)):
			w.settle(i, fmt.Errorf("%w: topic %q has %d partitions, cannot go to %d", kerr.InvalidPartitions, t.name, len(t.partitions), rt.Count))
		case cr.ValidateOnly:
			w.settle(i, nil)
		default:
			done := w.add()
			n.catalog.addPartitionsInChunks(t, rt.Count, func(err error) {
				w.settle(i, err)
				done()
			})
		}
	}
	// A closed connection drops the answer; the growths go on.
	w.wait(n, cr.TimeoutMillis)
}

// partitionsWaiter is a CreatePartitions request waiting for its topics to
// grow.
type partitionsWaiter struct {
	waiting
	settled []bool
}

func (w *partitionsWaiter) settle(i int, err error) {
	if w.answered {
		return
	}
	w.settled[i] = true
	resp := w.resp.(*kmsg.CreatePartitionsResponse)
	setError(&resp.Topics[i].ErrorCode, &resp.Topics[i].ErrorMessage, err)
}

// markTimedOut answers REQUEST_TIMED_OUT for every topic still growing.
func (w *partitionsWaiter) markTimedOut() {
	for i, settled := range w.settled {
		if !settled {
			w.settle(i, fmt.Errorf("%w: the partitions are still being created and appear in metadata once complete", kerr.RequestTimedOut))
		}
	}
}
