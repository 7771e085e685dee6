package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMember is one kgo consumer in a group, polling on its own goroutine
// and recording the values it receives.
type groupMember struct {
	client *kgo.Client
	done   chan struct{}
}

// consumedSet is what the members have received, shared between them.
type consumedSet struct {
	mu       sync.Mutex
	byMember []map[string]int
}

func (c *consumedSet) add(member int, records []*kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range records {
		c.byMember[member][string(r.Value)]++
	}
}

// missing returns how many of values no member in members has received.
func (c *consumedSet) missing(values []string, members ...int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	count := 0
	for _, v := range values {
		found := false
		for _, m := range members {
			found = found || c.byMember[m][v] > 0
		}
		if !found {
			count++
		}
	}
	return count
}

func startMember(t *testing.T, addr string, index int, consumed *consumedSet) *groupMember {
	t.Helper()
	m := &groupMember{done: make(chan struct{})}
	m.client = newClient(t, addr,
		kgo.ClientID(fmt.Sprintf("member-%d", index)),
		kgo.ConsumerGroup("crew"), kgo.ConsumeTopics("work"),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		// Quick heartbeats make rebalances quick; they do not change what
		// the test checks.
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
	)
	go func() {
		defer close(m.done)
		for {
			fetches := m.client.PollFetches(context.Background())
			if fetches.IsClientClosed() {
				return
			}
			consumed.add(index, fetches.Records())
		}
	}()
	return m
}

// produceValues writes count keyed records named prefix-i and returns the
// values.
func produceValues(t *testing.T, addr, topic, prefix string, count int) []string {
	t.Helper()
	producer := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	defer producer.Close()
	values := make([]string, count)
	records := make([]*kgo.Record, count)
	for i := range records {
		values[i] = fmt.Sprintf("%s-%d", prefix, i)
		records[i] = &kgo.Record{Key: []byte(values[i]), Value: []byte(values[i])}
	}
	if err := producer.ProduceSync(testContext(t), records...).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", prefix, err)
	}
	return values
}

// waitFor polls condition until it holds or the hang guard expires.
func waitFor(t *testing.T, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: %s never happened", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupShape describes the group "crew": its state and how many members
// hold at least one partition, and how many partitions they hold in all.
func groupShape(t *testing.T, admin *kadm.Client) (state string, membersWithPartitions, partitions int) {
	t.Helper()
	described, err := admin.DescribeGroups(testContext(t), "crew")
	if err != nil {
		return "", 0, 0 // transient while the coordinator is busy; the caller retries
	}
	g := described["crew"]
	for _, m := range g.Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			n := 0
			for _, topic := range c.Topics {
				n += len(topic.Partitions)
			}
			if n > 0 {
				membersWithPartitions++
			}
			partitions += n
		}
	}
	return g.State, membersWithPartitions, partitions
}

// TestKgoConsumerGroupRebalances runs a group of three kgo members over a
// six-partition topic and checks that together they consume everything,
// that the group settles with all three holding partitions, and that after
// one member leaves, the group rebalances to the remaining two, which then
// consume every record produced afterwards.
func TestKgoConsumerGroupRebalances(t *testing.T) {
	b := startBroker(t, t.TempDir())
	if missing := missingGroupAPIs(t, b.addr); len(missing) > 0 {
		t.Skipf("the broker does not implement %s yet (ApiVersions)", strings.Join(missing, ", "))
	}
	createTopic(t, b.addr, "work", 6)
	admin := kadm.NewClient(newClient(t, b.addr))
	before := produceValues(t, b.addr, "work", "before", 300)

	consumed := &consumedSet{byMember: []map[string]int{{}, {}, {}}}
	members := make([]*groupMember, 3)
	for i := range members {
		members[i] = startMember(t, b.addr, i, consumed)
	}
	waitFor(t, "three members sharing six partitions", func() bool {
		state, holders, partitions := groupShape(t, admin)
		return state == "Stable" && holders == 3 && partitions == 6
	})
	waitFor(t, "the group consuming every record produced before", func() bool {
		return consumed.missing(before, 0, 1, 2) == 0
	})

	members[2].client.Close()
	<-members[2].done
	waitFor(t, "two members sharing six partitions after one left", func() bool {
		state, holders, partitions := groupShape(t, admin)
		return state == "Stable" && holders == 2 && partitions == 6
	})
	after := produceValues(t, b.addr, "work", "after", 300)
	waitFor(t, "the remaining two consuming every record produced after the leave", func() bool {
		return consumed.missing(after, 0, 1) == 0
	})
	if n := consumed.missing(after, 2); n != len(after) {
		t.Fatalf("the member that left received %d records produced after it left", len(after)-n)
	}
}
