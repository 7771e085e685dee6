package client

import (
	"fmt"
	"slices"
)

// Assignor names, as in Kafka's partition.assignment.strategy.
const (
	// AssignorRange gives each member, per topic, a contiguous range of the
	// topic's partitions; the first (partitions % members) members of the
	// sorted member list get one extra.
	AssignorRange = "range"
	// AssignorRoundRobin deals all partitions of all topics, sorted, to the
	// sorted members in turn, skipping members not subscribed to a topic.
	AssignorRoundRobin = "roundrobin"
)

// GroupMember is one member of a group as the leader's assignor sees it.
type GroupMember struct {
	ID     string
	Topics []string
}

// Assign computes a group assignment with the named assignor: for every
// member id, the partitions it owns per topic. partitions gives each topic's
// partition count; topics missing from it are skipped. The result depends
// only on the arguments (members and topics are sorted first).
func Assign(assignor string, members []GroupMember, partitions map[string]int32) (map[string]map[string][]int32, error) {
	if len(members) > groupMembersMax {
		return nil, fmt.Errorf("%w: %d members", ErrInvalidConfig, len(members))
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b GroupMember) int { return compareStrings(a.ID, b.ID) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].ID == sorted[i-1].ID {
			return nil, fmt.Errorf("%w: member %q listed twice", ErrInvalidConfig, sorted[i].ID)
		}
	}
	out := make(map[string]map[string][]int32, len(sorted))
	for _, m := range sorted {
		out[m.ID] = make(map[string][]int32)
	}
	switch assignor {
	case AssignorRange:
		assignRange(sorted, partitions, out)
	case AssignorRoundRobin:
		assignRoundRobin(sorted, partitions, out)
	default:
		return nil, fmt.Errorf("%w: unknown assignor %q", ErrInvalidConfig, assignor)
	}
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// subscribedTopics returns the sorted, distinct topics of all members that
// have a partition count.
func subscribedTopics(members []GroupMember, partitions map[string]int32) []string {
	var topics []string
	for _, m := range members {
		for _, t := range m.Topics {
			if n, ok := partitions[t]; ok && n > 0 && !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	slices.Sort(topics)
	return topics
}

func assignRange(members []GroupMember, partitions map[string]int32, out map[string]map[string][]int32) {
	for _, topic := range subscribedTopics(members, partitions) {
		var subscribers []string
		for _, m := range members {
			if slices.Contains(m.Topics, topic) {
				subscribers = append(subscribers, m.ID)
			}
		}
		n := partitions[topic]
		per, extra := n/int32(len(subscribers)), n%int32(len(subscribers))
		next := int32(0)
		for i, id := range subscribers {
			count := per
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				out[id][topic] = append(out[id][topic], p)
			}
			next += count
		}
		if next != n {
			panic("client: range assignor lost partitions")
		}
	}
}

func assignRoundRobin(members []GroupMember, partitions map[string]int32, out map[string]map[string][]int32) {
	turn := 0
	for _, topic := range subscribedTopics(members, partitions) {
		for p := int32(0); p < partitions[topic]; p++ {
			// Some member subscribes to topic, so this loop ends.
			for !slices.Contains(members[turn%len(members)].Topics, topic) {
				turn++
			}
			id := members[turn%len(members)].ID
			out[id][topic] = append(out[id][topic], p)
			turn++
		}
	}
}
