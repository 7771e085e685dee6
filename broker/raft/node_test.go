package raft

import (
	"errors"
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newTestNode starts voter id of voters 1..3 from restored.
func newTestNode(t *testing.T, id int32, restored Restored) *Node {
	t.Helper()
	n, err := New(Config{ID: id, Voters: []int32{1, 2, 3}, ClusterID: "unit", Rand: core.NewRand(uint64(id))}, restored)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// entries builds a log whose entry i has epoch epochs[i].
func entries(epochs ...int32) []Entry {
	log := make([]Entry, len(epochs))
	for i, epoch := range epochs {
		log[i] = Entry{Offset: int64(i), Epoch: epoch, Data: []byte{byte('a' + i)}}
	}
	return log
}

// drain takes the node's Ready, performs it as a host would (nothing to
// persist in memory) and returns it.
func drain(n *Node) Ready {
	if !n.HasReady() {
		return Ready{TruncateToOffset: -1}
	}
	r := n.Ready()
	n.Advance()
	return r
}

// onlyMessage returns the single message of r addressed to to.
func onlyMessage(t *testing.T, r Ready, to int32) Message {
	t.Helper()
	var found []Message
	for _, m := range r.Messages {
		if m.To == to {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one message to %d, got %v", to, r.Messages)
	}
	return found[0]
}

// becomeLeaderOfNextEpoch runs node n through pre-vote and vote with grants
// from node 2, and drains the result.
func becomeLeaderOfNextEpoch(t *testing.T, n *Node) {
	t.Helper()
	for n.Role() != RoleProspective {
		n.Tick()
	}
	preVote := onlyMessage(t, drain(n), 2)
	grant(t, n, preVote)
	vote := onlyMessage(t, drain(n), 2)
	grant(t, n, vote)
	if n.Role() != RoleLeader {
		t.Fatalf("node is %s, want Leader", n.Role())
	}
	drain(n)
}

// grant answers request (a Vote from n) with a grant from its target.
func grant(t *testing.T, n *Node, request Message) {
	t.Helper()
	body := newVoteResponse(kmsg.VoteResponseTopicPartition{LeaderID: NoNode, LeaderEpoch: n.HardState().Epoch, VoteGranted: true})
	if err := n.Step(Message{From: request.To, To: request.From, CorrelationID: request.CorrelationID, Body: body}); err != nil {
		t.Fatal(err)
	}
}

func TestEndOffsetForEpoch(t *testing.T) {
	log := entryLog{entries: entries(1, 1, 3, 3, 3, 5)}
	tests := []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{epoch: 0, wantEpoch: 0, wantEnd: 0},
		{epoch: 1, wantEpoch: 1, wantEnd: 2},
		{epoch: 2, wantEpoch: 1, wantEnd: 2},
		{epoch: 3, wantEpoch: 3, wantEnd: 5},
		{epoch: 4, wantEpoch: 3, wantEnd: 5},
		{epoch: 5, wantEpoch: 5, wantEnd: 6},
		{epoch: 9, wantEpoch: 5, wantEnd: 6},
	}
	for _, test := range tests {
		epoch, end := log.endOffsetForEpoch(test.epoch)
		if epoch != test.wantEpoch || end != test.wantEnd {
			t.Errorf("endOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", test.epoch, epoch, end, test.wantEpoch, test.wantEnd)
		}
	}
}

func TestUpToDate(t *testing.T) {
	log := entryLog{entries: entries(1, 1, 2)} // last epoch 2, end 3
	tests := []struct {
		name      string
		lastEpoch int32
		endOffset int64
		want      bool
	}{
		{"same log", 2, 3, true},
		{"longer, same epoch", 2, 5, true},
		{"shorter, same epoch", 2, 2, false},
		{"shorter, later epoch", 3, 1, true},
		{"longer, earlier epoch", 1, 9, false},
	}
	for _, test := range tests {
		if got := log.upToDate(test.lastEpoch, test.endOffset); got != test.want {
			t.Errorf("%s: upToDate(%d, %d) = %v, want %v", test.name, test.lastEpoch, test.endOffset, got, test.want)
		}
	}
}

// TestVoteRequest covers each way a voter answers a vote or pre-vote, and
// that a granted vote or an adopted epoch is in the same Ready as the answer
// (so the host makes it durable before sending).
func TestVoteRequest(t *testing.T) {
	tests := []struct {
		name        string
		restored    Restored
		leaseTicks  int // >0: the voter follows node 1 and fetched this many ticks ago
		request     kmsg.VoteRequestTopicPartition
		wantGranted bool
		wantHard    HardState
	}{
		{
			name:        "grants a later epoch's up-to-date candidate and adopts the epoch",
			restored:    Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}, Entries: entries(1, 2)},
			request:     kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, LastOffsetEpoch: 2, LastOffset: 2},
			wantGranted: true,
			wantHard:    HardState{Epoch: 3, VotedFor: 2, LeaderID: NoNode},
		},
		{
			name:     "refuses a stale epoch",
			restored: Restored{HardState: HardState{Epoch: 4, VotedFor: NoNode, LeaderID: NoNode}},
			request:  kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2},
			wantHard: HardState{Epoch: 4, VotedFor: NoNode, LeaderID: NoNode},
		},
		{
			name:     "refuses a second candidate in the epoch it voted in",
			restored: Restored{HardState: HardState{Epoch: 3, VotedFor: 3, LeaderID: NoNode}},
			request:  kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2},
			wantHard: HardState{Epoch: 3, VotedFor: 3, LeaderID: NoNode},
		},
		{
			name:        "grants again the candidate it voted for (a retried request)",
			restored:    Restored{HardState: HardState{Epoch: 3, VotedFor: 2, LeaderID: NoNode}},
			request:     kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2},
			wantGranted: true,
			wantHard:    HardState{Epoch: 3, VotedFor: 2, LeaderID: NoNode},
		},
		{
			name:     "refuses a longer log of an earlier epoch, but adopts the epoch",
			restored: Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}, Entries: entries(1, 2)},
			request:  kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, LastOffsetEpoch: 1, LastOffset: 9},
			wantHard: HardState{Epoch: 3, VotedFor: NoNode, LeaderID: NoNode},
		},
		{
			name:        "pre-vote: grants without changing its state",
			restored:    Restored{HardState: HardState{Epoch: 2, VotedFor: 3, LeaderID: NoNode}, Entries: entries(1, 2)},
			request:     kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, LastOffsetEpoch: 2, LastOffset: 2, PreVote: true},
			wantGranted: true,
			wantHard:    HardState{Epoch: 2, VotedFor: 3, LeaderID: NoNode},
		},
		{
			name:     "pre-vote: refuses an epoch not beyond its own",
			restored: Restored{HardState: HardState{Epoch: 3, VotedFor: NoNode, LeaderID: NoNode}},
			request:  kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, PreVote: true},
			wantHard: HardState{Epoch: 3, VotedFor: NoNode, LeaderID: NoNode},
		},
		{
			name:       "pre-vote: a follower that fetched recently refuses",
			restored:   Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1}},
			leaseTicks: 1,
			request:    kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, PreVote: true},
			wantHard:   HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1},
		},
		{
			name:        "pre-vote: a follower whose leader went silent grants",
			restored:    Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1}},
			leaseTicks:  20, // the fetch timeout, before the follower's own tick noticed
			request:     kmsg.VoteRequestTopicPartition{CandidateEpoch: 3, CandidateID: 2, PreVote: true},
			wantGranted: true,
			wantHard:    HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1},
		},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := newTestNode(t, 3, test.restored)
			if test.leaseTicks > 0 {
				n.follower.fetchedFromLeader = true
				n.follower.fetchInflight = true // keep the ticks from sending Fetches
				for range test.leaseTicks {
					n.nowTicks++
				}
			}
			drain(n)
			request := Message{From: 2, To: 3, CorrelationID: 7, Body: newVoteRequest("unit", 3, test.request)}
			if err := n.Step(request); err != nil {
				t.Fatal(err)
			}
			r := drain(n)
			answer := onlyMessage(t, r, 2)
			p, _ := voteResponsePartition(answer.Body.(*kmsg.VoteResponse))
			if p.VoteGranted != test.wantGranted || answer.CorrelationID != 7 {
				t.Fatalf("granted %v (correlation %d), want %v", p.VoteGranted, answer.CorrelationID, test.wantGranted)
			}
			if n.HardState() != test.wantHard {
				t.Fatalf("quorum state %+v, want %+v", n.HardState(), test.wantHard)
			}
			changed := test.wantHard != test.restored.HardState
			if r.HardStateChanged != changed || (changed && (r.HardState != test.wantHard || !r.MustSync)) {
				t.Fatalf("Ready persists %v %+v (sync %v); the new quorum state must be synced before the answer", r.HardStateChanged, r.HardState, r.MustSync)
			}
		})
	}
}

