package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSingleMemberJoinSync checks the KIP-394 two-step join of one member:
// MEMBER_ID_REQUIRED with an id, then generation 1 with the member as
// leader, then its own assignment back from SyncGroup once durable.
func TestSingleMemberJoinSync(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	if gen != 1 || len(ids) != 1 {
		t.Fatalf("generation %d, members %v", gen, ids)
	}
	if h.store.appends != 1 {
		t.Fatalf("want one group metadata write, got %d", h.store.appends)
	}
}

// TestThreeMembersLeaderGetsMetadata checks that with three members the
// first joiner leads, only the leader receives everyone's metadata, and each
// member receives exactly the assignment the leader gave it.
func TestThreeMembersLeaderGetsMetadata(t *testing.T) {
	h := newHarness(t, testConfig())
	var joins []*reply[*kmsg.JoinGroupResponse]
	for range 3 {
		joins = append(joins, h.joinNew("g"))
	}
	h.settle()
	first := joins[0].got
	if first.LeaderID != first.MemberID || len(first.Members) != 3 {
		t.Fatalf("leader response: leader %q member %q, %d members", first.LeaderID, first.MemberID, len(first.Members))
	}
	for i, m := range first.Members {
		if m.MemberID != joins[i].got.MemberID || string(m.ProtocolMetadata) != "meta-range" {
			t.Fatalf("member %d listed as %+v", i, m)
		}
	}
	for _, j := range joins[1:] {
		if len(j.got.Members) != 0 || j.got.LeaderID != first.MemberID || *j.got.Protocol != "range" {
			t.Fatalf("follower response %+v", j.got)
		}
	}
	// Followers sync first and wait for the leader.
	f1 := h.sync(syncReq("g", joins[1].got.MemberID, 1, nil))
	if f1.done() {
		t.Fatal("follower sync answered before the leader's assignment")
	}
	assign := map[string]string{}
	for i, j := range joins {
		assign[j.got.MemberID] = string(rune('A' + i))
	}
	l := h.sync(syncReq("g", first.MemberID, 1, assign))
	f2 := h.sync(syncReq("g", joins[2].got.MemberID, 1, nil))
	for i, r := range []*reply[*kmsg.SyncGroupResponse]{l, f1, f2} {
		want := []string{"A", "B", "C"}[i]
		if !r.done() || string(r.got.MemberAssignment) != want {
			t.Fatalf("sync %d: got %+v, want assignment %q", i, r.got, want)
		}
	}
}

// TestProtocolVote checks Kafka's protocol vote: the protocol most members
// prefer among those all support wins, and protocols not supported by all
// are never chosen.
func TestProtocolVote(t *testing.T) {
	h := newHarness(t, testConfig())
	a := h.joinNew2("g", "sticky", "range", "rr")
	b := h.joinNew2("g", "range", "sticky")
	c := h.joinNew2("g", "range", "sticky")
	h.settle()
	for _, r := range []*reply[*kmsg.JoinGroupResponse]{a, b, c} {
		if !r.done() || *r.got.Protocol != "range" {
			t.Fatalf("protocol: %+v", r.got)
		}
	}
	bad := h.join(joinReq("g", "", 5, "rr"))
	if bad.got.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("incompatible join: %+v", bad.got)
	}
}

func (h *harness) joinNew2(group string, protocols ...string) *reply[*kmsg.JoinGroupResponse] {
	first := h.join(joinReq(group, "", 5, protocols...))
	return h.join(joinReq(group, first.got.MemberID, 5, protocols...))
}

// TestOldJoinVersionsSkipMemberIDRequired checks that JoinGroup v0-v3 joins
// at once with a generated member id, without MEMBER_ID_REQUIRED.
func TestOldJoinVersionsSkipMemberIDRequired(t *testing.T) {
	for _, v := range []int16{0, 1, 2, 3} {
		h := newHarness(t, testConfig())
		r := h.join(joinReq("g", "", v))
		h.settle()
		if !r.done() || r.got.ErrorCode != 0 || r.got.MemberID == "" || r.got.Generation != 1 {
			t.Fatalf("v%d: %+v", v, r.got)
		}
	}
}

