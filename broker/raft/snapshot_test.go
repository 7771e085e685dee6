package raft

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// committedLeader returns node 1 leading epoch 3 over entries of epochs
// 1, 1, 2, 2 and its leader-change entry at offset 4, with all five entries
// committed (node 2 fetched them) and applied (drained).
func committedLeader(t *testing.T) *Node {
	t.Helper()
	n := newTestNode(t, 1, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}, Entries: entries(1, 1, 2, 2)})
	becomeLeaderOfNextEpoch(t, n)
	p := kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3, FetchOffset: 5, LastFetchedEpoch: 3}
	if err := n.Step(Message{From: 2, To: 1, Body: newFetchRequest("unit", 2, p)}); err != nil {
		t.Fatal(err)
	}
	drain(n)
	if n.HighWatermark() != 5 {
		t.Fatalf("high watermark %d, want 5", n.HighWatermark())
	}
	return n
}

// TestCompact covers which snapshots a node accepts: only beyond its log
// start, at or below what it applied, after Advance, with the epoch its log
// holds there; and that an accepted one moves the log start.
func TestCompact(t *testing.T) {
	tests := []struct {
		name    string
		offset  int64
		epoch   int32
		pending bool // a Ready is being performed
		wantErr bool
	}{
		{"at the applied offset", 5, 3, false, false},
		{"inside the log", 3, 2, false, false},
		{"beyond the applied entries", 6, 3, false, true},
		{"at the log start", 0, 0, false, true},
		{"with another epoch than the log's", 3, 1, false, true},
		{"while a Ready is performed", 3, 2, true, true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := committedLeader(t)
			if _, err := n.Propose([]byte("uncommitted")); err != nil {
				t.Fatal(err)
			}
			if test.pending {
				n.Ready()
			}
			err := n.Compact(test.offset, test.epoch, []byte("state"))
			if test.wantErr {
				if !errors.Is(err, ErrSnapshotNotAllowed) || n.LogStartOffset() != 0 {
					t.Fatalf("Compact(%d, %d) = %v with log start %d; want ErrSnapshotNotAllowed and no change", test.offset, test.epoch, err, n.LogStartOffset())
				}
				return
			}
			if err != nil || n.LogStartOffset() != test.offset || n.EndOffset() != 6 || n.HighWatermark() != 5 {
				t.Fatalf("Compact(%d, %d) = %v; log [%d, %d) high watermark %d", test.offset, test.epoch, err, n.LogStartOffset(), n.EndOffset(), n.HighWatermark())
			}
			if got := n.Entries(test.offset, 6); len(got) != int(6-test.offset) || got[0].Offset != test.offset {
				t.Fatalf("entries after compaction: %v", got)
			}
		})
	}
}

// TestRestoreFromSnapshot covers restarting from a snapshot and the log the
// host kept beside it, including the logs a crash in the middle of
// installing a fetched snapshot leaves behind.
func TestRestoreFromSnapshot(t *testing.T) {
	snapshot := Snapshot{Offset: 3, Epoch: 2, Data: []byte("s")}
	hard := HardState{Epoch: 3, VotedFor: NoNode, LeaderID: NoNode}
	tests := []struct {
		name         string
		entries      []Entry
		snapshot     Snapshot
		wantErr      bool
		wantEnd      int64
		wantTruncate int64
	}{
		{"entries from the snapshot on", entries(1, 2, 2, 2, 3)[3:], snapshot, false, 5, -1},
		{"entries the snapshot covers are dropped", entries(1, 2, 2, 2, 3), snapshot, false, 5, -1},
		{"no entries", nil, snapshot, false, 3, -1},
		{"a log that ends below the snapshot is dropped", entries(1, 1), snapshot, false, 3, -1},
		{"a log that diverges at the snapshot is truncated", entries(1, 1, 1, 1, 1), snapshot, false, 3, 3},
		{"a log that starts above the snapshot", entries(1, 2, 2, 2, 3)[4:], snapshot, true, 0, 0},
		{"a snapshot beyond the quorum state's epoch", nil, Snapshot{Offset: 3, Epoch: 4}, true, 0, 0},
		{"entries without a snapshot that do not start at 0", entries(1, 1)[1:], Snapshot{}, true, 0, 0},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n, err := New(newTestNode(t, 1, Restored{}).config, Restored{HardState: hard, Entries: test.entries, Snapshot: test.snapshot})
			if test.wantErr {
				if err == nil {
					t.Fatalf("restore accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.LogStartOffset() != 3 || n.HighWatermark() != 3 || n.EndOffset() != test.wantEnd {
				t.Fatalf("log [%d, %d) high watermark %d; want [3, %d) and 3", n.LogStartOffset(), n.EndOffset(), n.HighWatermark(), test.wantEnd)
			}
			r := n.Ready()
			if r.TruncateToOffset != test.wantTruncate || len(r.CommittedEntries) != 0 || r.Snapshot != nil {
				t.Fatalf("first Ready truncates to %d, applies %v, installs %v; want truncation %d only", r.TruncateToOffset, r.CommittedEntries, r.Snapshot, test.wantTruncate)
			}
		})
	}
}

