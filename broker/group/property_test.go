package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// propClients is the number of simulated consumers in the property test.
const propClients = 4

// propRepeats is how many step sequences one property check runs.
const propRepeats = 8

// propClient is one simulated consumer's view of the group.
type propClient struct {
	memberID   string
	generation int32
	members    []string // set when this client led its generation
}

// propModel drives a coordinator with random client behaviour and checks
// what clients observe against what the coordinator promised.
type propModel struct {
	h       *harness
	clients [propClients]propClient
	// unanswered counts requests that have not been answered yet.
	unanswered int
	// leaders records the leader each generation announced.
	leaders map[int32]string
	// durable is the offset of the last commit answered as successful,
	// per partition: it must be what OffsetFetch returns.
	durable map[int32]int64
	nextOff int64
}

func newPropModel(t *rapid.T) *propModel {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = time.Duration(rapid.IntRange(0, 3).Draw(t, "delaySeconds")) * time.Second
	return &propModel{h: newHarness(t, cfg), leaders: map[int32]string{}, durable: map[int32]int64{}}
}

// track wraps a respond callback: it fails on a second answer and keeps the
// count of unanswered requests.
func track[T any](m *propModel, t *rapid.T, f func(T)) func(T) {
	m.unanswered++
	answered := false
	return func(v T) {
		if answered {
			t.Fatal("request answered twice")
		}
		answered = true
		m.unanswered--
		f(v)
	}
}

func (m *propModel) join(t *rapid.T) {
	i := rapid.IntRange(0, propClients-1).Draw(t, "client")
	protocols := rapid.SampledFrom([][]string{{"range"}, {"range", "rr"}, {"rr", "range"}}).Draw(t, "protocols")
	req := joinReq("g", m.clients[i].memberID, int16(rapid.IntRange(3, 9).Draw(t, "version")), protocols...)
	m.h.c.JoinGroup(Client{ID: fmt.Sprintf("c%d", i)}, req, track(m, t, func(r *kmsg.JoinGroupResponse) {
		m.onJoin(t, i, r)
	}))
}

func (m *propModel) onJoin(t *rapid.T, i int, r *kmsg.JoinGroupResponse) {
	c := &m.clients[i]
	switch r.ErrorCode {
	case 0:
		if leader, ok := m.leaders[r.Generation]; ok && leader != r.LeaderID {
			t.Fatalf("generation %d announced leaders %q and %q", r.Generation, leader, r.LeaderID)
		}
		m.leaders[r.Generation] = r.LeaderID
		c.memberID, c.generation, c.members = r.MemberID, r.Generation, nil
		if r.LeaderID == r.MemberID {
			for _, rm := range r.Members {
				c.members = append(c.members, rm.MemberID)
			}
		}
	case kerr.MemberIDRequired.Code:
		c.memberID = r.MemberID
	case kerr.UnknownMemberID.Code:
		c.memberID, c.generation = "", 0
	}
}

func (m *propModel) sync(t *rapid.T) {
	i := rapid.IntRange(0, propClients-1).Draw(t, "client")
	c := m.clients[i]
	assign := map[string]string{}
	for _, id := range c.members {
		assign[id] = fmt.Sprintf("%d:%s", c.generation, id)
	}
	m.h.c.SyncGroup(syncReq("g", c.memberID, c.generation, assign), track(m, t, func(r *kmsg.SyncGroupResponse) {
		if r.ErrorCode != 0 {
			return
		}
		// Every delivered assignment comes from the leader of the
		// member's own generation, addressed to that member.
		if want := fmt.Sprintf("%d:%s", c.generation, c.memberID); string(r.MemberAssignment) != want {
			t.Fatalf("client %d got assignment %q, want %q", i, r.MemberAssignment, want)
		}
	}))
}

func (m *propModel) heartbeat(t *rapid.T) {
	c := m.clients[rapid.IntRange(0, propClients-1).Draw(t, "client")]
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation = "g", c.memberID, c.generation
	m.h.c.Heartbeat(hb, track(m, t, func(*kmsg.HeartbeatResponse) {}))
}

