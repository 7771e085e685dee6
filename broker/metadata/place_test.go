package metadata

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestPlaceReplicasRefusesImpossibleRequests checks each refusal and its
// Kafka error code, against the base image (3 unfenced brokers and 1 fenced)
// and an image whose only broker is fenced.
func TestPlaceReplicasRefusesImpossibleRequests(t *testing.T) {
	fencedOnly := NewImage()
	if err := fencedOnly.ApplyRecord(0, 1, &RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 1, Fenced: true}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name              string
		image             *Image
		partitions        int
		replicationFactor int
		want              error
	}{
		{"factor above the registered brokers", baseImage(t), 1, 5, kerr.InvalidReplicationFactor},
		{"factor zero", baseImage(t), 1, 0, kerr.InvalidReplicationFactor},
		{"no partitions", baseImage(t), 0, 1, kerr.InvalidPartitions},
		{"every broker fenced", fencedOnly, 1, 1, kerr.BrokerNotAvailable},
		{"no broker at all", NewImage(), 1, 1, kerr.InvalidReplicationFactor},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			placement, err := PlaceReplicas(c.image, c.partitions, c.replicationFactor)
			if !errors.Is(err, c.want) {
				t.Fatalf("PlaceReplicas = %v, %v; want %v", placement, err, c.want)
			}
		})
	}
}

// TestPlaceReplicasExample pins one placement: the base image already holds
// one partition, so the round robin starts at the second unfenced broker,
// and a factor of 4 takes the fenced broker 4 last, never as leader.
func TestPlaceReplicasExample(t *testing.T) {
	cases := []struct {
		replicationFactor int
		want              [][]int32
	}{
		{2, [][]int32{{2, 3}, {3, 1}, {1, 2}}},
		{4, [][]int32{{2, 3, 1, 4}, {3, 1, 2, 4}, {1, 2, 3, 4}}},
	}
	for _, c := range cases {
		placement, err := PlaceReplicas(baseImage(t), 3, c.replicationFactor)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(placement, c.want) {
			t.Errorf("factor %d: placement %v, want %v", c.replicationFactor, placement, c.want)
		}
	}
}

// TestPlaceReplicasSpreadsEvenly places every count of partitions from 1 to
// 12 with factors 1 to 3 over the base image's unfenced brokers and requires
// distinct replicas and per-broker leader and replica counts that differ by
// at most one.
func TestPlaceReplicasSpreadsEvenly(t *testing.T) {
	for partitions := 1; partitions <= 12; partitions++ {
		for factor := 1; factor <= 3; factor++ {
			t.Run(fmt.Sprintf("%dx%d", partitions, factor), func(t *testing.T) {
				placement, err := PlaceReplicas(baseImage(t), partitions, factor)
				if err != nil {
					t.Fatal(err)
				}
				leaders, replicas := map[int32]int{1: 0, 2: 0, 3: 0}, map[int32]int{1: 0, 2: 0, 3: 0}
				for _, assigned := range placement {
					if len(assigned) != factor || len(slices.Compact(slices.Sorted(slices.Values(assigned)))) != factor {
						t.Fatalf("replicas %v are not %d distinct brokers", assigned, factor)
					}
					leaders[assigned[0]]++
					for _, broker := range assigned {
						replicas[broker]++
					}
				}
				requireEven(t, "leaders", leaders)
				requireEven(t, "replicas", replicas)
			})
		}
	}
}

func requireEven(t *testing.T, label string, counts map[int32]int) {
	t.Helper()
	if len(counts) != 3 {
		t.Fatalf("%s placed on brokers outside the unfenced ones: %v", label, counts)
	}
	values := []int{counts[1], counts[2], counts[3]}
	if slices.Max(values)-slices.Min(values) > 1 {
		t.Errorf("%s per broker %v differ by more than one", label, counts)
	}
}