// TestFetchAnsweredWithSnapshot covers KIP-630's rule on the leader: a
// follower whose log cannot continue the leader's above its log start gets
// the snapshot id; others get entries or a divergence as before, also at the
// snapshot's boundary.
func TestFetchAnsweredWithSnapshot(t *testing.T) {
	tests := []struct {
		name          string
		compactTo     int64 // node 1's log: epochs 1 1 2 2 3, compacted below this
		fetchOffset   int64
		lastEpoch     int32
		wantSnapshot  [2]int64 // end offset, epoch; -1, -1 for none
		wantDiverging [2]int64 // epoch, end offset; -1, -1 for none
		wantEntries   int
	}{
		{"below the log start", 3, 2, 1, [2]int64{3, 2}, [2]int64{-1, -1}, 0},
		{"at the log start, same epoch", 3, 3, 2, [2]int64{-1, -1}, [2]int64{-1, -1}, 2},
		{"at the log start, another epoch", 3, 3, 1, [2]int64{3, 2}, [2]int64{-1, -1}, 0},
		{"divergence below the log start", 3, 4, 1, [2]int64{3, 2}, [2]int64{-1, -1}, 0},
		{"divergence above the log start", 3, 5, 2, [2]int64{-1, -1}, [2]int64{2, 4}, 0},
		{"divergence at the log start", 4, 6, 2, [2]int64{-1, -1}, [2]int64{2, 4}, 0},
		{"matching above the log start", 3, 4, 2, [2]int64{-1, -1}, [2]int64{-1, -1}, 1},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := committedLeader(t)
			if err := n.Compact(test.compactTo, n.log.epochAt(test.compactTo-1), []byte("state")); err != nil {
				t.Fatal(err)
			}
			p := kmsg.FetchRequestTopicPartition{CurrentLeaderEpoch: 3, FetchOffset: test.fetchOffset, LastFetchedEpoch: test.lastEpoch}
			if err := n.Step(Message{From: 3, To: 1, Body: newFetchRequest("unit", 3, p)}); err != nil {
				t.Fatal(err)
			}
			answer, _ := fetchResponsePartition(onlyMessage(t, drain(n), 3).Body.(*kmsg.FetchResponse))
			snapshot := [2]int64{answer.SnapshotID.EndOffset, int64(answer.SnapshotID.Epoch)}
			diverging := [2]int64{int64(answer.DivergingEpoch.Epoch), answer.DivergingEpoch.EndOffset}
			fetched, err := decodeEntries(answer.RecordBatches)
			if err != nil || answer.ErrorCode != 0 || snapshot != test.wantSnapshot || diverging != test.wantDiverging || len(fetched) != test.wantEntries {
				t.Fatalf("error %d, snapshot %v, diverging %v, %d entries (%v); want snapshot %v, diverging %v, %d entries",
					answer.ErrorCode, snapshot, diverging, len(fetched), err, test.wantSnapshot, test.wantDiverging, test.wantEntries)
			}
			if answer.LogStartOffset != test.compactTo {
				t.Fatalf("answer's log start %d, want %d", answer.LogStartOffset, test.compactTo)
			}
		})
	}
}

