package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkasim/kafkasim/broker"
)

// TestGroupCommands consumes part of a topic in a group with kctl and checks
// that group list shows the group, group describe shows the committed
// offsets, end offsets and lag (and, while a kgo member is joined, the
// member with its assignment), that a second consume in the group resumes
// at the committed offsets, and that group delete removes the group.
func TestGroupCommands(t *testing.T) {
	n := startNode(t, func(c *broker.Config) { c.NumPartitions = 2 })
	if missing := missingGroupAPIs(t, n.addr); len(missing) > 0 {
		t.Skipf("the broker does not implement %s yet (ApiVersions)", strings.Join(missing, ", "))
	}
	mustKctl(t, n.addr, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "produce", "jobs")

	first := mustKctl(t, n.addr, "", "consume", "jobs", "-g", "workers", "-n", "6")
	if got := len(strings.Fields(first.stdout)); got != 6 {
		t.Fatalf("first consume printed %d records, want 6: %q", got, first.stdout)
	}
	list := mustKctl(t, n.addr, "", "group", "list")
	if !containsRow(fields(list.stdout), []string{"workers", "Empty", "consumer", "1"}) {
		t.Fatalf("group list:\n%s", list.stdout)
	}
	describe := mustKctl(t, n.addr, "", "group", "describe", "workers")
	rows := fields(describe.stdout)
	for _, want := range [][]string{{"GROUP", "workers"}, {"STATE", "Empty"}, {"MEMBERS", "0"}, {"TOTAL-LAG", "4"}} {
		if !containsRow(rows, want) {
			t.Fatalf("group describe lacks %v:\n%s", want, describe.stdout)
		}
	}

	rest := mustKctl(t, n.addr, "", "consume", "jobs", "-g", "workers", "-e")
	all := append(strings.Fields(first.stdout), strings.Fields(rest.stdout)...)
	if strings.Join(sortedCopy(all), "") != "abcdefghij" {
		t.Fatalf("two consumes in one group printed %v, want each of a..j once", all)
	}
	if !containsRow(fields(mustKctl(t, n.addr, "", "group", "describe", "workers").stdout), []string{"TOTAL-LAG", "0"}) {
		t.Fatal("lag is not 0 after consuming everything")
	}

	describeWithMember(t, n.addr)

	deleted := mustKctl(t, n.addr, "", "group", "delete", "workers")
	if deleted.stdout != "deleted group workers\n" {
		t.Fatalf("group delete output %q", deleted.stdout)
	}
	if strings.Contains(mustKctl(t, n.addr, "", "group", "list").stdout, "workers") {
		t.Fatal("deleted group still listed")
	}
}

// describeWithMember joins a kgo member to the group and checks that group
// describe lists it with both partitions assigned and that deleting a
// non-empty group fails with the Kafka error named.
func describeWithMember(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	assigned := make(chan struct{}, 1)
	member, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("member-one"),
		kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("jobs"), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	go member.PollFetches(ctx) // joining happens while polling
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("the kgo member was never assigned partitions")
	}
	describe := mustKctl(t, addr, "", "group", "describe", "workers")
	rows := fields(describe.stdout)
	found := false
	for _, row := range rows {
		if len(row) == 4 && row[1] == "member-one" && row[3] == "jobs[0,1]" {
			found = true
		}
	}
	if !found || !containsRow(rows, []string{"STATE", "Stable"}) || !containsRow(rows, []string{"MEMBERS", "1"}) {
		t.Fatalf("group describe with a member:\n%s", describe.stdout)
	}
	r := kctl(t, addr, "", "group", "delete", "workers")
	if r.status != exitFailure || !strings.Contains(r.stderr, "NON_EMPTY_GROUP") {
		t.Fatalf("deleting a group with a member: status %d stderr %q", r.status, r.stderr)
	}
}

func sortedCopy(values []string) []string {
	out := append([]string(nil), values...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a reader and a writer goroutine.
type syncBuffer struct {
	mu   sync.Mutex
	text strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.text.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.text.String()
}

// TestInterruptedGroupConsumeCommitsWhatItPrinted starts an endless
// consume in a group, interrupts it (as Ctrl-C does) once it has printed
// every record, and checks that it exits with status 0 and that the group's
// committed offsets cover exactly what was printed (lag 0).
func TestInterruptedGroupConsumeCommitsWhatItPrinted(t *testing.T) {
	n := startNode(t, nil)
	if missing := missingGroupAPIs(t, n.addr); len(missing) > 0 {
		t.Skipf("the broker does not implement %s yet (ApiVersions)", strings.Join(missing, ", "))
	}
	mustKctl(t, n.addr, "x\ny\nz\n", "produce", "feed")
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var stdout, stderr syncBuffer
	status := make(chan int, 1)
	go func() {
		status <- runContext(ctx, []string{"-b", n.addr, "consume", "feed", "-g", "tail"}, strings.NewReader(""), &stdout, &stderr)
	}()
	deadline := time.Now().Add(hangGuard)
	for stdout.String() != "x\ny\nz\n" {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: consume printed %q", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	interrupt()
	select {
	case s := <-status:
		if s != exitOK {
			t.Fatalf("interrupted consume: status %d stderr %q", s, stderr.String())
		}
	case <-time.After(hangGuard):
		t.Fatal("hang guard: consume did not exit after the interrupt")
	}
	rows := fields(mustKctl(t, n.addr, "", "group", "describe", "tail").stdout)
	if !containsRow(rows, []string{"feed", "0", "3", "3", "0", "-"}) {
		t.Fatalf("committed offsets after the interrupt: %v", rows)
	}
}