// TestLeaveTriggersRebalance checks that a member leaving a Stable group
// sends the others into a new generation without it.
func TestLeaveTriggersRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	if code := h.leave("g", ids[1]); code != 0 {
		t.Fatalf("leave: %d", code)
	}
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after leave: %d", code)
	}
	j0 := h.join(joinReq("g", ids[0], 5))
	if j0.done() {
		t.Fatal("join answered before the other member rejoined")
	}
	j2 := h.join(joinReq("g", ids[2], 5))
	if !j0.done() || !j2.done() || j0.got.Generation != gen+1 || len(j0.got.Members) != 2 {
		t.Fatalf("rejoin: %+v / %+v", j0.got, j2.got)
	}
	if code := h.heartbeat("g", ids[1], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("departed member heartbeat: %d", code)
	}
}

// TestSessionTimeoutRemovesMember checks that a member that stops
// heartbeating is removed after its session timeout, while one that keeps
// heartbeating stays, and that the survivor's rejoin forms a new generation.
func TestSessionTimeoutRemovesMember(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	// The silent member expires 10s after its SyncGroup answer; the
	// heartbeating one learns of the rebalance on its third heartbeat.
	for i, want := range []int16{0, 0, kerr.RebalanceInProgress.Code} {
		h.clock.Advance(4 * time.Second)
		if code := h.heartbeat("g", ids[0], gen); code != want {
			t.Fatalf("heartbeat %d: %d, want %d", i, code, want)
		}
	}
	g := h.c.groups["g"]
	if g.byID[ids[1]] != nil || g.state != PreparingRebalance {
		t.Fatalf("silent member still present or no rebalance: state %v", g.state)
	}
	j := h.join(joinReq("g", ids[0], 5))
	if !j.done() || j.got.Generation != gen+1 || len(j.got.Members) != 1 {
		t.Fatalf("rejoin: %+v", j.got)
	}
}

// TestJoinDeadlineRemovesLaggards checks that the join phase ends at the
// rebalance timeout and removes members that did not rejoin.
func TestJoinDeadlineRemovesLaggards(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	j := h.join(joinReq("g", ids[0], 5, "range", "x")) // changed protocols: rebalance
	// The laggard keeps heartbeating (REBALANCE_IN_PROGRESS) but never joins.
	for elapsed := time.Duration(0); elapsed < testRebalanceMs*time.Millisecond-time.Second; elapsed += 5 * time.Second {
		if j.done() {
			t.Fatal("join answered before the deadline")
		}
		h.heartbeat("g", ids[1], gen)
		h.clock.Advance(5 * time.Second)
	}
	h.clock.Advance(time.Second)
	if !j.done() || j.got.Generation != gen+1 || len(j.got.Members) != 1 {
		t.Fatalf("join after deadline: %+v", j.got)
	}
}

// TestRejoinDuringStable checks that a follower rejoining with the same
// protocols gets the current generation without a rebalance, while the
// leader rejoining starts one.
func TestRejoinDuringStable(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	f := h.join(joinReq("g", ids[1], 5))
	if !f.done() || f.got.Generation != gen || h.c.groups["g"].state != Stable {
		t.Fatalf("follower rejoin: %+v", f.got)
	}
	l := h.join(joinReq("g", ids[0], 5))
	if l.done() || h.c.groups["g"].state != PreparingRebalance {
		t.Fatal("leader rejoin did not start a rebalance")
	}
}