// fetchSnapshotRequest builds a FetchSnapshot from node 2.
func fetchSnapshotRequest(epoch int32, offset int64, snapshotEpoch int32, position int64, maxBytes int32) Message {
	p := kmsg.FetchSnapshotRequestTopicPartition{
		CurrentLeaderEpoch: epoch, Position: position,
		SnapshotID: kmsg.FetchSnapshotRequestTopicPartitionSnapshotID{EndOffset: offset, Epoch: snapshotEpoch},
	}
	body := &kmsg.FetchSnapshotRequest{Version: fetchSnapshotVersion, ReplicaID: 2, MaxBytes: maxBytes,
		Topics: []kmsg.FetchSnapshotRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.FetchSnapshotRequestTopicPartition{p}}}}
	return Message{From: 2, To: 1, CorrelationID: 5, Body: body}
}

// TestFetchSnapshotRequestOnLeader covers the leader's FetchSnapshot
// answers: refusals by epoch, snapshot id and position, and chunks bounded
// by the request's MaxBytes that add up to the data and its checksum.
func TestFetchSnapshotRequestOnLeader(t *testing.T) {
	data := []byte("the state machine after offset 5")
	tests := []struct {
		name      string
		request   Message
		wantError *kerr.Error
	}{
		{"stale epoch", fetchSnapshotRequest(2, 5, 3, 0, 0), kerr.FencedLeaderEpoch},
		{"later epoch", fetchSnapshotRequest(4, 5, 3, 0, 0), kerr.UnknownLeaderEpoch},
		{"another snapshot", fetchSnapshotRequest(3, 4, 2, 0, 0), kerr.SnapshotNotFound},
		{"position past the end", fetchSnapshotRequest(3, 5, 3, int64(len(data))+snapshotChecksumBytes+1, 0), kerr.PositionOutOfRange},
		{"negative position", fetchSnapshotRequest(3, 5, 3, -1, 0), kerr.PositionOutOfRange},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n := committedLeader(t)
			if err := n.Compact(5, 3, data); err != nil {
				t.Fatal(err)
			}
			if err := n.Step(test.request); err != nil {
				t.Fatal(err)
			}
			answer, _ := fetchSnapshotResponsePartition(onlyMessage(t, drain(n), 2).Body.(*kmsg.FetchSnapshotResponse))
			if answer.ErrorCode != test.wantError.Code || answer.CurrentLeader.LeaderID != 1 || answer.CurrentLeader.LeaderEpoch != 3 {
				t.Fatalf("error %d naming %+v, want %s naming leader 1 of epoch 3", answer.ErrorCode, answer.CurrentLeader, test.wantError.Message)
			}
		})
	}
	t.Run("chunks", func(t *testing.T) {
		n := committedLeader(t)
		if err := n.Compact(5, 3, data); err != nil {
			t.Fatal(err)
		}
		var wire []byte
		for chunks := 0; ; chunks++ {
			if err := n.Step(fetchSnapshotRequest(3, 5, 3, int64(len(wire)), 7)); err != nil {
				t.Fatal(err)
			}
			answer, _ := fetchSnapshotResponsePartition(onlyMessage(t, drain(n), 2).Body.(*kmsg.FetchSnapshotResponse))
			if answer.ErrorCode != 0 || answer.Position != int64(len(wire)) || len(answer.Bytes) > 7 {
				t.Fatalf("chunk %d: error %d at %d with %d bytes", chunks, answer.ErrorCode, answer.Position, len(answer.Bytes))
			}
			wire = append(wire, answer.Bytes...)
			if int64(len(wire)) == answer.Size {
				break
			}
		}
		got, err := decodeSnapshot(5, 3, wire, true)
		if err != nil || !bytes.Equal(got.Data, data) {
			t.Fatalf("chunks decode to %q (%v), want %q", got.Data, err, data)
		}
	})
}

// snapshotFollower returns node 2 following node 1 in epoch 3 with two
// entries of epoch 1, told by its first Fetch's answer to fetch snapshot
// 5-3, and the FetchSnapshot it sent.
func snapshotFollower(t *testing.T) (*Node, Message) {
	t.Helper()
	n := newTestNode(t, 2, Restored{HardState: HardState{Epoch: 3, VotedFor: NoNode, LeaderID: 1}, Entries: entries(1, 1)})
	n.Tick()
	fetch := onlyMessage(t, drain(n), 1)
	answer := newFetchResponse(kmsg.FetchResponseTopicPartition{
		HighWatermark:  6,
		DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: -1, EndOffset: -1},
		CurrentLeader:  kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 3},
		SnapshotID:     kmsg.FetchResponseTopicPartitionSnapshotID{EndOffset: 5, Epoch: 3},
	})
	if err := n.Step(Message{From: 1, To: 2, CorrelationID: fetch.CorrelationID, Body: answer}); err != nil {
		t.Fatal(err)
	}
	return n, onlyMessage(t, drain(n), 1)
}

