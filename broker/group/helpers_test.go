package group

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// manualClock is a core.Clock whose time moves only when a test advances it;
// timers fire in deadline order (ties in creation order).
type manualClock struct {
	now    time.Time
	seq    int
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	seq     int
	f       func()
	stopped bool
	fired   bool
}

func (t *manualTimer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Unix(1_700_000_000, 0)}
}

func (c *manualClock) Now() time.Time { return c.now }

func (c *manualClock) AfterFunc(d time.Duration, f func()) core.Timer {
	c.seq++
	t := &manualTimer{at: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time forward by d, firing every timer that falls due on the
// way, including timers those timers arm.
func (c *manualClock) Advance(d time.Duration) {
	target := c.now.Add(d)
	for {
		next := c.nextDue(target)
		if next == nil {
			break
		}
		c.now = next.at
		next.fired = true
		next.f()
	}
	c.now = target
}

func (c *manualClock) nextDue(target time.Time) *manualTimer {
	var next *manualTimer
	live := c.timers[:0]
	for _, t := range c.timers {
		if t.stopped || t.fired {
			continue
		}
		live = append(live, t)
		if !t.at.After(target) && (next == nil || t.at.Before(next.at) || (t.at.Equal(next.at) && t.seq < next.seq)) {
			next = t
		}
	}
	c.timers = live
	return next
}

// pending counts armed timers.
func (c *manualClock) pending() int {
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

type storeMode int

const (
	storeImmediate storeMode = iota // done is called inside Append
	storeDelayed                    // done waits for flush or fail
	storeFailing                    // done is called inside Append with an error
)

var errStoreDown = errors.New("store down")

// fakeStore is a Store whose durable log tests can inspect and replay.
type fakeStore struct {
	mode    storeMode
	log     []StoreRecord
	queued  []queuedAppend
	appends int
}

type queuedAppend struct {
	records []StoreRecord
	done    func(error)
}

func (s *fakeStore) Append(group string, records []StoreRecord, done func(error)) {
	s.appends++
	// Appends complete in order, as in a log: an immediate or failing
	// store first completes what an earlier delayed mode queued.
	s.queued = append(s.queued, queuedAppend{records, done})
	switch s.mode {
	case storeImmediate:
		s.flush()
	case storeFailing:
		s.fail(errStoreDown)
	}
}

// flush makes every queued append durable, in order.
func (s *fakeStore) flush() {
	for len(s.queued) > 0 {
		q := s.queued[0]
		s.queued = s.queued[1:]
		s.log = append(s.log, q.records...)
		q.done(nil)
	}
}

// fail fails every queued append, in order.
func (s *fakeStore) fail(err error) {
	for len(s.queued) > 0 {
		q := s.queued[0]
		s.queued = s.queued[1:]
		q.done(err)
	}
}

// tb is what the harness needs from *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// harness wires a coordinator to a manual clock and a fake store.
type harness struct {
	t     tb
	clock *manualClock
	store *fakeStore
	c     *Coordinator
	cfg   Config
}

func testConfig() Config {
	cfg := DefaultConfig()
	// Members that join within the initial delay form one generation.
	cfg.InitialRebalanceDelay = 3 * time.Second
	cfg.MembersPerGroupMax = 8
	cfg.GroupsMax = 16
	return cfg
}

func newHarness(t tb, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: newManualClock(), store: &fakeStore{}, cfg: cfg}
	h.c = h.newCoordinator()
	return h
}

func (h *harness) newCoordinator() *Coordinator {
	c, err := NewCoordinator(h.clock, core.NewRand(1), slog.New(slog.NewTextHandler(io.Discard, nil)), h.cfg, h.store, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// restart closes the coordinator and builds a new one from the store's log.
func (h *harness) restart() {
	h.t.Helper()
	h.c.Close()
	h.c = h.newCoordinator()
	for _, r := range h.store.log {
		if err := h.c.Replay(r.Key, r.Value); err != nil {
			h.t.Fatalf("replay: %v", err)
		}
	}
}

// reply captures one asynchronous answer and fails the test if a second
// one arrives.
type reply[T any] struct {
	t     tb
	got   T
	count int
}

func (r *reply[T]) respond(v T) {
	r.count++
	if r.count > 1 {
		r.t.Fatalf("request answered %d times", r.count)
	}
	r.got = v
}

func (r *reply[T]) done() bool { return r.count == 1 }

const (
	testSessionMs   = 10_000
	testRebalanceMs = 30_000
)

func joinReq(group, memberID string, version int16, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group = group
	req.MemberID = memberID
	req.SessionTimeoutMillis = testSessionMs
	req.RebalanceTimeoutMillis = testRebalanceMs
	req.ProtocolType = "consumer"
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte("meta-" + p)})
	}
	return req
}

// settle lets the initial rebalance delay pass, with the one extension that
// members joining during the first delay cause.
func (h *harness) settle() { h.clock.Advance(2 * h.cfg.InitialRebalanceDelay) }

// join sends a JoinGroup and returns its (possibly pending) reply.
func (h *harness) join(req *kmsg.JoinGroupRequest) *reply[*kmsg.JoinGroupResponse] {
	r := &reply[*kmsg.JoinGroupResponse]{t: h.t}
	h.c.JoinGroup(Client{ID: "client", Host: "/10.0.0.1"}, req, r.respond)
	return r
}

// joinNew runs the v4+ two-step join of a new member and returns its parked
// second join.
func (h *harness) joinNew(group string) *reply[*kmsg.JoinGroupResponse] {
	h.t.Helper()
	first := h.join(joinReq(group, "", 5))
	if !first.done() || first.got.ErrorCode != 79 || first.got.MemberID == "" {
		h.t.Fatalf("first join: want MEMBER_ID_REQUIRED with a member id, got %+v", first.got)
	}
	return h.join(joinReq(group, first.got.MemberID, 5))
}

func syncReq(group, memberID string, generation int32, assignments map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	ids := make([]string, 0, len(assignments))
	for id := range assignments { // order-independent: sorted below
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(assignments[id])})
	}
	return req
}