// TestFetchRequestOnLeader covers the leader's answers to a Fetch: fenced
// and unknown epochs, divergence, and a matching fetch that returns entries.
func TestFetchRequestOnLeader(t *testing.T) {
	// Node 1 holds epochs 1, 1, 2, 2 and becomes leader of epoch 3, appending
	// its leader-change entry at offset 4.
	restored := Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}, Entries: entries(1, 1, 2, 2)}
	tests := []struct {
		name          string
		request       kmsg.FetchRequestTopicPartition
		wantError     *kerr.Error
		wantDiverging [2]int64 // epoch, end offset; -1, -1 for none
		wantEntries   int
	}{
		{"stale epoch is fenced", kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 2}, kerr.FencedLeaderEpoch, [2]int64{-1, -1}, 0},
		{"later epoch is unknown", kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 4}, kerr.UnknownLeaderEpoch, [2]int64{-1, -1}, 0},
		{"empty follower gets everything", kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3}, nil, [2]int64{-1, -1}, 5},
		{"matching follower gets the rest", kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3, FetchOffset: 3, LastFetchedEpoch: 2}, nil, [2]int64{-1, -1}, 2},
		{"longer log of a shared epoch diverges at its end", kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3, FetchOffset: 6, LastFetchedEpoch: 2}, nil, [2]int64{2, 4}, 0},
		{"unknown epoch diverges at the largest earlier one", kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3, FetchOffset: 3, LastFetchedEpoch: 1}, nil, [2]int64{1, 2}, 0},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := newTestNode(t, 1, restored)
			becomeLeaderOfNextEpoch(t, n)
			if err := n.Step(Message{From: 2, To: 1, CorrelationID: 9, Body: newFetchRequest("unit", 2, test.request)}); err != nil {
				t.Fatal(err)
			}
			answer := onlyMessage(t, drain(n), 2)
			p, _ := fetchResponsePartition(answer.Body.(*kmsg.FetchResponse))
			if test.wantError != nil {
				if p.ErrorCode != test.wantError.Code || p.CurrentLeader.LeaderID != 1 || p.CurrentLeader.LeaderEpoch != 3 {
					t.Fatalf("error %d leader %+v, want %s naming leader 1 of epoch 3", p.ErrorCode, p.CurrentLeader, test.wantError.Message)
				}
				return
			}
			got := [2]int64{int64(p.DivergingEpoch.Epoch), p.DivergingEpoch.EndOffset}
			fetched, err := decodeEntries(p.RecordBatches)
			if err != nil || p.ErrorCode != 0 || got != test.wantDiverging || len(fetched) != test.wantEntries {
				t.Fatalf("error %d, diverging %v, %d entries (%v); want diverging %v and %d entries", p.ErrorCode, got, len(fetched), err, test.wantDiverging, test.wantEntries)
			}
		})
	}
}