// chunkAnswer answers request with wire[from:to] of snapshot 5-3.
func chunkAnswer(request Message, wire []byte, from, to int) Message {
	p := kmsg.FetchSnapshotResponseTopicPartition{
		SnapshotID:    kmsg.FetchSnapshotResponseTopicPartitionSnapshotID{EndOffset: 5, Epoch: 3},
		CurrentLeader: kmsg.FetchSnapshotResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 3},
		Size:          int64(len(wire)), Position: int64(from), Bytes: slices.Clone(wire[from:to]),
	}
	return Message{From: 1, To: request.From, CorrelationID: request.CorrelationID, Body: newFetchSnapshotResponse(p)}
}

// TestFollowerInstallsFetchedSnapshot walks a follower through fetching a
// snapshot in two chunks and checks what the Ready asks of the host: persist
// and install the snapshot, with the log restarting at its offset, the high
// watermark there, and the next Fetch continuing from it.
func TestFollowerInstallsFetchedSnapshot(t *testing.T) {
	n, request := snapshotFollower(t)
	wire := encodeSnapshot(Snapshot{Offset: 5, Epoch: 3, Data: []byte("state at 5")})
	if _, ok := request.Body.(*kmsg.FetchSnapshotRequest); !ok {
		t.Fatalf("a follower told of a snapshot sent %v", request)
	}
	if err := n.Step(chunkAnswer(request, wire, 0, 6)); err != nil {
		t.Fatal(err)
	}
	second := onlyMessage(t, drain(n), 1)
	p, _ := fetchSnapshotRequestPartition(second.Body.(*kmsg.FetchSnapshotRequest))
	if p.Position != 6 || n.LogStartOffset() != 0 {
		t.Fatalf("after the first chunk: position %d, log start %d", p.Position, n.LogStartOffset())
	}
	if err := n.Step(chunkAnswer(second, wire, 6, len(wire))); err != nil {
		t.Fatal(err)
	}
	r := n.Ready()
	if r.Snapshot == nil || r.Snapshot.Offset != 5 || r.Snapshot.Epoch != 3 || string(r.Snapshot.Data) != "state at 5" || !r.MustSync {
		t.Fatalf("Ready carries snapshot %+v (sync %v), want 5-3 with its data, synced", r.Snapshot, r.MustSync)
	}
	if n.LogStartOffset() != 5 || n.EndOffset() != 5 || n.HighWatermark() != 5 || len(r.CommittedEntries) != 0 {
		t.Fatalf("log [%d, %d), high watermark %d, applies %v; want [5, 5), 5, nothing", n.LogStartOffset(), n.EndOffset(), n.HighWatermark(), r.CommittedEntries)
	}
	fetch, _ := fetchRequestPartition(onlyMessage(t, r, 1).Body.(*kmsg.FetchRequest))
	if fetch.FetchOffset != 5 || fetch.LastFetchedEpoch != 3 || fetch.LogStartOffset != 5 {
		t.Fatalf("next Fetch at %d epoch %d log start %d, want 5, 3, 5", fetch.FetchOffset, fetch.LastFetchedEpoch, fetch.LogStartOffset)
	}
	n.Advance()
}

