package checker

import "testing"

// fetch is a successful fetch answer of t-0 for the tests.
func fetch(client int, epoch int32, highWatermark, sent, received int64) Fetch {
	return Fetch{Client: client, Topic: "t", LeaderEpoch: epoch, HighWatermark: highWatermark, Sent: sent, Received: received}
}

// TestHighWatermarkNeverMovesBackWithinAnEpoch judges the high watermarks
// that consumers' fetches saw: within one (partition, leader epoch), an
// answer received before another request was sent bounds that request's
// high watermark from below. Answers that crossed in flight, other
// epochs, unknown epochs and excused losses are not compared.
func TestHighWatermarkNeverMovesBackWithinAnEpoch(t *testing.T) {
	tests := []struct {
		name    string
		fetches []Fetch
		edit    func(h *History)
		want    []AnomalyKind
		phrase  string
	}{
		{name: "rising in one client", fetches: []Fetch{fetch(1, 1, 1, 10, 20), fetch(1, 1, 2, 21, 30), fetch(1, 1, 3, 31, 40)}},
		{name: "equal is not back", fetches: []Fetch{fetch(1, 1, 2, 10, 20), fetch(2, 1, 2, 21, 30)}},
		{name: "back in one client", fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(1, 1, 2, 21, 30)},
			want:   []AnomalyKind{AnomalyHighWatermarkWentBack},
			phrase: "in leader epoch 1, fetch #0 (client 1) got high watermark 3, answered at time 20, and then fetch #1 (client 1), sent at time 21, got 2"},
		{name: "back across two clients in real time", fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(2, 1, 3, 11, 25), fetch(2, 1, 1, 26, 30)},
			want: []AnomalyKind{AnomalyHighWatermarkWentBack}, phrase: "client 2"},
		{name: "answers crossing in flight", fetches: []Fetch{fetch(1, 1, 3, 10, 30), fetch(2, 1, 2, 15, 35)}},
		{name: "an answer received at the instant the other was sent", fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(2, 1, 2, 20, 30)}},
		{name: "a new epoch may start lower", fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(1, 2, 2, 21, 30)}},
		{name: "back within the later of two epochs", fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(1, 2, 5, 21, 30), fetch(1, 1, 4, 31, 40), fetch(2, 2, 4, 41, 50)},
			want: []AnomalyKind{AnomalyHighWatermarkWentBack}, phrase: "in leader epoch 2"},
		{name: "requests without an epoch are not judged", fetches: []Fetch{fetch(1, -1, 3, 10, 20), fetch(1, -1, 2, 21, 30)}},
		{name: "other partitions are judged apart",
			fetches: []Fetch{fetch(1, 1, 3, 10, 20), {Client: 1, Topic: "t", Partition: 1, LeaderEpoch: 1, HighWatermark: 1, Sent: 21, Received: 30}}},
		{name: "no promise that committed records survive",
			fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(1, 1, 2, 21, 30)},
			edit:    func(h *History) { h.Replication.CommittedSurvives = false }},
		{name: "damage at rest below the old high watermark",
			fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(1, 1, 2, 21, 30)},
			edit: func(h *History) {
				h.Damage = []Damage{{Topic: "t", FirstOffset: 2, LastOffset: 2, Kind: DamageCorruption, At: 25}}
			}},
		{name: "damage made after the lower answer excuses nothing",
			fetches: []Fetch{fetch(1, 1, 3, 10, 20), fetch(1, 1, 2, 21, 30)},
			edit: func(h *History) {
				h.Damage = []Damage{{Topic: "t", FirstOffset: 2, LastOffset: 2, Kind: DamageCorruption, At: 31}}
			},
			want: []AnomalyKind{AnomalyHighWatermarkWentBack}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := replicaHistory(leaderLog)
			h.Replication.Fetches = tt.fetches
			if tt.edit != nil {
				tt.edit(h)
			}
			r := mustCheck(t, h, tt.want...)
			if len(tt.want) > 0 {
				mentions(t, r.Anomalies[0], tt.phrase)
			}
			for _, c := range r.Checks {
				if c.Name == "high-watermark" && h.Replication.CommittedSurvives && c.Checked == 0 && tt.fetches[0].LeaderEpoch >= 0 {
					t.Errorf("the high-watermark check examined nothing")
				}
			}
		})
	}
}
