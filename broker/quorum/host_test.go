package quorum

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// simQuorum is a quorum of hosts inside the simulator, each behind a
// minimal request server that stands in for the broker's listener.
type simQuorum struct {
	t       *testing.T
	sched   *sim.Scheduler
	voters  []Voter
	members []*simMember
}

type simMember struct {
	q    *simQuorum
	id   int32
	node *sim.Node
	disk *sim.Disk
	host *Host
	// applied is every entry the host handed out as committed, in order,
	// over all its lives.
	applied []raft.Entry
	// lives counts the restarts, so applied can restart with each life.
	lives int
}

func newSimQuorum(t *testing.T, seed uint64, size int) *simQuorum {
	q := &simQuorum{t: t, sched: sim.NewScheduler(seed)}
	for i := 1; i <= size; i++ {
		q.voters = append(q.voters, Voter{ID: int32(i), Address: fmt.Sprintf("c%d:9093", i)})
	}
	for i := 1; i <= size; i++ {
		node := q.sched.AddNode(fmt.Sprintf("c%d", i), sim.NodeOptions{})
		disk := sim.NewDisk(q.sched.ForkRand(), sim.DiskOptions{})
		node.SetDisk(disk)
		m := &simMember{q: q, id: int32(i), node: node, disk: disk}
		q.members = append(q.members, m)
		m.boot()
	}
	return q
}

// boot builds the host from what the disk holds and serves its listener.
func (m *simMember) boot() {
	env := m.node.Env()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Voters, cfg.ClusterID, cfg.Dir = m.id, m.q.voters, "test-cluster", "meta/__cluster_metadata-0"
	host, err := New(env, cfg)
	noError(m.q.t, err)
	m.applied = nil
	host.OnUpdate = func(committed []raft.Entry) { m.applied = append(m.applied, committed...) }
	host.OnHalt = func(err error) { m.q.t.Errorf("node %d halted: %v", m.id, err) }
	_, err = env.Net.Listen(m.q.voters[m.id-1].Address, func(core.Conn) core.ConnHandler { return &testServer{host: host} })
	noError(m.q.t, err)
	host.Start()
	m.host = host
}

func (m *simMember) crash() {
	m.node.Crash()
	m.host = nil
}

func (m *simMember) restart() {
	m.node.Restart()
	m.lives++
	m.boot()
}

// testServer decodes request frames and answers them through HandleRequest.
type testServer struct{ host *Host }

func (s *testServer) OnOpen(core.Conn)         {}
func (s *testServer) OnClose(core.Conn, error) {}
func (s *testServer) OnFrame(c core.Conn, frame []byte) {
	reader := kbin.Reader{Src: frame}
	key, version, correlationID := reader.Int16(), reader.Int16(), reader.Int32()
	reader.NullableString()
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&reader)
	}
	if err := req.ReadFrom(reader.Src); err != nil {
		c.Close()
		return
	}
	s.host.HandleRequest(req, func(resp kmsg.Response) {
		out := binary.BigEndian.AppendUint32(nil, uint32(correlationID))
		if resp.IsFlexible() {
			out = append(out, 0)
		}
		c.Send(resp.AppendTo(out))
	})
}

// leader returns the one live member that leads in the highest epoch, or
// nil.
func (q *simQuorum) leader() *simMember {
	var best *simMember
	for _, m := range q.members {
		if m.host != nil && m.host.Role() == raft.RoleLeader && (best == nil || m.host.Epoch() > best.host.Epoch()) {
			best = m
		}
	}
	return best
}

func (q *simQuorum) runUntilLeader(limit time.Duration) *simMember {
	deadline := q.sched.Now() + limit
	for q.sched.Now() < deadline {
		noError(q.t, q.sched.RunFor(50*time.Millisecond))
		if l := q.leader(); l != nil && l.host.HighWatermark() > 0 {
			return l
		}
	}
	q.t.Fatalf("no leader within %v", limit)
	return nil
}

// checkCommittedPrefixes requires that every member's applied entries are a
// prefix of one history.
func (q *simQuorum) checkCommittedPrefixes() {
	var longest []raft.Entry
	for _, m := range q.members {
		if len(m.applied) > len(longest) {
			longest = m.applied
		}
	}
	for _, m := range q.members {
		if len(m.applied) > 0 && !reflect.DeepEqual(longest[:len(m.applied)], m.applied) {
			q.dump()
			for i, e := range m.applied {
				if !reflect.DeepEqual(e, longest[i]) {
					q.t.Fatalf("seed %d: node %d applied %d/%d/%q at offset %d, another node %d/%d/%q", q.sched.Seed(), m.id, e.Offset, e.Epoch, e.Data, i, longest[i].Offset, longest[i].Epoch, longest[i].Data)
				}
			}
		}
	}
}