// TestCommitRule shows that a leader does not commit entries of an earlier
// epoch by counting replicas; it commits them with its own first entry.
func TestCommitRule(t *testing.T) {
	n := newTestNode(t, 1, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}, Entries: entries(1, 2)})
	becomeLeaderOfNextEpoch(t, n) // leader-change entry at offset 2, durable after drain
	fetch := func(offset int64, epoch int32) {
		p := kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3, FetchOffset: offset, LastFetchedEpoch: epoch}
		if err := n.Step(Message{From: 2, To: 1, Body: newFetchRequest("unit", 2, p)}); err != nil {
			t.Fatal(err)
		}
		drain(n)
	}
	fetch(2, 2) // node 2 durably holds both entries of earlier epochs
	if n.HighWatermark() != 0 {
		t.Fatalf("high watermark %d: entries of epochs 1 and 2 were committed by counting replicas", n.HighWatermark())
	}
	fetch(3, 3) // node 2 holds the leader-change entry of epoch 3
	if n.HighWatermark() != 3 {
		t.Fatalf("high watermark %d, want 3 once the epoch's first entry is on a majority", n.HighWatermark())
	}
	fetch(2, 2) // a late, duplicated Fetch must not move the high watermark back
	if n.HighWatermark() != 3 {
		t.Fatalf("high watermark moved back to %d", n.HighWatermark())
	}
}