func (h *harness) sync(req *kmsg.SyncGroupRequest) *reply[*kmsg.SyncGroupResponse] {
	r := &reply[*kmsg.SyncGroupResponse]{t: h.t}
	h.c.SyncGroup(req, r.respond)
	return r
}

func (h *harness) heartbeat(group, memberID string, generation int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	r := &reply[*kmsg.HeartbeatResponse]{t: h.t}
	h.c.Heartbeat(req, r.respond)
	if !r.done() {
		h.t.Fatal("heartbeat not answered at once")
	}
	return r.got.ErrorCode
}

func (h *harness) leave(group, memberID string) int16 {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = group
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: memberID}}
	r := &reply[*kmsg.LeaveGroupResponse]{t: h.t}
	h.c.LeaveGroup(req, r.respond)
	if !r.done() || r.got.ErrorCode != 0 {
		h.t.Fatalf("leave: %+v", r.got)
	}
	return r.got.Members[0].ErrorCode
}

func commitReq(group, memberID string, generation int32, topic string, partition int32, off int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = partition, off
	p.Metadata = kmsg.StringPtr("m")
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{p}}}
	return req
}

func (h *harness) commit(req *kmsg.OffsetCommitRequest) *reply[*kmsg.OffsetCommitResponse] {
	r := &reply[*kmsg.OffsetCommitResponse]{t: h.t}
	h.c.OffsetCommit(req, r.respond)
	return r
}

func commitCode(r *reply[*kmsg.OffsetCommitResponse]) int16 {
	return r.got.Topics[0].Partitions[0].ErrorCode
}

// fetch returns the committed offset of one partition (v8 form), or the
// group error.
func (h *harness) fetch(group, topic string, partition int32) (int64, int16) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{partition}}}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	r := &reply[*kmsg.OffsetFetchResponse]{t: h.t}
	h.c.OffsetFetch(req, r.respond)
	if !r.done() {
		h.t.Fatal("fetch not answered at once")
	}
	g := r.got.Groups[0]
	if g.ErrorCode != 0 {
		return -1, g.ErrorCode
	}
	return g.Topics[0].Partitions[0].Offset, g.Topics[0].Partitions[0].ErrorCode
}

// stableGroup forms a Stable group of n members with a v5 two-step join and
// returns the member ids (leader first) and the generation.
func (h *harness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	var joins []*reply[*kmsg.JoinGroupResponse]
	for range n {
		joins = append(joins, h.joinNew(group))
	}
	h.settle()
	for _, j := range joins {
		if !j.done() || j.got.ErrorCode != 0 {
			h.t.Fatalf("join not answered after all members joined: %+v", j.got)
		}
	}
	leader, gen := joins[0].got.LeaderID, joins[0].got.Generation
	ids := []string{leader}
	assign := map[string]string{}
	for _, j := range joins {
		assign[j.got.MemberID] = "a-" + j.got.MemberID
		if j.got.MemberID != leader {
			ids = append(ids, j.got.MemberID)
		}
	}
	var syncs []*reply[*kmsg.SyncGroupResponse]
	for _, id := range ids {
		var a map[string]string
		if id == leader {
			a = assign
		}
		syncs = append(syncs, h.sync(syncReq(group, id, gen, a)))
	}
	for i, s := range syncs {
		if !s.done() || s.got.ErrorCode != 0 || string(s.got.MemberAssignment) != "a-"+ids[i] {
			h.t.Fatalf("sync of %s: %+v", ids[i], s.got)
		}
	}
	if g := h.c.groups[group]; g.state != Stable {
		h.t.Fatalf("group in %v, want Stable", g.state)
	}
	return ids, gen
}
