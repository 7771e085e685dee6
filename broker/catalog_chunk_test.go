package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// bigPartitions needs several chunks to create.
const bigPartitions = 5*chunkPartitionsMax + 3

// createTopicsFrame is a CreateTopics request for one topic.
func createTopicsFrame(name string, partitions int32, timeoutMs int32) []byte {
	req := createTopicsV7()
	req.TimeoutMillis = timeoutMs
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	return encodeRequest(req, 7)
}

func createTopicsV7() *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	return req
}

// secondConn adds another client connection to b, whose answers are
// captured.
func (b *simBroker) secondConn() (*conn, *captureConn) {
	wire := &captureConn{}
	c := &conn{node: b.node, id: 2, net: wire}
	b.node.conns[2] = c
	return c, wire
}

// parseResponse decodes the response frame of req.
func parseResponse(t *testing.T, req kmsg.Request, frame []byte) kmsg.Response {
	t.Helper()
	resp := req.ResponseKind()
	frame = frame[4:]
	if resp.IsFlexible() {
		frame = frame[1:]
	}
	if err := resp.ReadFrom(frame); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestCreateTopicsInChunksServesOthers creates a topic that needs several
// chunks and checks that one loop turn creates at most one chunk, that
// another client is answered while the creation is under way and does not
// see the topic, and that the topic appears whole once the creation ends.
func TestCreateTopicsInChunksServesOthers(t *testing.T) {
	b := newSimBroker(t, 11, nil)
	b.conn.OnFrame(b.wire, createTopicsFrame("big", bigPartitions, 60_000))
	if len(b.wire.sent) != 0 {
		t.Fatal("CreateTopics answered within one loop turn")
	}
	if n := len(b.node.catalog.creating); n != 1 {
		t.Fatalf("%d creations under way, want 1", n)
	}
	if got := len(b.node.catalog.creating[0].topic.partitions); got > chunkPartitionsMax {
		t.Fatalf("first turn created %d partitions, chunk is %d", got, chunkPartitionsMax)
	}
	other, otherWire := b.secondConn()
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.SetVersion(9)
	other.OnFrame(otherWire, encodeRequest(metadata, 8))
	if len(otherWire.sent) != 1 {
		t.Fatalf("another client got %d answers during the creation, want 1", len(otherWire.sent))
	}
	for _, mt := range parseResponse(t, metadata, otherWire.sent[0]).(*kmsg.MetadataResponse).Topics {
		if *mt.Topic == "big" {
			t.Fatal("a topic being created is visible in Metadata")
		}
	}
	duplicate := b.roundTripOn(t, other, otherWire, createTopicsFrame("big", 1, 0))
	if code := duplicate.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.TopicAlreadyExists.Code {
		t.Fatalf("creating the same name meanwhile: error %d, want TOPIC_ALREADY_EXISTS", code)
	}

	for len(b.wire.sent) == 0 && b.sched.Step() {
	}
	resp := parseResponse(t, createTopicsV7(), b.wire.sent[0]).(*kmsg.CreateTopicsResponse)
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.NumPartitions != bigPartitions || st.TopicID == [16]byte{} {
		t.Fatalf("answer: error %d, %d partitions, id %x", st.ErrorCode, st.NumPartitions, st.TopicID)
	}
	if b.node.catalog.partition("big", bigPartitions-1) == nil || len(b.node.catalog.creating) != 0 {
		t.Fatal("topic not whole after the answer")
	}
	b.kill(t)
	if b.node.catalog.partition("big", bigPartitions-1) == nil {
		t.Fatal("created topic lost across a restart")
	}
}

// roundTripOn sends frame on c and returns the one answer, parsed as a
// CreateTopics response.
func (b *simBroker) roundTripOn(t *testing.T, c *conn, wire *captureConn, frame []byte) kmsg.Response {
	t.Helper()
	before := len(wire.sent)
	c.OnFrame(wire, frame)
	if len(wire.sent) != before+1 {
		t.Fatalf("%d answers, want 1", len(wire.sent)-before)
	}
	return parseResponse(t, createTopicsV7(), wire.sent[before])
}

// TestCreateTopicsCrashMidwayLeavesNoTrace loses power after each of the
// first chunks of a creation: the creation intent is durable from the
// first chunk that needs a successor, so startup removes every partial
// directory (nothing set aside, nothing left), and the name can be used.
func TestCreateTopicsCrashMidwayLeavesNoTrace(t *testing.T) {
	for _, steps := range []int{0, 1, 2, 4} {
		b := newSimBroker(t, 12, nil)
		b.conn.OnFrame(b.wire, createTopicsFrame("partial", bigPartitions, 60_000))
		for range steps {
			b.sched.Step()
		}
		if len(b.wire.sent) != 0 {
			t.Fatalf("steps %d: creation finished before the crash", steps)
		}
		b.crash(t)
		if b.node.catalog.topics["partial"] != nil {
			t.Fatalf("steps %d: a partly created topic is visible after the crash", steps)
		}
		entries, err := b.disk.ReadDir(b.cfg.LogDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name, "partial") || strings.Contains(e.Name, orphanedSuffix) {
				t.Fatalf("steps %d: leftover %s", steps, e.Name)
			}
		}
		createTopic(t, b, "partial", 2)
	}
}