// TestLeaderCountsItselfOnlyWhenDurable shows that a leader's own entries
// count towards the high watermark only after Advance.
func TestLeaderCountsItselfOnlyWhenDurable(t *testing.T) {
	n := newTestNode(t, 1, Restored{})
	becomeLeaderOfNextEpoch(t, n)
	offset, err := n.Propose([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	p := kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 1, FetchOffset: offset + 1, LastFetchedEpoch: 1}
	n.Step(Message{From: 2, To: 1, Body: newFetchRequest("unit", 2, p)})
	if n.HighWatermark() != offset {
		t.Fatalf("high watermark %d before the leader's entry %d is durable; want %d", n.HighWatermark(), offset, offset)
	}
	drain(n)
	if n.HighWatermark() != offset+1 {
		t.Fatalf("high watermark %d after Advance, want %d", n.HighWatermark(), offset+1)
	}
}

// TestFetchResponseOnFollower covers a follower's handling of Fetch answers:
// appending, truncating at a divergence, ignoring an answer it no longer
// waits for, and keeping its high watermark when a new leader's lags.
func TestFetchResponseOnFollower(t *testing.T) {
	tests := []struct {
		name           string
		log            []Entry
		answer         kmsg.FetchResponseTopicPartition
		staleAnswer    bool
		wantEnd        int64
		wantTruncateTo int64
		wantHW         int64
	}{
		{
			name:           "appends fetched entries and learns the high watermark",
			log:            entries(1),
			answer:         kmsg.FetchResponseTopicPartition{HighWatermark: 2, RecordBatches: encodeEntries(nil, entries(1, 2)[1:])},
			wantEnd:        2,
			wantTruncateTo: -1,
			wantHW:         2,
		},
		{
			name:           "truncates to the end of the diverging epoch",
			log:            entries(1, 1, 1, 1),
			answer:         kmsg.FetchResponseTopicPartition{HighWatermark: 1, DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: 1, EndOffset: 2}},
			wantEnd:        2,
			wantTruncateTo: 2,
			wantHW:         0, // the logs are not yet known to match below the divergence
		},
		{
			name:           "ignores an answer to an earlier Fetch",
			log:            entries(1, 1, 1, 1),
			answer:         kmsg.FetchResponseTopicPartition{HighWatermark: 1, DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: 1, EndOffset: 0}},
			staleAnswer:    true,
			wantEnd:        4,
			wantTruncateTo: -1,
			wantHW:         0,
		},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := newTestNode(t, 2, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1}, Entries: test.log})
			n.Tick() // sends the first Fetch
			fetch := onlyMessage(t, drain(n), 1)
			if test.staleAnswer {
				fetch.CorrelationID--
			}
			if test.answer.DivergingEpoch.Epoch == 0 && test.answer.DivergingEpoch.EndOffset == 0 {
				test.answer.DivergingEpoch = kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: -1, EndOffset: -1}
			}
			test.answer.CurrentLeader = kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 2}
			if err := n.Step(Message{From: 1, To: 2, CorrelationID: fetch.CorrelationID, Body: newFetchResponse(test.answer)}); err != nil {
				t.Fatal(err)
			}
			r := drain(n)
			if n.EndOffset() != test.wantEnd || r.TruncateToOffset != test.wantTruncateTo || n.HighWatermark() != test.wantHW {
				t.Fatalf("end %d, truncate to %d, high watermark %d; want %d, %d, %d",
					n.EndOffset(), r.TruncateToOffset, n.HighWatermark(), test.wantEnd, test.wantTruncateTo, test.wantHW)
			}
		})
	}
}

// TestRestartRoles checks the role a node resumes in from its durable state.
func TestRestartRoles(t *testing.T) {
	tests := []struct {
		hard HardState
		want Role
	}{
		{HardState{}, RoleUnattached},
		{HardState{Epoch: 4, VotedFor: 2, LeaderID: NoNode}, RoleUnattached},
		{HardState{Epoch: 4, VotedFor: 1, LeaderID: 1}, RoleResigned},
		{HardState{Epoch: 4, VotedFor: NoNode, LeaderID: 3}, RoleFollower},
	}
	for _, test := range tests {
		if got := newTestNode(t, 1, Restored{HardState: test.hard}).Role(); got != test.want {
			t.Errorf("restart from %+v: %s, want %s", test.hard, got, test.want)
		}
	}
}