func TestQuorumElectsCommitsAndSurvivesCrashes(t *testing.T) {
	q := newSimQuorum(t, 7, 3)
	leader := q.runUntilLeader(10 * time.Second)
	for i := range 20 {
		_, err := leader.host.Propose([]byte(fmt.Sprintf("entry-%d", i)))
		noError(t, err)
	}
	noError(t, q.sched.RunFor(2*time.Second))
	for _, m := range q.members {
		if len(m.applied) < 21 {
			t.Fatalf("node %d applied %d entries, want 21", m.id, len(m.applied))
		}
	}
	q.checkCommittedPrefixes()

	// Crash the leader: the others elect a new one, which holds every
	// committed entry, and the restarted node catches up from its disk and
	// the new leader.
	oldEpoch := leader.host.Epoch()
	leader.crash()
	next := q.runUntilLeader(20 * time.Second)
	if next.id == leader.id || next.host.Epoch() <= oldEpoch {
		t.Fatalf("leader %d in epoch %d after %d crashed in epoch %d", next.id, next.host.Epoch(), leader.id, oldEpoch)
	}
	_, err := next.host.Propose([]byte("after-failover"))
	noError(t, err)
	leader.restart()
	noError(t, q.sched.RunFor(5*time.Second))
	for _, m := range q.members {
		data := make([]string, 0, len(m.applied))
		for _, e := range m.applied {
			data = append(data, string(e.Data))
		}
		if !slices.Contains(data, "entry-19") || !slices.Contains(data, "after-failover") {
			t.Fatalf("node %d applied %v", m.id, data)
		}
	}
	q.checkCommittedPrefixes()
}

func TestQuorumPowerLossKeepsVotesAndEntries(t *testing.T) {
	q := newSimQuorum(t, 11, 3)
	leader := q.runUntilLeader(10 * time.Second)
	for i := range 5 {
		_, err := leader.host.Propose([]byte(fmt.Sprintf("entry-%d", i)))
		noError(t, err)
	}
	noError(t, q.sched.RunFor(time.Second))
	// Every node loses power at once; what they acknowledged was synced.
	for _, m := range q.members {
		m.node.PowerOff()
		m.host = nil
	}
	for _, m := range q.members {
		m.node.Restart()
		m.boot()
	}
	leader = q.runUntilLeader(20 * time.Second)
	noError(t, q.sched.RunFor(2*time.Second))
	for _, m := range q.members {
		var data []string
		for _, e := range m.applied {
			data = append(data, string(e.Data))
		}
		if !slices.Contains(data, "entry-4") {
			q.dump()
			t.Fatalf("node %d lost a committed entry: %v", m.id, data)
		}
	}
	q.checkCommittedPrefixes()
}

func TestQuorumIsolatedLeaderIsReplaced(t *testing.T) {
	q := newSimQuorum(t, 3, 3)
	leader := q.runUntilLeader(10 * time.Second)
	q.sched.Network().Isolate(leader.node)
	noError(t, q.sched.RunFor(10*time.Second))
	if leader.host.Role() == raft.RoleLeader {
		t.Fatal("an isolated leader kept leading (check-quorum)")
	}
	next := q.leader()
	if next == nil || next.id == leader.id {
		t.Fatalf("no new leader: %v", next)
	}
	q.sched.Network().HealAll()
	_, err := next.host.Propose([]byte("healed"))
	noError(t, err)
	noError(t, q.sched.RunFor(5*time.Second))
	for _, m := range q.members {
		if got := string(m.applied[len(m.applied)-1].Data); got != "healed" {
			q.dump()
			for _, e := range m.applied {
				t.Logf("%d %d %q", e.Offset, e.Epoch, e.Data)
			}
			t.Fatalf("node %d last applied %q", m.id, got)
		}
	}
	q.checkCommittedPrefixes()
}