// TestCreateTopicsTimesOutAndGoesOn answers REQUEST_TIMED_OUT when the
// creation outlasts the request's timeout, as Kafka's controller does, and
// still finishes the creation.
func TestCreateTopicsTimesOutAndGoesOn(t *testing.T) {
	b := newSimBroker(t, 13, nil)
	b.conn.OnFrame(b.wire, createTopicsFrame("slow", bigPartitions, 1))
	for len(b.wire.sent) == 0 && b.sched.Step() {
	}
	resp := parseResponse(t, createTopicsV7(), b.wire.sent[0]).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != kerr.RequestTimedOut.Code && b.node.catalog.topics["slow"] == nil {
		t.Fatalf("error %d before the topic exists, want REQUEST_TIMED_OUT", code)
	}
	for len(b.node.catalog.creating) > 0 && b.sched.Step() {
	}
	if b.node.catalog.partition("slow", bigPartitions-1) == nil {
		t.Fatal("creation did not go on after the timeout")
	}
}

// TestStopDuringCreationRemovesIt stops the broker cleanly while a topic is
// being created: its partial directories are removed, not set aside.
func TestStopDuringCreationRemovesIt(t *testing.T) {
	b := newSimBroker(t, 14, nil)
	b.conn.OnFrame(b.wire, createTopicsFrame("stopped", bigPartitions, 60_000))
	if err := b.node.Stop(); err != nil {
		t.Fatal(err)
	}
	b.kill(t)
	entries, err := b.disk.ReadDir(b.cfg.LogDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name, "stopped") || strings.Contains(e.Name, orphanedSuffix) {
			t.Fatalf("leftover %s", e.Name)
		}
	}
}

// TestPeriodicWalksRunInChunks checks that retention and flush walks over
// more partitions than a chunk return to the loop between chunks, and that
// a timer firing meanwhile starts no second walk.
func TestPeriodicWalksRunInChunks(t *testing.T) {
	walks := []struct {
		name    string
		start   func(c *catalog)
		walking func(c *catalog) bool
	}{
		{"retention", func(c *catalog) { c.enforceRetention(c.node.now()) }, func(c *catalog) bool { return c.retentionWalking }},
		{"flush", func(c *catalog) { c.syncAll() }, func(c *catalog) bool { return c.syncWalking }},
	}
	for _, w := range walks {
		t.Run(w.name, func(t *testing.T) {
			b := newSimBroker(t, 15, nil)
			createTopic(t, b, "wide", bigPartitions)
			c := b.node.catalog
			w.start(c)
			if !w.walking(c) {
				t.Fatal("walk over many partitions finished within one loop turn")
			}
			w.start(c) // a timer firing while the walk is under way
			turns := 1
			for w.walking(c) && b.sched.Step() {
				turns++
			}
			if w.walking(c) {
				t.Fatal("walk never finished")
			}
			total := bigPartitions + int(b.cfg.OffsetsTopicPartitions)
			if want := (total + chunkPartitionsMax - 1) / chunkPartitionsMax; turns < want {
				t.Fatalf("walk took %d turns, want at least %d", turns, want)
			}
		})
	}
}

