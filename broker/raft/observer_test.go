package raft

import (
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newTestObserver starts observer id of voters 1..3 from restored.
func newTestObserver(t *testing.T, id int32, restored Restored) *Node {
	t.Helper()
	n, err := New(Config{ID: id, Voters: []int32{1, 2, 3}, ClusterID: "unit", Rand: core.NewRand(uint64(id))}, restored)
	if err != nil {
		t.Fatal(err)
	}
	if !n.IsObserver() {
		t.Fatalf("node %d of voters 1..3 is not an observer", id)
	}
	return n
}

// fetchAnswer builds a Fetch response from a node naming leader in epoch.
func fetchAnswer(err *kerr.Error, leader, epoch int32) *kmsg.FetchResponse {
	if err != nil {
		return fetchError(err, leader, epoch)
	}
	return newFetchResponse(kmsg.FetchResponseTopicPartition{
		DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: -1, EndOffset: -1},
		CurrentLeader:  kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: leader, LeaderEpoch: epoch},
		SnapshotID:     kmsg.FetchResponseTopicPartitionSnapshotID{EndOffset: -1, Epoch: -1},
	})
}

// TestObserverDiscoversLeader covers how an observer that knows no leader
// finds one from the answers to Fetches it sends to random voters: a voter
// naming the leader of its epoch, a voter in a later epoch, the leader
// itself serving the Fetch, and a resigned leader naming itself (not
// followed).
func TestObserverDiscoversLeader(t *testing.T) {
	tests := []struct {
		name       string
		answer     func(to int32) *kmsg.FetchResponse
		wantRole   Role
		wantLeader int32
		wantEpoch  int32
	}{
		{"a follower names the leader", func(to int32) *kmsg.FetchResponse { return fetchAnswer(kerr.NotLeaderForPartition, to%3+1, 2) }, RoleFollower, -3, 2},
		{"a later epoch's voter names its leader", func(to int32) *kmsg.FetchResponse { return fetchAnswer(kerr.FencedLeaderEpoch, 3, 5) }, RoleFollower, 3, 5},
		{"a later epoch without a leader", func(to int32) *kmsg.FetchResponse { return fetchAnswer(kerr.FencedLeaderEpoch, NoNode, 5) }, RoleUnattached, NoNode, 5},
		{"the leader serves the Fetch", func(to int32) *kmsg.FetchResponse { return fetchAnswer(nil, to, 2) }, RoleFollower, -2, 2},
		{"a resigned leader names itself", func(to int32) *kmsg.FetchResponse { return fetchAnswer(kerr.NotLeaderForPartition, to, 2) }, RoleUnattached, NoNode, 2},
		{"a voter behind the observer", func(to int32) *kmsg.FetchResponse { return fetchAnswer(kerr.UnknownLeaderEpoch, NoNode, 1) }, RoleUnattached, NoNode, 2},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := newTestObserver(t, 7, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}})
			n.Tick()
			r := drain(n)
			if len(r.Messages) != 1 {
				t.Fatalf("an unattached observer sent %v, want one discovery Fetch", r.Messages)
			}
			fetch := r.Messages[0]
			if _, ok := fetch.Body.(*kmsg.FetchRequest); !ok || n.voterIndex(fetch.To) < 0 {
				t.Fatalf("discovery message %v is not a Fetch to a voter", fetch)
			}
			if err := n.Step(Message{From: fetch.To, To: 7, CorrelationID: fetch.CorrelationID, Body: test.answer(fetch.To)}); err != nil {
				t.Fatal(err)
			}
			wantLeader := test.wantLeader
			switch wantLeader {
			case -2: // the voter that answered
				wantLeader = fetch.To
			case -3: // the voter the answer named
				wantLeader = fetch.To%3 + 1
			}
			h := n.HardState()
			if n.Role() != test.wantRole || h.LeaderID != wantLeader || h.Epoch != test.wantEpoch || h.VotedFor != NoNode {
				t.Fatalf("observer is %s with %+v, want %s of leader %d in epoch %d", n.Role(), h, test.wantRole, wantLeader, test.wantEpoch)
			}
		})
	}
}

// TestObserverNeverVotesOrCampaigns checks that an observer refuses votes
// and pre-votes without changing its state, and that a silent leader makes
// it ask the voters for the leader rather than start a pre-vote.
func TestObserverNeverVotesOrCampaigns(t *testing.T) {
	before := HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1}
	n := newTestObserver(t, 7, Restored{HardState: before})
	for _, preVote := range []bool{true, false} {
		request := newVoteRequest("unit", 7, kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, LastOffsetEpoch: 2, LastOffset: 9, PreVote: preVote})
		if err := n.Step(Message{From: 2, To: 7, CorrelationID: 4, Body: request}); err != nil {
			t.Fatal(err)
		}
		answer := onlyMessage(t, drain(n), 2)
		if p, _ := voteResponsePartition(answer.Body.(*kmsg.VoteResponse)); p.VoteGranted {
			t.Fatalf("observer granted a vote (pre-vote %v)", preVote)
		}
	}
	if n.HardState() != before {
		t.Fatalf("a vote request changed the observer's quorum state to %+v", n.HardState())
	}
	targets := map[int32]bool{}
	for range 10 * n.config.FetchTimeoutTicks {
		n.Tick()
		for _, m := range drain(n).Messages {
			if _, ok := m.Body.(*kmsg.FetchRequest); !ok {
				t.Fatalf("observer sent %v", m)
			}
			targets[m.To] = true
		}
		if n.Role() != RoleFollower {
			t.Fatalf("observer became %s", n.Role())
		}
	}
	if len(targets) != 3 {
		t.Fatalf("an observer whose leader went silent fetched only from %v, want every voter in turn", targets)
	}
}