// TestBadSnapshotChunks feeds a follower chunks it must not take: at the
// wrong position, of another snapshot, larger than announced, and a whole
// snapshot that fails its checksum. None installs anything.
func TestBadSnapshotChunks(t *testing.T) {
	wire := encodeSnapshot(Snapshot{Offset: 5, Epoch: 3, Data: []byte("state at 5")})
	corrupt := slices.Clone(wire)
	corrupt[0] ^= 1
	other := encodeSnapshot(Snapshot{Offset: 5, Epoch: 2, Data: []byte("state at 5")})
	tests := []struct {
		name   string
		answer func(request Message) Message
	}{
		{"wrong position", func(r Message) Message {
			m := chunkAnswer(r, wire, 0, 4)
			m.Body.(*kmsg.FetchSnapshotResponse).Topics[0].Partitions[0].Position = 2
			return m
		}},
		{"another snapshot", func(r Message) Message {
			m := chunkAnswer(r, other, 0, len(other))
			m.Body.(*kmsg.FetchSnapshotResponse).Topics[0].Partitions[0].SnapshotID.Epoch = 2
			return m
		}},
		{"more bytes than the size", func(r Message) Message {
			m := chunkAnswer(r, wire, 0, len(wire))
			m.Body.(*kmsg.FetchSnapshotResponse).Topics[0].Partitions[0].Size = 4
			return m
		}},
		{"a corrupted byte", func(r Message) Message { return chunkAnswer(r, corrupt, 0, len(corrupt)) }},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			n, request := snapshotFollower(t)
			if err := n.Step(test.answer(request)); err == nil {
				t.Fatalf("the chunk was accepted")
			}
			r := drain(n)
			if r.Snapshot != nil || n.LogStartOffset() != 0 || n.HighWatermark() != 0 || n.EndOffset() != 2 {
				t.Fatalf("a bad chunk changed the log: snapshot %v, log [%d, %d), high watermark %d", r.Snapshot, n.LogStartOffset(), n.EndOffset(), n.HighWatermark())
			}
		})
	}
}

// TestDivergenceBelowLogStartRefused: a follower whose log starts at a
// snapshot refuses a DivergingEpoch that would truncate into it (a correct
// leader sends its snapshot id instead).
func TestDivergenceBelowLogStartRefused(t *testing.T) {
	snapshot := Snapshot{Offset: 3, Epoch: 2, Data: []byte("s")}
	n := newTestNode(t, 2, Restored{HardState: HardState{Epoch: 3, VotedFor: NoNode, LeaderID: 1}, Entries: entries(1, 2, 2, 2, 2)[3:], Snapshot: snapshot})
	n.Tick()
	fetch := onlyMessage(t, drain(n), 1)
	answer := newFetchResponse(kmsg.FetchResponseTopicPartition{
		HighWatermark:  3,
		DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: 1, EndOffset: 1},
		CurrentLeader:  kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 3},
	})
	if err := n.Step(Message{From: 1, To: 2, CorrelationID: fetch.CorrelationID, Body: answer}); err == nil {
		t.Fatalf("a divergence below the log start was accepted")
	}
	if r := drain(n); r.TruncateToOffset >= 0 || n.LogStartOffset() != 3 || n.EndOffset() != 5 {
		t.Fatalf("log [%d, %d), truncation %d after the refused divergence", n.LogStartOffset(), n.EndOffset(), r.TruncateToOffset)
	}
}

// tamperSnapshotChunks returns a rewrite hook that mangles the FetchSnapshot
// answers sent to id in one way: "corrupt" flips a bit of the first chunk,
// "duplicate" delivers every chunk twice, "late" holds the first chunk back
// and delivers it after the answer to the request that replaced it. It
// copies what it changes: the leader's snapshot bytes stay intact.
func tamperSnapshotChunks(id int32, how string) func(Message) []Message {
	var held []Message
	done := false
	return func(m Message) []Message {
		response, ok := m.Body.(*kmsg.FetchSnapshotResponse)
		if !ok || m.To != id || response.Topics[0].Partitions[0].ErrorCode != 0 {
			return []Message{m}
		}
		switch how {
		case "corrupt":
			if done {
				return []Message{m}
			}
			done = true
			copied := *response
			copied.Topics = []kmsg.FetchSnapshotResponseTopic{{Topic: MetadataTopic, Partitions: slices.Clone(response.Topics[0].Partitions)}}
			p := &copied.Topics[0].Partitions[0]
			p.Bytes = slices.Clone(p.Bytes)
			p.Bytes[0] ^= 0x10
			m.Body = &copied
			return []Message{m}
		case "duplicate":
			return []Message{m, m}
		case "late":
			if !done && held == nil {
				held = []Message{m}
				return nil
			}
			if !done {
				done = true
				return append([]Message{m}, held...)
			}
		}
		return []Message{m}
	}
}