// createPartitionsFrame is a CreatePartitions request growing topic to
// count partitions.
func createPartitionsFrame(topic string, count int32) []byte {
	req := createPartitionsV3()
	req.TimeoutMillis = 60_000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, count
	req.Topics = append(req.Topics, rt)
	return encodeRequest(req, 9)
}

func createPartitionsV3() *kmsg.CreatePartitionsRequest {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.SetVersion(3)
	return req
}

// TestCreatePartitionsInChunks grows a topic by more than a chunk: the new
// partitions stay invisible until all exist, a second growth meanwhile is
// refused, and the topic keeps its new size across a restart.
func TestCreatePartitionsInChunks(t *testing.T) {
	b := newSimBroker(t, 17, nil)
	createTopic(t, b, "growing", 1)
	b.wire.sent = nil
	b.conn.OnFrame(b.wire, createPartitionsFrame("growing", bigPartitions))
	if len(b.wire.sent) != 0 {
		t.Fatal("CreatePartitions answered within one loop turn")
	}
	if b.node.catalog.partition("growing", 1) != nil {
		t.Fatal("a partition being created is visible")
	}
	other, otherWire := b.secondConn()
	other.OnFrame(otherWire, createPartitionsFrame("growing", bigPartitions+1))
	second := parseResponse(t, createPartitionsV3(), otherWire.sent[0]).(*kmsg.CreatePartitionsResponse)
	if code := second.Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Fatalf("second growth meanwhile: error %d, want INVALID_PARTITIONS", code)
	}
	for len(b.wire.sent) == 0 && b.sched.Step() {
	}
	resp := parseResponse(t, createPartitionsV3(), b.wire.sent[0]).(*kmsg.CreatePartitionsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("growth: error %d", code)
	}
	b.kill(t)
	if n := len(b.node.catalog.topics["growing"].partitions); n != bigPartitions {
		t.Fatalf("%d partitions after a restart, want %d", n, bigPartitions)
	}
}

// TestDeleteDuringGrowthRemovesEverything deletes a topic while it grows:
// the growth is answered UNKNOWN_TOPIC_OR_PARTITION and no directory of the
// topic is left, in any state.
func TestDeleteDuringGrowthRemovesEverything(t *testing.T) {
	b := newSimBroker(t, 18, nil)
	createTopic(t, b, "shortlived", 1)
	b.wire.sent = nil
	b.conn.OnFrame(b.wire, createPartitionsFrame("shortlived", bigPartitions))
	other, otherWire := b.secondConn()
	deletion := kmsg.NewPtrDeleteTopicsRequest()
	deletion.SetVersion(4)
	deletion.TopicNames = []string{"shortlived"}
	other.OnFrame(otherWire, encodeRequest(deletion, 10))
	for (len(b.wire.sent) == 0 || len(otherWire.sent) == 0) && b.sched.Step() {
	}
	resp := parseResponse(t, createPartitionsV3(), b.wire.sent[0]).(*kmsg.CreatePartitionsResponse)
	if code := resp.Topics[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("growth of a deleted topic: error %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
	}
	for b.sched.Step() {
	}
	b.kill(t)
	entries, err := b.disk.ReadDir(b.cfg.LogDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name, "shortlived") || strings.Contains(e.Name, orphanedSuffix) {
			t.Fatalf("leftover %s", e.Name)
		}
	}
}
