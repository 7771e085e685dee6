package quorum

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
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
	// snapshotEntries, if not zero, replaces the default snapshot interval
	// of every host booted from then on.
	snapshotEntries int
	// history is the hash chain's value after each offset's entry, as the
	// first member to reach that offset (by applying or restoring)
	// computed it; every other member must compute the same.
	history map[int64][sha256.Size]byte
	// failures are the disagreements found, reported by
	// checkCommittedPrefixes.
	failures []string
	// loaded counts the snapshots machines loaded at a restart, installed
	// those fetched from a leader.
	loaded, installed int
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
	// machine is the state machine of the current life.
	machine *chainMachine
	// restoresAtBoot is how many snapshots the machine loaded in New; the
	// rest were fetched from the leader.
	restoresAtBoot int
	// reported counts the snapshots OnSnapshot reported in this life, by
	// source.
	reported [2]int
}

// chainMachine is the tests' state machine: a hash chain over every entry
// applied (offset, epoch and data). Its snapshot is its state, so two nodes
// that agree on the chain at an offset agree on every entry below it, even
// entries that neither replays any more.
type chainMachine struct {
	m        *simMember
	offset   int64
	hash     [sha256.Size]byte
	restores int
}

func (c *chainMachine) apply(e raft.Entry) {
	if e.Offset != c.offset {
		c.m.q.fail("node %d applied offset %d at chain offset %d", c.m.id, e.Offset, c.offset)
		return
	}
	buffer := binary.BigEndian.AppendUint64(c.hash[:], uint64(e.Offset))
	buffer = binary.BigEndian.AppendUint32(buffer, uint32(e.Epoch))
	c.hash = sha256.Sum256(append(buffer, e.Data...))
	c.offset++
	c.m.q.record(c.m.id, c.offset, c.hash)
}

// Snapshot implements StateMachine.
func (c *chainMachine) Snapshot() []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(c.offset)), c.hash[:]...)
}

// Restore implements StateMachine.
func (c *chainMachine) Restore(offset int64, epoch int32, data []byte) error {
	if len(data) != 8+sha256.Size || int64(binary.BigEndian.Uint64(data)) != offset {
		return errors.New("chain snapshot does not match its id")
	}
	c.offset = offset
	copy(c.hash[:], data[8:])
	c.restores++
	if c.m.host != nil {
		c.m.q.installed++
	}
	c.m.q.record(c.m.id, offset, c.hash)
	return nil
}

// record checks a member's chain value at offset against the history.
func (q *simQuorum) record(id int32, offset int64, hash [sha256.Size]byte) {
	if known, ok := q.history[offset]; ok && known != hash {
		q.fail("node %d disagrees on the committed history below offset %d", id, offset)
	}
	q.history[offset] = hash
}

func (q *simQuorum) fail(format string, args ...any) {
	q.failures = append(q.failures, fmt.Sprintf(format, args...))
}

func newSimQuorum(t *testing.T, seed uint64, size int) *simQuorum {
	q := &simQuorum{t: t, sched: sim.NewScheduler(seed), history: map[int64][sha256.Size]byte{}}
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
	cfg.NodeID, cfg.Voters, cfg.ClusterID, cfg.Dir = m.id, m.q.voters, "test-cluster", storeDir
	if m.q.snapshotEntries > 0 {
		cfg.SnapshotIntervalEntries = m.q.snapshotEntries
	}
	m.machine = &chainMachine{m: m}
	host, err := New(env, cfg, m.machine)
	noError(m.q.t, err)
	m.restoresAtBoot = m.machine.restores
	m.q.loaded += m.machine.restores
	m.applied = nil
	host.OnUpdate = func(committed []raft.Entry) {
		for _, e := range committed {
			m.machine.apply(e)
		}
		m.applied = append(m.applied, committed...)
	}
	host.OnHalt = func(err error) { m.q.t.Errorf("node %d halted: %v", m.id, err) }
	m.reported = [2]int{}
	host.OnSnapshot = func(offset int64, epoch int32, source SnapshotSource) {
		if offset != host.LogStartOffset() {
			m.q.fail("node %d reported snapshot %d-%d %v at log start %d", m.id, offset, epoch, source, host.LogStartOffset())
		}
		m.reported[source]++
	}
	_, err = env.Net.Listen(m.q.voters[m.id-1].Address, func(core.Conn) core.ConnHandler { return &testServer{host: host} })
	noError(m.q.t, err)
	host.Start()
	m.host = host
}