// scenarioSnapshotCatchUp crashes a follower, lets the others commit and
// compact far past its log, and restarts it: it must catch up through
// FetchSnapshot, in chunks of 3 bytes, with the snapshot answers to it
// tampered with as how says (or not, for ""). The harness checks that every
// installed snapshot holds the committed state at its offset.
func scenarioSnapshotCatchUp(how string) func(reporter, func(*Config)) {
	return func(t reporter, tune func(*Config)) {
		c := newCluster(t, 3, 31, func(config *Config) {
			config.SnapshotChunkBytesMax = 3
			if tune != nil {
				tune(config)
			}
		})
		leader := c.waitLeader()
		lagging := leader%3 + 1
		c.propose(leader, "first")
		c.tickAll(2)
		c.crash(lagging)
		for i := range 20 {
			c.propose(leader, string(rune('a'+i)))
			c.tickAll(1)
		}
		c.tickAll(2)
		for _, tn := range c.nodes {
			c.compact(tn.id, true)
		}
		if start := c.get(leader).node.LogStartOffset(); start <= diskEnd(c.get(lagging)) {
			t.Fatalf("the leader's log starts at %d, not past the lagging node's log end %d", start, diskEnd(c.get(lagging)))
		}
		c.rewrite = tamperSnapshotChunks(lagging, how)
		c.tolerateStepErrors = how == "corrupt"
		c.restart(lagging)
		target := c.propose(leader, "after")
		for range 50 {
			c.tickAll(1)
			if c.allCommitted(target) {
				break
			}
		}
		n := c.get(lagging).node
		if !c.allCommitted(target) || n.LogStartOffset() == 0 || c.installs == 0 {
			t.Fatalf("the lagging node did not catch up through a snapshot: %s", c.describe())
		}
		if how == "corrupt" && c.stepErrors == 0 {
			t.Fatalf("the corrupted snapshot was not reported")
		}
	}
}

// TestCompactedFollowerCatchesUpThroughSnapshot is the scripted KIP-630
// scenario: a follower crashed long enough that the leader compacted past it
// catches up through FetchSnapshot.
func TestCompactedFollowerCatchesUpThroughSnapshot(t *testing.T) {
	scenarioSnapshotCatchUp("")(t, nil)
}

// TestCorruptSnapshotChunkNeverInstalls: a bit flipped in a chunk fails the
// snapshot's checksum, and the follower fetches it again; without the
// checksum it installs a state the leader never had.
func TestCorruptSnapshotChunkNeverInstalls(t *testing.T) {
	protects(t, scenarioSnapshotCatchUp("corrupt"), "fails without the snapshot checksum", func(c *Config) { c.unsafe.noSnapshotChecksum = true })
}

// TestDuplicatedSnapshotChunkNeverInstalls: a duplicated chunk is not the
// answer in flight and is ignored. Position checks and the checksum would
// each catch it too, so the unprotected run switches all of them off.
func TestDuplicatedSnapshotChunkNeverInstalls(t *testing.T) {
	protects(t, scenarioSnapshotCatchUp("duplicate"), "fails when chunks are trusted", func(c *Config) { c.unsafe.trustSnapshotChunks = true })
}

// TestLateSnapshotChunkNeverInstalls: a chunk that arrives after the
// follower asked again is not the answer in flight and is ignored; trusted,
// it enters the snapshot twice.
func TestLateSnapshotChunkNeverInstalls(t *testing.T) {
	protects(t, scenarioSnapshotCatchUp("late"), "fails when chunks are trusted", func(c *Config) { c.unsafe.trustSnapshotChunks = true })
}

// TestCompactedObserverCatchesUpThroughSnapshot: an observer that was down
// while the voters compacted past its log catches up the same way.
func TestCompactedObserverCatchesUpThroughSnapshot(t *testing.T) {
	c := newClusterWithObservers(t, 3, 1, 37, func(config *Config) { config.SnapshotChunkBytesMax = 4 })
	leader := c.waitLeader()
	c.tickAll(2)
	c.crash(4)
	for i := range 10 {
		c.propose(leader, string(rune('a'+i)))
		c.tickAll(1)
	}
	for _, voter := range c.config.Voters {
		c.compact(voter, true)
	}
	c.restart(4)
	target := c.propose(leader, "after")
	for range 50 {
		c.tickAll(1)
		if c.allCommitted(target) {
			break
		}
	}
	if !c.allCommitted(target) || c.get(4).node.LogStartOffset() == 0 {
		t.Fatalf("the observer did not catch up through a snapshot: %s", c.describe())
	}
}