// TestHeartbeatErrors checks the heartbeat error codes for unknown groups,
// unknown members, stale generations and rebalances.
func TestHeartbeatErrors(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	cases := []struct {
		group, member string
		generation    int32
		want          int16
	}{
		{"g", ids[0], gen, 0},
		{"nope", ids[0], gen, kerr.UnknownMemberID.Code},
		{"g", "stranger", gen, kerr.UnknownMemberID.Code},
		{"g", ids[0], gen - 1, kerr.IllegalGeneration.Code},
		{"", ids[0], gen, kerr.InvalidGroupID.Code},
	}
	for _, tc := range cases {
		if got := h.heartbeat(tc.group, tc.member, tc.generation); got != tc.want {
			t.Errorf("heartbeat(%q, %q, %d) = %d, want %d", tc.group, tc.member, tc.generation, got, tc.want)
		}
	}
}

// TestJoinValidation checks request-level JoinGroup errors.
func TestJoinValidation(t *testing.T) {
	h := newHarness(t, testConfig())
	short := joinReq("g", "", 5)
	short.SessionTimeoutMillis = 100
	empty := joinReq("g", "", 5)
	empty.Protocols = nil
	for _, tc := range []struct {
		req  *kmsg.JoinGroupRequest
		want int16
	}{
		{short, kerr.InvalidSessionTimeout.Code},
		{empty, kerr.InconsistentGroupProtocol.Code},
		{joinReq("", "", 5), kerr.InvalidGroupID.Code},
		{joinReq("g", "made-up", 5), kerr.UnknownMemberID.Code},
	} {
		if r := h.join(tc.req); !r.done() || r.got.ErrorCode != tc.want {
			t.Errorf("join %+v: got %d, want %d", tc.req, r.got.ErrorCode, tc.want)
		}
	}
	if len(h.c.groups) != 0 {
		t.Fatalf("failed joins left %d groups", len(h.c.groups))
	}
}

// TestGroupMaxSize checks GROUP_MAX_SIZE_REACHED once members plus pending
// member ids reach the limit.
func TestGroupMaxSize(t *testing.T) {
	cfg := testConfig()
	cfg.MembersPerGroupMax = 2
	h := newHarness(t, cfg)
	h.join(joinReq("g", "", 5))
	h.join(joinReq("g", "", 5))
	if r := h.join(joinReq("g", "", 5)); r.got.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("third join: %+v", r.got)
	}
}

// TestPendingMemberExpires checks that a member id handed out with
// MEMBER_ID_REQUIRED expires after the session timeout, after which joining
// with it is UNKNOWN_MEMBER_ID and the empty group is forgotten.
func TestPendingMemberExpires(t *testing.T) {
	h := newHarness(t, testConfig())
	first := h.join(joinReq("g", "", 5))
	h.clock.Advance(testSessionMs * time.Millisecond)
	if len(h.c.groups) != 0 {
		t.Fatal("group with only an expired pending member kept")
	}
	if r := h.join(joinReq("g", first.got.MemberID, 5)); r.got.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("late join: %+v", r.got)
	}
}

// TestSyncDeadlineRemovesSilentMembers checks that a member that got its
// JoinGroup answer but never syncs is removed at the rebalance timeout and
// the group rebalances.
func TestSyncDeadlineRemovesSilentMembers(t *testing.T) {
	h := newHarness(t, testConfig())
	a, b := h.joinNew("g"), h.joinNew("g")
	h.settle()
	leader := a.got.MemberID
	s := h.sync(syncReq("g", leader, 1, map[string]string{leader: "x", b.got.MemberID: "y"}))
	if !s.done() || h.c.groups["g"].state != Stable {
		t.Fatalf("leader sync: %+v", s.got)
	}
	// The follower heartbeats so its session stays alive, but never syncs.
	for range 7 {
		h.clock.Advance(5 * time.Second)
		h.heartbeat("g", b.got.MemberID, 1)
		h.heartbeat("g", leader, 1)
	}
	g := h.c.groups["g"]
	if g.byID[b.got.MemberID] != nil || g.state != PreparingRebalance {
		t.Fatalf("silent member kept; state %v", g.state)
	}
}