func (m *propModel) leave(t *rapid.T) {
	i := rapid.IntRange(0, propClients-1).Draw(t, "client")
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m.clients[i].memberID}}
	m.h.c.LeaveGroup(req, track(m, t, func(*kmsg.LeaveGroupResponse) {}))
	m.clients[i] = propClient{}
}

func (m *propModel) commit(t *rapid.T) {
	c := m.clients[rapid.IntRange(0, propClients-1).Draw(t, "client")]
	partition := int32(rapid.IntRange(0, 2).Draw(t, "partition"))
	m.nextOff++
	off := m.nextOff
	req := commitReq("g", c.memberID, c.generation, "t", partition, off)
	if rapid.Bool().Draw(t, "simple") {
		req.MemberID, req.Generation = "", -1
	}
	m.h.c.OffsetCommit(req, track(m, t, func(r *kmsg.OffsetCommitResponse) {
		if r.Topics[0].Partitions[0].ErrorCode == 0 {
			m.durable[partition] = off
		}
	}))
}

// restart closes the coordinator, lets the Store finish or fail what it
// holds, and rebuilds a new coordinator from the durable log.
func (m *propModel) restart(t *rapid.T) {
	m.h.c.Close()
	if rapid.Bool().Draw(t, "flushOnCrash") {
		m.h.store.flush()
	} else {
		m.h.store.fail(ErrNotCoordinator)
	}
	m.h.restart()
	// A generation that formed but never became durable is formed again
	// after a restart, possibly with another leader, as in Kafka; its
	// members were told nothing durable, so leaders are compared only
	// within one coordinator's lifetime.
	clear(m.leaders)
}

func (m *propModel) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"join":      m.join,
		"sync":      m.sync,
		"heartbeat": m.heartbeat,
		"leave":     m.leave,
		"commit":    m.commit,
		"restart":   m.restart,
		"advance": func(t *rapid.T) {
			m.h.clock.Advance(time.Duration(rapid.IntRange(0, 15_000).Draw(t, "ms")) * time.Millisecond)
		},
		"storeMode": func(t *rapid.T) {
			m.h.store.mode = rapid.SampledFrom([]storeMode{storeImmediate, storeDelayed, storeFailing}).Draw(t, "mode")
		},
		"flush": func(*rapid.T) { m.h.store.flush() },
		"fail":  func(*rapid.T) { m.h.store.fail(errStoreDown) },
		"":      m.check,
	}
}

// check runs after every action.
func (m *propModel) check(t *rapid.T) {
	g := m.h.c.groups["g"]
	if g == nil {
		return
	}
	g.checkInvariants(m.h.cfg)
	if g.state == Stable {
		for _, mb := range g.members {
			if want := fmt.Sprintf("%d:%s", g.generation, mb.id); string(mb.assignment) != want {
				t.Fatalf("stable generation %d: member %s holds %q", g.generation, mb.id, mb.assignment)
			}
		}
	}
	for p, want := range m.durable { // order-independent: each partition is checked alone
		if got, _ := m.h.fetch("g", "t", p); got != want {
			t.Fatalf("partition %d: committed offset %d, last durable commit %d", p, got, want)
		}
	}
}

// drain heals the store and lets every timer run out: afterwards every
// request must have been answered.
func (m *propModel) drain(t *rapid.T) {
	m.h.store.mode = storeImmediate
	m.h.store.flush()
	m.h.clock.Advance(time.Hour)
	m.h.store.flush()
	if m.unanswered != 0 {
		t.Fatalf("%d requests never answered", m.unanswered)
	}
	m.check(t)
}

// TestGroupProperties drives random sequences of joins, syncs, heartbeats,
// leaves, commits, time steps, store failures and restarts across four
// clients, checking after every step the group invariants, that a Stable
// group holds exactly its own generation's assignment, that assignments go
// only to the member they were made for in that generation, that each
// generation has one leader, that committed offsets equal the last durable
// commit, that no request is answered twice, and, once the store heals and
// time runs out, that every request was answered.
func TestGroupProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newPropModel(t)
		// Each Repeat runs rapid's default number of steps; longer runs
		// reach deeper rebalance histories.
		for range propRepeats {
			t.Repeat(m.actions())
		}
		m.drain(t)
	})
}