// liveDuringSnapshotFetch has node 2 fetch a snapshot from leader 1 one byte
// per tick, for many check-quorum windows, while node 3 is silent. The
// leader must keep leading at every tick (it hears from a majority: itself
// and node 2), and node 2 must finish the transfer without restarting it
// (it hears from its leader).
func liveDuringSnapshotFetch(t reporter, tune func(*Config)) {
	config := Config{ID: 1, Voters: []int32{1, 2, 3}, ClusterID: "unit", SnapshotChunkBytesMax: 1}
	if tune != nil {
		tune(&config)
	}
	start := func(id int32, restored Restored) *Node {
		config.ID, config.Rand = id, core.NewRand(uint64(id))
		n, err := New(config, restored)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return n
	}
	leader := start(1, Restored{HardState: HardState{Epoch: 2, VotedFor: NoNode, LeaderID: NoNode}, Entries: entries(1, 1, 2, 2)})
	for range 100 {
		if leader.Role() == RoleLeader {
			break
		}
		leader.Tick()
		for _, m := range drainAll(leader) {
			if _, ok := m.Body.(*kmsg.VoteRequest); ok && m.To == 2 {
				answer := newVoteResponse(kmsg.VoteResponseTopicPartition{LeaderID: NoNode, LeaderEpoch: leader.HardState().Epoch, VoteGranted: true})
				leader.Step(Message{From: 2, To: 1, CorrelationID: m.CorrelationID, Body: answer})
			}
		}
	}
	if leader.Role() != RoleLeader {
		t.Fatalf("node 1 did not win an election")
	}
	epoch := leader.HardState().Epoch
	follower := start(2, Restored{HardState: HardState{Epoch: epoch, VotedFor: NoNode, LeaderID: 1}})
	exchange := func(from, to *Node) {
		for _, m := range drainAll(from) {
			if m.To == to.ID() {
				to.Step(m)
			}
		}
	}
	// Node 2 fetches the leader's entries once, so that the leader commits
	// and can compact.
	follower.Tick()
	exchange(follower, leader)
	exchange(leader, follower)
	exchange(follower, leader)
	drainAll(leader)
	if err := leader.Compact(leader.HighWatermark(), epoch, bytes.Repeat([]byte("a large state, sent one byte per tick. "), 10)); err != nil {
		t.Fatalf("%v", err)
	}
	// Node 2 restarts with an empty log and must fetch the snapshot, one
	// byte per tick: far longer than the fetch timeout and the check-quorum
	// window.
	follower = start(2, Restored{HardState: HardState{Epoch: epoch, VotedFor: NoNode, LeaderID: 1}})
	bound := len(leader.snapshotWire) + config.withDefaults().FetchTimeoutTicks
	for tick := range bound {
		leader.Tick()
		follower.Tick()
		exchange(follower, leader)
		exchange(leader, follower)
		if leader.Role() != RoleLeader {
			t.Fatalf("leader resigned after %d ticks of snapshot fetching", tick+1)
		}
		if follower.LogStartOffset() > 0 {
			return
		}
	}
	t.Fatalf("node 2 did not install the %d-byte snapshot within %d ticks (it is %s)", len(leader.snapshotWire), bound, follower.Role())
}

// drainAll performs a node's Ready, if any, and returns its messages.
func drainAll(n *Node) []Message {
	if !n.HasReady() {
		return nil
	}
	r := n.Ready()
	n.Advance()
	return r.Messages
}

// TestSnapshotFetchKeepsQuorumAlive: a voter busy fetching a long snapshot
// keeps its leader's quorum and its own lease on the leader, as in Kafka.
// The unprotected run switches both off: the follower then times out every
// fetch timeout, runs a pre-vote, returns and starts the transfer over, so
// it never completes (with only the leader's side off, the leader would
// resign instead).
func TestSnapshotFetchKeepsQuorumAlive(t *testing.T) {
	protects(t, liveDuringSnapshotFetch, "fails when snapshot fetching does not count as live", func(c *Config) { c.unsafe.snapshotFetchNotLive = true })
}