// TestStaticMemberReplacement checks KIP-345: a static follower restarting
// with an empty member id takes over its assignment without a rebalance, and
// the old member id is fenced.
func TestStaticMemberReplacement(t *testing.T) {
	h := newHarness(t, testConfig())
	static := func(memberID, instance string) *kmsg.JoinGroupRequest {
		r := joinReq("g", memberID, 5)
		r.InstanceID = kmsg.StringPtr(instance)
		return r
	}
	a := h.join(static("", "i-a"))
	b := h.join(static("", "i-b"))
	h.settle()
	if !a.done() || !b.done() || a.got.ErrorCode != 0 {
		t.Fatalf("static joins: %+v / %+v", a.got, b.got)
	}
	leader, follower := a.got.MemberID, b.got.MemberID
	h.sync(syncReq("g", leader, 1, map[string]string{leader: "L", follower: "F"}))
	h.sync(syncReq("g", follower, 1, nil))
	again := h.join(static("", "i-b"))
	if !again.done() || again.got.ErrorCode != 0 || again.got.Generation != 1 || again.got.MemberID == follower {
		t.Fatalf("static rejoin: %+v", again.got)
	}
	if s := h.sync(syncReq("g", again.got.MemberID, 1, nil)); string(s.got.MemberAssignment) != "F" {
		t.Fatalf("replacement assignment: %+v", s.got)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", follower, 1, kmsg.StringPtr("i-b")
	r := &reply[*kmsg.HeartbeatResponse]{t: t}
	h.c.Heartbeat(hb, r.respond)
	if r.got.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old incarnation heartbeat: %d", r.got.ErrorCode)
	}
}

// TestInitialRebalanceDelay checks group.initial.rebalance.delay.ms: the
// first rebalance waits the delay, and is extended while new members arrive.
func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 3 * time.Second
	h := newHarness(t, cfg)
	a := h.joinNew("g")
	h.clock.Advance(2 * time.Second)
	b := h.joinNew("g")
	h.clock.Advance(2 * time.Second) // the first delay ends; b arrived: extend
	if a.done() || b.done() {
		t.Fatal("join answered during the initial delay")
	}
	h.clock.Advance(3 * time.Second)
	if !a.done() || !b.done() || len(a.got.Members) != 2 {
		t.Fatalf("after the delay: %+v / %+v", a.got, b.got)
	}
}

// TestCloseAnswersParkedRequests checks that Close answers parked joins with
// NOT_COORDINATOR, stops every timer, and refuses later requests.
func TestCloseAnswersParkedRequests(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, _ := h.stableGroup("g", 2)
	j := h.join(joinReq("g", ids[0], 5)) // the leader rejoins: parked
	h.c.Close()
	if !j.done() || j.got.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after Close: %+v", j.got)
	}
	if n := h.clock.pending(); n != 0 {
		t.Fatalf("%d timers armed after Close", n)
	}
	if code := h.heartbeat("g", ids[0], 1); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat after Close: %d", code)
	}
}

// TestSyncStoreFailure checks that when the leader's assignment cannot be
// stored, every parked SyncGroup gets COORDINATOR_NOT_AVAILABLE and the
// group rebalances instead of delivering an assignment that is not durable.
func TestSyncStoreFailure(t *testing.T) {
	h := newHarness(t, testConfig())
	a, b := h.joinNew("g"), h.joinNew("g")
	h.settle()
	h.store.mode = storeDelayed
	fs := h.sync(syncReq("g", b.got.MemberID, 1, nil))
	ls := h.sync(syncReq("g", a.got.MemberID, 1, map[string]string{a.got.MemberID: "x"}))
	if fs.done() || ls.done() {
		t.Fatal("sync answered before the assignment was durable")
	}
	h.store.fail(errStoreDown)
	for _, s := range []*reply[*kmsg.SyncGroupResponse]{fs, ls} {
		if !s.done() || s.got.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("sync after store failure: %+v", s.got)
		}
	}
	if st := h.c.groups["g"].state; st != PreparingRebalance {
		t.Fatalf("state %v, want PreparingRebalance", st)
	}
}