// TestProspectiveReturnsToKnownLeader: a follower whose pre-vote fails goes
// back to fetching from the leader it knew, instead of waiting as a
// prospective voter forever (the random schedules found this).
func TestProspectiveReturnsToKnownLeader(t *testing.T) {
	n := newTestNode(t, 2, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1}})
	for n.Role() != RoleProspective {
		n.Tick()
	}
	for range 2 * n.config.ElectionTimeoutTicks {
		n.Tick()
	}
	if n.Role() != RoleFollower || n.HardState().LeaderID != 1 {
		t.Fatalf("node is %s of %d, want Follower of 1", n.Role(), n.HardState().LeaderID)
	}
}

// TestFollowersOfDeadLeaderElectAnother restarts a whole quorum but its
// leader: both survivors resume following the dead leader, and must still
// elect one of themselves, because neither holds a lease from a real Fetch.
func TestFollowersOfDeadLeaderElectAnother(t *testing.T) {
	c := newCluster(t, 3, 21, nil)
	old := c.waitLeader()
	c.propose(old, "x")
	c.tickAll(2)
	for _, tn := range c.nodes {
		c.crash(tn.id)
	}
	for _, tn := range c.nodes {
		if tn.id != old {
			c.restart(tn.id)
		}
	}
	if next := c.waitLeader(); next == old {
		t.Fatalf("the dead leader leads")
	}
}

// TestMalformedMessages checks that bad input is an error or an error code,
// never a crash or a change of state.
func TestMalformedMessages(t *testing.T) {
	n := newTestNode(t, 2, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: 1}})
	n.Tick()
	fetch := onlyMessage(t, drain(n), 1)
	before := n.HardState()
	garbage := newFetchResponse(kmsg.FetchResponseTopicPartition{
		HighWatermark:  5,
		DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: -1, EndOffset: -1},
		CurrentLeader:  kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 2},
		RecordBatches:  []byte("not a record batch at all, but long enough"),
	})
	if err := n.Step(Message{From: 1, To: 2, CorrelationID: fetch.CorrelationID, Body: garbage}); err == nil {
		t.Fatalf("garbage record batches were accepted")
	}
	noTopics := &kmsg.VoteRequest{Version: voteVersion}
	if err := n.Step(Message{From: 3, To: 2, Body: noTopics}); !errors.Is(err, errNoMetadataPartition) {
		t.Fatalf("a Vote without the metadata partition: %v", err)
	}
	answer := onlyMessage(t, drain(n), 3)
	if p, _ := voteResponsePartition(answer.Body.(*kmsg.VoteResponse)); p.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("answer error %d, want INVALID_REQUEST", p.ErrorCode)
	}
	if n.HardState() != before || n.EndOffset() != 0 || n.HighWatermark() != 0 {
		t.Fatalf("bad input changed the node: %+v end %d hw %d", n.HardState(), n.EndOffset(), n.HighWatermark())
	}
	if err := n.Step(Message{From: 1, To: 3, Body: noTopics}); err == nil {
		t.Fatalf("a message for another node was accepted")
	}
}

// TestInvalidConfig checks that each bad configuration is refused in one line.
func TestInvalidConfig(t *testing.T) {
	rand := core.NewRand(1)
	tests := []Config{
		{ID: 1, Voters: []int32{1, 2, 3}},
		{ID: -1, Voters: []int32{1, 2, 3}, Rand: rand},
		{ID: 1, Rand: rand},
		{ID: 1, Voters: []int32{1, 1, 3}, Rand: rand},
		{ID: 1, Voters: []int32{1}, Rand: rand, FetchEntriesMax: -1},
	}
	for _, config := range tests {
		if _, err := New(config, Restored{}); err == nil {
			t.Errorf("config %+v was accepted", config)
		}
	}
}