func (m *simMember) crash() {
	m.node.Crash()
	m.host = nil
}

func (m *simMember) powerOff() {
	m.node.PowerOff()
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

// checkCommittedPrefixes requires that every member's state machine went
// through one history: at every offset any two members reached (by
// applying entries or by loading a snapshot), their hash chains agree.
func (q *simQuorum) checkCommittedPrefixes() {
	if len(q.failures) > 0 {
		q.dump()
		q.t.Fatalf("seed %d: %s", q.sched.Seed(), strings.Join(q.failures, "; "))
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
	q.runUntilLeader(20 * time.Second)
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
		q.t.Logf("node %d role %v epoch %d leader %d log start %d hw %d end %d applied %d chain at %d", m.id, m.host.Role(), m.host.Epoch(), m.host.Leader(),
			m.host.raft.LogStartOffset(), m.host.HighWatermark(), m.host.EndOffset(), len(m.applied), m.machine.offset)
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
	loaded, installed := 0, 0
	for seed := uint64(1); seed <= quorumSeeds; seed++ {
		q := newSimQuorum(t, seed, 3+int(seed%3))
		// Snapshots every few entries, so that crashes strike while one
		// is written and restarted or lagging nodes load and fetch them.
		q.snapshotEntries = 5 + int(seed%7)
		for _, m := range q.members {
			m.crash()
			m.restart()
		}
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
			t.Logf("seed %d: converged %v after healing; %d snapshots loaded at restarts, %d fetched", seed, q.sched.Now()-healed, q.loaded, q.installed)
		}
		q.checkCommittedPrefixes()
		loaded, installed = loaded+q.loaded, installed+q.installed
	}
	// The faults must exercise both ways a snapshot reaches a machine, or
	// the agreement above says nothing about them.
	if loaded == 0 || installed == 0 {
		t.Fatalf("over %d seeds, %d snapshots were loaded at restarts and %d fetched from leaders", quorumSeeds, loaded, installed)
	}
}

// quorumSeeds is how many seeds TestQuorumUnderRandomFaults runs.
var quorumSeeds = uint64(200)

// proposeAndRun proposes count entries through the leader, a few per step,
// letting the quorum commit them as it goes.
func (q *simQuorum) proposeAndRun(prefix string, count int) {
	for i := 0; i < count; {
		leader := q.leader()
		if leader == nil {
			noError(q.t, q.sched.RunFor(100*time.Millisecond))
			continue
		}
		for batch := 0; batch < 5 && i < count; batch++ {
			_, err := leader.host.Propose([]byte(fmt.Sprintf("%s-%d", prefix, i)))
			noError(q.t, err)
			i++
		}
		noError(q.t, q.sched.RunFor(20*time.Millisecond))
	}
	noError(q.t, q.sched.RunFor(time.Second))
}

// directoryNames lists a member's metadata log directory: its segments
// and checkpoints.
func (m *simMember) directoryNames() []string {
	entries, err := m.disk.ReadDir(storeDir)
	noError(m.q.t, err)
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name, segmentSuffix) || strings.HasSuffix(e.Name, checkpointSuffix) {
			names = append(names, e.Name)
		}
	}
	return names
}

