package checker

import (
	"cmp"
	"fmt"
	"slices"
)

// A high watermark never moves back within one leader epoch.
//
// Each Fetch request of a consumer carries the partition's leader epoch as
// the client knows it (CurrentLeaderEpoch, KIP-320), and a broker answers
// only when it leads the partition in exactly that epoch; otherwise it
// answers FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH. Every answer without
// an error carries the partition's high watermark. Within one epoch there
// is one leader, and it never takes back what it declared committed, so
// the high watermarks that answers of one (partition, epoch) carry never
// decrease in real time. (Kafka's MonotonicHighWatermark, as the clients
// see it; the quorum checker judges the controllers' own.)
//
// Two clients' answers may cross in flight, so only the real-time order is
// judged: when answer A arrived before request B was sent, the broker
// computed A's high watermark before B's, and hw(A) <= hw(B) must hold.
// Answers whose windows overlap are not compared. Times are the
// simulation's true time, not a client's drifting clock.
//
// The evidence is what clients received, never a broker's report about
// itself. Excused, as elsewhere in the checker: a configuration that does
// not promise committed records survive (Replication.CommittedSurvives
// unset: a power loss may take the leader's committed tail, and a single
// broker keeps its epoch across restarts), and a partition the simulator
// damaged at rest (a damaged record may be lost and its offset reused,
// damage.go) once that damage was made.

// Fetch is one partition of a consumer's Fetch answer without an error.
type Fetch struct {
	Client    int    `json:"client"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// LeaderEpoch is the leader epoch the request carried
	// (CurrentLeaderEpoch), or -1 when the client knew none: then the
	// broker checked no epoch and the answer is not judged.
	LeaderEpoch int32 `json:"leader_epoch"`
	// HighWatermark is the high watermark the answer carried.
	HighWatermark int64 `json:"high_watermark"`
	// Sent is when the request was handed to the connection and Received
	// when its answer arrived, in virtual nanoseconds.
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

func validateFetches(fetches []Fetch) error {
	for i, f := range fetches {
		if err := validateName("topic", f.Topic); err != nil {
			return fmt.Errorf("fetch #%d: %w", i, err)
		}
		switch {
		case f.Client < 0 || f.Client >= clientsMax:
			return fmt.Errorf("fetch #%d: client %d outside [0, %d)", i, f.Client, clientsMax)
		case f.Partition < 0 || f.LeaderEpoch < -1 || f.HighWatermark < 0:
			return fmt.Errorf("fetch #%d: partition %d, leader epoch %d, high watermark %d: want a partition, an epoch or -1, and a high watermark",
				i, f.Partition, f.LeaderEpoch, f.HighWatermark)
		case f.Sent < 0 || f.Received < f.Sent:
			return fmt.Errorf("fetch #%d: sent %d and received %d: want 0 <= sent <= received", i, f.Sent, f.Received)
		}
	}
	return nil
}

// epochKey names one leader epoch of one partition.
type epochKey struct {
	tp    TopicPartition
	epoch int32
}

// checkFetchHighWatermarks reports, per partition and leader epoch, the first
// answer (in the order requests were sent) whose high watermark is below
// that of an answer received before it was sent.
func checkFetchHighWatermarks(ix *historyIndex) ([]Anomaly, int) {
	r := ix.h.Replication
	if r == nil || !r.CommittedSurvives {
		return nil, 0
	}
	groups := make(map[epochKey][]int)
	var keys []epochKey
	for i, f := range r.Fetches {
		if f.LeaderEpoch < 0 {
			continue
		}
		key := epochKey{tp: TopicPartition{Topic: f.Topic, Partition: f.Partition}, epoch: f.LeaderEpoch}
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], i)
	}
	slices.SortFunc(keys, func(a, b epochKey) int {
		if a.tp != b.tp {
			if a.tp.less(b.tp) {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.epoch, b.epoch)
	})
	var anomalies []Anomaly
	checked := 0
	for _, key := range keys {
		checked += len(groups[key])
		if a, ok := highWatermarkWentBack(ix.h, key, groups[key]); ok {
			anomalies = append(anomalies, a)
		}
	}
	return anomalies, checked
}

// highWatermarkWentBack scans the answers of one partition and epoch:
// requests in the order sent, and beside them the answers in the order
// received, keeping the highest high watermark of those received before
// the current request was sent.
func highWatermarkWentBack(h *History, key epochKey, fetches []int) (Anomaly, bool) {
	all := h.Replication.Fetches
	bySent := slices.Clone(fetches)
	slices.SortStableFunc(bySent, func(a, b int) int { return cmp.Compare(all[a].Sent, all[b].Sent) })
	byReceived := slices.Clone(fetches)
	slices.SortStableFunc(byReceived, func(a, b int) int { return cmp.Compare(all[a].Received, all[b].Received) })
	highest, next := -1, 0
	for _, b := range bySent {
		later := &all[b]
		for next < len(byReceived) && all[byReceived[next]].Received < later.Sent {
			if earlier := byReceived[next]; highest < 0 || all[earlier].HighWatermark > all[highest].HighWatermark {
				highest = earlier
			}
			next++
		}
		if highest < 0 || all[highest].HighWatermark <= later.HighWatermark {
			continue
		}
		earlier := &all[highest]
		if damagedBetween(h, key.tp, later.HighWatermark, earlier.HighWatermark, later.Received) {
			continue
		}
		return Anomaly{
			Kind: AnomalyHighWatermarkWentBack, Partition: key.tp, Offset: later.HighWatermark,
			Explanation: fmt.Sprintf("in leader epoch %d, fetch #%d (client %d) got high watermark %d, answered at time %d, and then fetch #%d (client %d), sent at time %d, got %d: within one leader epoch the high watermark never moves back",
				key.epoch, highest, earlier.Client, earlier.HighWatermark, earlier.Received, b, later.Client, later.Sent, later.HighWatermark),
		}, true
	}
	return Anomaly{}, false
}

// damagedBetween reports whether the simulator damaged, before time at, a
// batch of tp with records in [from, to): records the broker may have lost
// (damage.go), which would take the high watermark back.
func damagedBetween(h *History, tp TopicPartition, from, to, at int64) bool {
	for _, d := range h.Damage {
		if d.Topic == tp.Topic && d.Partition == tp.Partition && d.At <= at && d.FirstOffset < to && d.LastOffset >= from {
			return true
		}
	}
	return false
}