func TestQuorumIsDeterministic(t *testing.T) {
	run := func() string {
		q := newSimQuorum(t, 42, 3)
		leader := q.runUntilLeader(10 * time.Second)
		_, err := leader.host.Propose([]byte("x"))
		noError(t, err)
		leader.crash()
		q.runUntilLeader(20 * time.Second)
		return q.sched.TraceHash()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("same seed, different traces: %s and %s", a, b)
	}
}

func TestParseVoters(t *testing.T) {
	voters, err := ParseVoters("3@c:9095, 1@a:9093,2@b:9094")
	noError(t, err)
	if want := []Voter{{1, "a:9093"}, {2, "b:9094"}, {3, "c:9095"}}; !reflect.DeepEqual(voters, want) {
		t.Fatalf("got %v, want %v", voters, want)
	}
	for _, bad := range []string{"", "1@", "x@a:1", "1a:1", "1@a:1,1@b:2", "-1@a:1", "1@nohostport"} {
		_, err := ParseVoters(bad)
		if err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func noError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (q *simQuorum) dump() {
	for _, m := range q.members {
		if m.host == nil {
			q.t.Logf("node %d down", m.id)
			continue
		}
		q.t.Logf("node %d role %v epoch %d leader %d hw %d end %d applied %d", m.id, m.host.Role(), m.host.Epoch(), m.host.Leader(), m.host.HighWatermark(), m.host.EndOffset(), len(m.applied))
	}
}

// TestQuorumUnderRandomFaults runs quorums through random crashes, power
// losses, one-way cuts, silent drops and isolation while proposals flow,
// then heals everything: every node must have applied one history, and a
// proposal made after healing must commit everywhere within a bound.
// healBound is how long after healing a quorum must take to commit a new
// entry everywhere: an election (pre-vote and vote, at most two election
// timeouts and a fetch timeout of a leader that no longer has a majority),
// then a few fetch rounds.
const healBound = 15 * time.Second

// allApplied reports whether every member applied an entry with data.
func (q *simQuorum) allApplied(data string) bool {
	for _, m := range q.members {
		if !slices.ContainsFunc(m.applied, func(e raft.Entry) bool { return string(e.Data) == data }) {
			return false
		}
	}
	return true
}

func TestQuorumUnderRandomFaults(t *testing.T) {
	for seed := uint64(1); seed <= quorumSeeds; seed++ {
		q := newSimQuorum(t, seed, 3+int(seed%3))
		rand := q.sched.ForkRand()
		nodes := func() *simMember { return q.members[rand.IntN(len(q.members))] }
		proposed := 0
		for step := 0; step < 200; step++ {
			noError(t, q.sched.RunFor(time.Duration(20+rand.IntN(200))*time.Millisecond))
			if l := q.leader(); l != nil {
				if _, err := l.host.Propose([]byte(fmt.Sprintf("p%d", proposed))); err == nil {
					proposed++
				}
			}
			switch a, b := nodes(), nodes(); rand.IntN(40) {
			case 0:
				if a.host != nil {
					a.crash()
				}
			case 1:
				if a.host != nil {
					a.node.PowerOff()
					a.host = nil
				}
			case 2, 3:
				if a.host == nil {
					a.restart()
				}
			case 4:
				if a != b {
					q.sched.Network().Cut(a.node, b.node)
				}
			case 5:
				if a != b {
					q.sched.Network().Blackhole(a.node, b.node)
				}
			case 6:
				q.sched.Network().Isolate(a.node)
			case 7, 8:
				q.sched.Network().HealAll()
			}
			q.checkCommittedPrefixes()
		}
		q.sched.Network().HealAll()
		for _, m := range q.members {
			if m.host == nil {
				m.restart()
			}
		}
		// A leader elected during the faults may hold entries it cannot
		// commit and lose them to the next; the final entry is proposed
		// again through whoever leads until every node applied it.
		healed := q.sched.Now()
		for !q.allApplied("final") {
			if q.sched.Now()-healed > healBound {
				q.dump()
				t.Fatalf("seed %d: not every node applied the final entry within %v of healing", seed, healBound)
			}
			if l := q.leader(); l != nil && l.host.HighWatermark() > 0 {
				_, _ = l.host.Propose([]byte("final"))
			}
			noError(t, q.sched.RunFor(time.Second))
		}
		if testing.Verbose() {
			t.Logf("seed %d: converged %v after healing", seed, q.sched.Now()-healed)
		}
		q.checkCommittedPrefixes()
	}
}

// quorumSeeds is how many seeds TestQuorumUnderRandomFaults runs.
var quorumSeeds = uint64(40)