// TestQuorumLaggingFollowerCatchesUpFromSnapshot stops a follower while the
// others commit far past their snapshot interval, so that they snapshot and
// drop the log it would need; restarted, it must catch up by fetching the
// leader's snapshot (FetchSnapshot), load it into its state machine, agree
// with the others on the whole history and keep committing.
func TestQuorumLaggingFollowerCatchesUpFromSnapshot(t *testing.T) {
	q := newSimQuorum(t, 5, 3)
	q.snapshotEntries = 20
	for _, m := range q.members {
		m.crash()
		m.restart()
	}
	leader := q.runUntilLeader(10 * time.Second)
	lagging := q.members[leader.id%3]
	lagging.crash()
	q.proposeAndRun("entry", 100)
	start := leader.host.raft.LogStartOffset()
	if start < 80 {
		q.dump()
		t.Fatalf("the leader's log starts at %d after 100 entries with a snapshot every 20", start)
	}
	// On disk too the leader's log starts at its snapshot.
	if names := leader.directoryNames(); len(names) != 2 || names[1] != segmentName(start) || names[0] != checkpointName(start, leader.host.Epoch()) {
		t.Fatalf("the leader's directory holds %v, want one checkpoint and one segment at %d", names, start)
	}
	lagging.restart()
	q.proposeAndRun("after", 3)
	if fetched := lagging.machine.restores - lagging.restoresAtBoot; fetched == 0 || lagging.reported[SnapshotInstalled] != fetched {
		q.dump()
		t.Fatalf("the lagging follower fetched %d snapshots and reported %d", fetched, lagging.reported[SnapshotInstalled])
	}
	if leader.reported[SnapshotTaken] < 4 {
		t.Fatalf("the leader reported %d snapshots taken over 100 entries", leader.reported[SnapshotTaken])
	}
	for _, m := range q.members {
		if m.machine.offset != leader.machine.offset || m.host.raft.LogStartOffset() == 0 {
			q.dump()
			t.Fatalf("node %d is at chain offset %d with log start %d, the leader at %d", m.id, m.machine.offset, m.host.raft.LogStartOffset(), leader.machine.offset)
		}
	}
	q.checkCommittedPrefixes()
}

// TestQuorumPowerLossDuringSnapshot cuts the power of every voter at once
// at successive events after a snapshot began (with a snapshot every 5
// entries, each run strikes a different step of writing it, compacting
// the log or the Readies around them) and restarts them: every entry
// committed before the power loss must still be in every node's history
// (the hash chains at the old high watermark agree) and the quorum must
// commit again.
func TestQuorumPowerLossDuringSnapshot(t *testing.T) {
	for eventsAfter := range 6 {
		q := newSimQuorum(t, 13+uint64(eventsAfter), 3)
		q.snapshotEntries = 5
		for _, m := range q.members {
			m.crash()
			m.restart()
		}
		q.runUntilLeader(10 * time.Second)
		q.proposeAndRun("entry", 12)
		// Propose one entry at a time and step event by event until a
		// snapshot is under way somewhere.
		snapshotting := func() bool {
			return slices.ContainsFunc(q.members, func(m *simMember) bool { return m.host.snapshotting })
		}
		for i := 0; !snapshotting(); i++ {
			if i == 100 {
				t.Fatal("no snapshot began within 100 entries")
			}
			if leader := q.leader(); leader != nil {
				_, _ = leader.host.Propose([]byte(fmt.Sprintf("last-%d", i)))
			}
			deadline := q.sched.Now() + 100*time.Millisecond
			for !snapshotting() && q.sched.Now() < deadline && q.sched.Step() {
			}
		}
		for range eventsAfter {
			q.sched.Step()
		}
		committed := int64(0)
		for _, m := range q.members {
			committed = max(committed, m.host.HighWatermark())
		}
		for _, m := range q.members {
			m.powerOff()
		}
		for _, m := range q.members {
			m.restart()
		}
		q.runUntilLeader(20 * time.Second)
		q.proposeAndRun("after", 1)
		for _, m := range q.members {
			if m.machine.offset < committed {
				q.dump()
				t.Fatalf("power loss %d events into a snapshot: node %d reached offset %d, but %d were committed before", eventsAfter, m.id, m.machine.offset, committed)
			}
		}
		if _, ok := q.history[committed]; !ok {
			t.Fatalf("no node reached the committed offset %d again", committed)
		}
		q.checkCommittedPrefixes()
	}
}