// TestLeaderServesObservers checks that a leader serves a non-voter's Fetch
// without counting it towards the high watermark, lists it among
// DescribeQuorum's observers, and refuses a negative replica id.
func TestLeaderServesObservers(t *testing.T) {
	n := newTestNode(t, 1, Restored{})
	becomeLeaderOfNextEpoch(t, n)
	p := kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 1, FetchOffset: 1, LastFetchedEpoch: 1}
	for _, observer := range []int32{9, 8} {
		if err := n.Step(Message{From: observer, To: 1, Body: newFetchRequest("unit", observer, p)}); err != nil {
			t.Fatal(err)
		}
		answer, _ := fetchResponsePartition(onlyMessage(t, drain(n), observer).Body.(*kmsg.FetchResponse))
		if answer.ErrorCode != 0 || answer.CurrentLeader.LeaderID != 1 {
			t.Fatalf("observer %d's Fetch got error %d", observer, answer.ErrorCode)
		}
	}
	if n.HighWatermark() != 0 {
		t.Fatalf("high watermark %d: observers were counted", n.HighWatermark())
	}
	if err := n.Step(Message{From: 5, To: 1, Body: newFetchRequest("unit", -1, p)}); err != nil {
		t.Fatal(err)
	}
	if answer, _ := fetchResponsePartition(onlyMessage(t, drain(n), 5).Body.(*kmsg.FetchResponse)); answer.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("a Fetch with replica id -1 got error %d, want INVALID_REQUEST", answer.ErrorCode)
	}
	describe := &kmsg.DescribeQuorumRequest{Version: describeQuorumVersion, Topics: []kmsg.DescribeQuorumRequestTopic{
		{Topic: MetadataTopic, Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}},
	}}
	n.Step(Message{From: 9, To: 1, Body: describe})
	answer := onlyMessage(t, drain(n), 9).Body.(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]
	var voters, observers []int32
	for _, v := range answer.CurrentVoters {
		voters = append(voters, v.ReplicaID)
	}
	for _, o := range answer.Observers {
		observers = append(observers, o.ReplicaID)
		if o.LogEndOffset != 1 {
			t.Fatalf("observer %d reported at %d, want 1", o.ReplicaID, o.LogEndOffset)
		}
	}
	if !slices.Equal(voters, []int32{1, 2, 3}) || !slices.Equal(observers, []int32{8, 9}) {
		t.Fatalf("DescribeQuorum lists voters %v and observers %v, want [1 2 3] and [8 9]", voters, observers)
	}
}

// scenarioObserversNotCounted cuts the leader of 3 voters from both other
// voters while its 2 observers still fetch from it. The leader plus the
// observers are 3 of 5 nodes, but only 1 of 3 voters: it must neither
// commit the entry it appends nor keep leading past the check-quorum window.
func scenarioObserversNotCounted(t reporter, tune func(*Config)) {
	c := newClusterWithObservers(t, 3, 2, 23, tune)
	leader := c.waitLeader()
	c.propose(leader, "before")
	c.tickAll(3)
	for _, voter := range c.config.Voters {
		if voter != leader {
			c.cut[[2]int32{leader, voter}], c.cut[[2]int32{voter, leader}] = true, true
		}
	}
	c.propose(leader, "cut off")
	window := c.get(leader).node.config.FetchTimeoutTicks*3/2 + 1
	c.tickAll(window)
	if n := c.get(leader).node; n.Role() == RoleLeader && n.HardState().Epoch == c.get(leader).node.HardState().Epoch {
		t.Fatalf("leader %d, followed only by observers, still leads after %d ticks", leader, window)
	}
}

// TestObserversAreNeverCounted shows that observers stay outside every
// quorum: a leader that counted them would commit an entry that only one
// voter's disk holds (the harness's durability check fails) and would keep
// leading without a majority of voters.
func TestObserversAreNeverCounted(t *testing.T) {
	protects(t, scenarioObserversNotCounted, "fails when the leader counts observers", func(c *Config) { c.unsafe.countObservers = true })
}

// TestObserversReplicate checks that observers learn the leader and commit
// what the voters commit, also after the leader changes.
func TestObserversReplicate(t *testing.T) {
	c := newClusterWithObservers(t, 3, 2, 29, nil)
	first := c.waitLeader()
	target := c.propose(first, "a")
	c.tickAll(5)
	if !c.allCommitted(target) {
		t.Fatalf("not every node committed %d: %s", target, c.describe())
	}
	c.crash(first)
	var next int32 = NoNode
	for range 300 {
		c.tickAll(1)
		if id := c.leader(); id != NoNode && id != first {
			next = id
			break
		}
	}
	if next == NoNode {
		t.Fatalf("no new leader: %s", c.describe())
	}
	target = c.propose(next, "b")
	c.restart(first)
	for range 100 {
		c.tickAll(1)
		if c.allCommitted(target) {
			return
		}
	}
	t.Fatalf("observers did not follow the new leader %d: %s", next, c.describe())
}
