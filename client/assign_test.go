package client

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestAssignorsProperties checks both assignors on random groups where every
// member subscribes to the same topics: every partition is assigned exactly
// once, the result does not depend on member order, and the load is
// balanced within one partition (per topic for range, overall for
// roundrobin).
func TestAssignorsProperties(t *testing.T) {
	for _, assignor := range []string{AssignorRange, AssignorRoundRobin} {
		t.Run(assignor, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				checkAssignor(t, assignor)
			})
		})
	}
}

func checkAssignor(t *rapid.T, assignor string) {
	topicCount := rapid.IntRange(1, 4).Draw(t, "topics")
	partitions := make(map[string]int32)
	var topics []string
	for i := range topicCount {
		name := fmt.Sprintf("t%d", i)
		topics = append(topics, name)
		partitions[name] = int32(rapid.IntRange(1, 30).Draw(t, "partitions"))
	}
	memberCount := rapid.IntRange(1, 12).Draw(t, "members")
	var members []GroupMember
	for i := range memberCount {
		members = append(members, GroupMember{ID: fmt.Sprintf("m%02d", i), Topics: topics})
	}
	plan, err := Assign(assignor, members, partitions)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := slices.Clone(members)
	slices.Reverse(shuffled)
	again, _ := Assign(assignor, shuffled, partitions)
	if !reflect.DeepEqual(plan, again) {
		t.Fatalf("assignment depends on member order")
	}
	seen := make(map[TopicPartition]int)
	total := make([]int, 0, memberCount)
	for _, m := range members {
		count := 0
		for _, topic := range topics {
			for _, p := range plan[m.ID][topic] {
				seen[TopicPartition{topic, p}]++
				count++
			}
		}
		total = append(total, count)
	}
	for _, topic := range topics {
		for p := range partitions[topic] {
			if seen[TopicPartition{topic, p}] != 1 {
				t.Fatalf("%s/%d assigned %d times", topic, p, seen[TopicPartition{topic, p}])
			}
		}
		if assignor == AssignorRange {
			var per []int
			for _, m := range members {
				per = append(per, len(plan[m.ID][topic]))
			}
			if slices.Max(per)-slices.Min(per) > 1 {
				t.Fatalf("range: topic %s unbalanced: %v", topic, per)
			}
		}
	}
	if len(seen) != sumPartitions(partitions) {
		t.Fatalf("assigned %d partitions, want %d", len(seen), sumPartitions(partitions))
	}
	if assignor == AssignorRoundRobin && slices.Max(total)-slices.Min(total) > 1 {
		t.Fatalf("roundrobin unbalanced: %v", total)
	}
}

func sumPartitions(partitions map[string]int32) int {
	n := 0
	for _, c := range partitions { // order-independent: a sum
		n += int(c)
	}
	return n
}

// TestAssignRejectsUnknownAssignor checks that a bad assignor name is an
// error, not a panic.
func TestAssignRejectsUnknownAssignor(t *testing.T) {
	if _, err := Assign("sticky", []GroupMember{{ID: "a", Topics: []string{"t"}}}, map[string]int32{"t": 1}); err == nil {
		t.Fatal("unknown assignor accepted")
	}
}