// TestMessagesRoundTripOnTheWire encodes every kind of message a quorum
// sends with kmsg and decodes it again, so the versions chosen carry every
// field the node relies on (FetchSnapshot included: a follower is restarted
// behind the compacted log).
func TestMessagesRoundTripOnTheWire(t *testing.T) {
	c := newCluster(t, 3, 4, nil)
	kinds := map[int16]bool{}
	check := func(m Message) {
		encoded := m.Body.AppendTo(nil)
		var decoded interface {
			ReadFrom([]byte) error
			AppendTo([]byte) []byte
		}
		switch body := m.Body.(type) {
		case *kmsg.VoteRequest, *kmsg.BeginQuorumEpochRequest, *kmsg.EndQuorumEpochRequest, *kmsg.FetchRequest, *kmsg.FetchSnapshotRequest:
			request := kmsg.RequestForKey(body.Key())
			request.SetVersion(body.GetVersion())
			decoded = request
		default:
			response := kmsg.ResponseForKey(body.Key())
			response.SetVersion(body.GetVersion())
			decoded = response
		}
		if err := decoded.ReadFrom(encoded); err != nil {
			t.Fatalf("%v does not decode: %v", m, err)
		}
		if !slices.Equal(decoded.AppendTo(nil), encoded) {
			t.Fatalf("%v changes in a round trip", m)
		}
		kinds[m.Body.Key()] = true
	}
	c.observe = check
	leader := c.waitLeader()
	c.propose(leader, "x")
	c.tickAll(2)
	c.get(leader).node.Resign()
	leader = c.waitLeader()
	lagging := leader%3 + 1
	c.crash(lagging)
	c.propose(leader, "y")
	c.tickAll(2)
	for _, tn := range c.nodes {
		c.compact(tn.id, true)
	}
	c.restart(lagging)
	c.tickAll(5)
	for _, key := range []int16{52, 53, 54, 1, 59} {
		if !kinds[key] {
			t.Errorf("no %s was sent", kmsg.NameForKey(key))
		}
	}
}

// TestDescribeQuorum checks that the leader reports each voter's durable log
// end (-1 for a voter that has not fetched in this epoch, as Kafka reports
// it) and the high watermark, and that a follower refuses.
func TestDescribeQuorum(t *testing.T) {
	n := newTestNode(t, 1, Restored{})
	becomeLeaderOfNextEpoch(t, n)
	p := kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 1, FetchOffset: 1, LastFetchedEpoch: 1}
	n.Step(Message{From: 2, To: 1, Body: newFetchRequest("unit", 2, p)})
	drain(n)
	describe := &kmsg.DescribeQuorumRequest{Version: describeQuorumVersion, Topics: []kmsg.DescribeQuorumRequestTopic{
		{Topic: MetadataTopic, Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}},
	}}
	n.Step(Message{From: 9, To: 1, Body: describe})
	answer := onlyMessage(t, drain(n), 9).Body.(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]
	var ends []int64
	for _, voter := range answer.CurrentVoters {
		ends = append(ends, voter.LogEndOffset)
	}
	if answer.ErrorCode != 0 || answer.LeaderID != 1 || answer.HighWatermark != 1 || !slices.Equal(ends, []int64{1, 1, -1}) {
		t.Fatalf("DescribeQuorum answered %+v, voter ends %v; want leader 1, high watermark 1, ends [1 1 -1]", answer, ends)
	}
	follower := newTestNode(t, 2, Restored{HardState: HardState{Epoch: 1, VotedFor: NoNode, LeaderID: 1}})
	follower.Step(Message{From: 9, To: 2, Body: describe})
	refusal := onlyMessage(t, drain(follower), 9).Body.(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]
	if refusal.ErrorCode != kerr.NotLeaderForPartition.Code || refusal.LeaderID != 1 {
		t.Fatalf("a follower answered DescribeQuorum with %+v", refusal)
	}
	if err := n.Step(Message{From: 9, To: 1, Body: &kmsg.DescribeQuorumRequest{Version: describeQuorumVersion}}); err == nil {
		t.Fatalf("a DescribeQuorum without the metadata partition was accepted")
	}
	if invalid := onlyMessage(t, drain(n), 9).Body.(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]; invalid.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("a malformed DescribeQuorum got error %d, want INVALID_REQUEST", invalid.ErrorCode)
	}
}

// TestProposeLimits checks that only a leader accepts proposals, that empty
// data is refused (nil marks a leader change) and that a leader that cannot
// commit stops accepting at UncommittedEntriesMax.
func TestProposeLimits(t *testing.T) {
	n, err := New(Config{ID: 1, Voters: []int32{1, 2, 3}, Rand: core.NewRand(1), UncommittedEntriesMax: 3}, Restored{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Propose([]byte("a")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("an unattached node accepted a proposal: %v", err)
	}
	becomeLeaderOfNextEpoch(t, n) // the leader-change entry is the first uncommitted entry
	if _, err := n.Propose(nil); err == nil {
		t.Fatalf("an empty proposal was accepted")
	}
	for i := range 2 {
		if _, err := n.Propose([]byte{byte(i)}); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	if _, err := n.Propose([]byte("one too many")); !errors.Is(err, ErrTooManyUncommitted) {
		t.Fatalf("the leader accepted a fourth uncommitted entry: %v", err)
	}
}
