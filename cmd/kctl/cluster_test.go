package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/broker/quorum"
)

// TestClusterOutputGolden prints fixed DescribeCluster and DescribeQuorum
// answers and compares the text with testdata/cluster.golden: a healthy
// quorum with an observer and a fenced broker, a DescribeCluster v1 answer
// (which cannot say who is fenced) from a standalone broker, a quorum that
// could not be described (the controller is then unknown, whatever
// DescribeCluster named), and a quorum that has no leader and a voter
// whose log end is unknown.
func TestClusterOutputGolden(t *testing.T) {
	rack := "rack-a"
	broker := func(id int32, port int32, fenced bool) kmsg.DescribeClusterResponseBroker {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.IsFenced = id, "127.0.0.1", port, fenced
		return b
	}
	replica := func(id int32, end int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		return kmsg.DescribeQuorumResponseTopicPartitionReplicaState{ReplicaID: id, LogEndOffset: end}
	}
	healthy := &kmsg.DescribeClusterResponse{Version: 2, ClusterID: "kafkasim", ControllerID: 2,
		Brokers: []kmsg.DescribeClusterResponseBroker{broker(3, 9094, true), broker(1, 9092, false), broker(2, 9093, false), broker(4, 9095, false)}}
	healthy.Brokers[1].Rack = &rack
	standalone := &kmsg.DescribeClusterResponse{Version: 1, ClusterID: "kafkasim", ControllerID: 1,
		Brokers: []kmsg.DescribeClusterResponseBroker{broker(1, 9092, false)}}
	leaderless := &kmsg.DescribeClusterResponse{Version: 2, ClusterID: "kafkasim", ControllerID: -1}
	cases := []struct {
		name  string
		state clusterState
	}{
		{"healthy quorum, broker 3 fenced, observer 4", clusterState{cluster: healthy, quorum: &kmsg.DescribeQuorumResponseTopicPartition{
			LeaderID: 2, LeaderEpoch: 7, HighWatermark: 118,
			CurrentVoters: []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replica(3, 90), replica(2, 120), replica(1, 120)},
			Observers:     []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replica(4, 117)},
		}}},
		{"standalone broker, DescribeCluster v1", clusterState{cluster: standalone,
			quorumNote: "none (the broker runs standalone: it does not offer DescribeQuorum)"}},
		{"quorum unavailable", clusterState{cluster: healthy, quorumNote: "unavailable (the error follows)", quorumFailed: true}},
		{"no leader, unknown log end", clusterState{cluster: leaderless, quorum: &kmsg.DescribeQuorumResponseTopicPartition{
			LeaderID: -1, LeaderEpoch: 8, HighWatermark: -1,
			CurrentVoters: []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replica(1, -1), replica(2, 130)},
		}}},
	}
	var got strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&got, "### %s\n", c.name)
		if err := printCluster(&got, c.state); err != nil {
			t.Fatal(err)
		}
	}
	checkGolden(t, "cluster.golden", got.String())
}

// TestTolerateLeaderless checks that an offset listing whose only failed
// shards are partitions without a leader is kept (their cells print "-"),
// and that any other failure still fails the listing.
func TestTolerateLeaderless(t *testing.T) {
	listed := kadm.ListedOffsets{"t": {0: {Topic: "t", Partition: 0, Offset: 5}}}
	cases := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"no error", nil, false},
		{"leaderless shard only", &kadm.ShardErrors{Errs: []kadm.ShardError{{Err: kerr.LeaderNotAvailable}}}, false},
		{"leaderless and timed out", &kadm.ShardErrors{Errs: []kadm.ShardError{{Err: kerr.LeaderNotAvailable}, {Err: kerr.RequestTimedOut}}}, true},
		{"not a shard error", errors.New("connection reset"), true},
		{"leader unreachable (dead, not fenced yet)", &kadm.ShardErrors{Errs: []kadm.ShardError{{Err: fmt.Errorf("unable to dial: %w",
			&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})}}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tolerateLeaderless(listed, c.err)
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want an error: %v", err, c.wantErr)
			}
			if offsetText(got, "t", 0) != "5" || offsetText(got, "t", 1) != "-" {
				t.Fatalf("cells %q %q, want 5 and -", offsetText(got, "t", 0), offsetText(got, "t", 1))
			}
		})
	}
}

// TestClusterStandalone checks "kctl cluster" against a standalone broker:
// the broker is the whole cluster and its own controller, and the quorum
// line says there is none, with exit status 0.
func TestClusterStandalone(t *testing.T) {
	n := startNode(t, nil)
	r := mustKctl(t, n.addr, "", "cluster")
	rows := fields(r.stdout)
	for _, want := range [][]string{
		{"CLUSTER", "kafkasim"}, {"CONTROLLER", "1"},
		{"1", n.addr, "-", "no"},
		{"QUORUM", "none", "(the", "broker", "runs", "standalone:", "it", "does", "not", "offer", "DescribeQuorum)"},
	} {
		if !containsRow(rows, want) {
			t.Fatalf("kctl cluster lacks row %v:\n%s", want, r.stdout)
		}
	}
}

// freeLoopbackAddrs returns count loopback addresses whose ports were free
// a moment ago: a cluster's controller listeners must be known before any
// node starts, since every node's controller.quorum.voters names them all.
func freeLoopbackAddrs(t *testing.T, count int) []string {
	t.Helper()
	addrs := make([]string, count)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = l.Addr().String()
		defer l.Close()
	}
	return addrs
}

// startCluster starts size combined broker and controller nodes on
// loopback, in this process, each with its own data directory and seed.
func startCluster(t *testing.T, size int) []*runningNode {
	t.Helper()
	addrs := freeLoopbackAddrs(t, 2*size)
	clients, controllers := addrs[:size], addrs[size:]
	var voters []quorum.Voter
	for i, addr := range controllers {
		voters = append(voters, quorum.Voter{ID: int32(i + 1), Address: addr})
	}
	nodes := make([]*runningNode, size)
	for i := range nodes {
		nodes[i] = startNodeAt(t, nodeSetup{dir: t.TempDir(), listener: clients[i], seed: uint64(i + 1),
			configure: func(c *broker.Config) {
				c.NodeID = int32(i + 1)
				c.ProcessRoles = []string{"broker", "controller"}
				c.ControllerListeners = []string{controllers[i]}
				c.QuorumVoters = voters
				c.BrokerSessionTimeoutMs, c.BrokerHeartbeatIntervalMs = 3000, 500
				c.AutoCreateTopics = false
			}})
	}
	return nodes
}

// awaitKctl runs a kctl command line every pollInterval until ready accepts
// its output, and fails the test at the hang guard.
func awaitKctl(t *testing.T, addr string, what string, ready func(r result) bool, args ...string) result {
	t.Helper()
	const pollInterval = 200 * time.Millisecond
	deadline := time.Now().Add(hangGuard)
	for {
		r := kctl(t, addr, "", args...)
		if ready(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within the hang guard; last kctl %s: status %d\n%s%s",
				what, strings.Join(args, " "), r.status, r.stdout, r.stderr)
		}
		time.Sleep(pollInterval)
	}
}

// brokerRow matches a row of kctl cluster's broker table: id, address,
// rack, fenced.
var brokerRow = regexp.MustCompile(`(?m)^(\d+)\s+(\S+:\d+)\s+\S+\s+(yes|no)$`)

// fencedByID reads kctl cluster's broker table.
func fencedByID(stdout string) map[string]string {
	fenced := map[string]string{}
	for _, m := range brokerRow.FindAllStringSubmatch(stdout, -1) {
		fenced[m[1]] = m[3]
	}
	return fenced
}

// TestClusterLive runs three combined nodes in this process and checks
// what kctl shows of them: every broker unfenced, a controller that is the
// quorum leader, three voters caught up; topic describe with a leader, three
// replicas and an ISR per partition, the ISRs growing to all three
// replicas as the followers catch up; then, after one node that is not the
// controller crashes, kctl cluster shows it fenced and topic describe shows
// the partitions it led under surviving ISR members, with it gone from
// every ISR, and still exits 0; last,
// after a second crash leaves no majority, kctl cluster says the
// controller is unknown, names the likely cause and exits 1.
func TestClusterLive(t *testing.T) {
	nodes := startCluster(t, 3)
	seed := nodes[0].addr
	healthy := func(r result) bool {
		f := fencedByID(r.stdout)
		return r.status == exitOK && f["1"] == "no" && f["2"] == "no" && f["3"] == "no" &&
			regexp.MustCompile(`(?m)^QUORUM-LEADER.*\n[123]\s`).MatchString(r.stdout)
	}
	r := awaitKctl(t, seed, "three unfenced brokers and a quorum leader", healthy, "cluster")
	controller := regexp.MustCompile(`(?m)^CONTROLLER\s+(\d+)$`).FindStringSubmatch(r.stdout)
	leader := regexp.MustCompile(`(?m)^QUORUM-LEADER.*\n(\d+)\s`).FindStringSubmatch(r.stdout)
	if controller == nil || leader == nil || controller[1] != leader[1] {
		t.Fatalf("the controller is not the quorum leader:\n%s", r.stdout)
	}
	voters := regexp.MustCompile(`(?m)^[123]\s+(leader|follower)\s+\d+\s+\d+$`).FindAllString(r.stdout, -1)
	if len(voters) != 3 || strings.Count(r.stdout, " leader ") != 1 {
		t.Fatalf("want three voter rows, one of them the leader:\n%s", r.stdout)
	}

	mustKctl(t, seed, "", "topic", "create", "orders", "-p", "6", "-r", "3")
	fullISR := regexp.MustCompile(`(?m)^\d+\s+\d+\s+\d+\s+[\d,]+\s+\d+,\d+,\d+\s`)
	describe := awaitKctl(t, seed, "every ISR holding the three replicas", func(r result) bool {
		return r.status == exitOK && len(fullISR.FindAllString(r.stdout, -1)) == 6
	}, "topic", "describe", "orders")
	leaders := partitionLeaders(t, describe.stdout, 6)

	// Crash a node that is not the controller and leads some partition.
	victim := ""
	for _, id := range []string{"1", "2", "3"} {
		if id != controller[1] && leaders[id] > 0 {
			victim = id
			break
		}
	}
	if victim == "" {
		t.Fatalf("no partition leader besides the controller %s:\n%s", controller[1], describe.stdout)
	}
	nodes[victim[0]-'1'].crash()
	var survivor string
	for i, n := range nodes {
		if fmt.Sprint(i+1) != victim {
			survivor = n.addr
			break
		}
	}
	// Until the controller fences it the metadata still names the dead
	// broker leader: describe shows "-" for offsets nobody can answer for
	// (tolerateLeaderless) and succeeds.
	mustKctl(t, survivor, "", "topic", "describe", "orders")
	awaitKctl(t, survivor, "broker "+victim+" fenced", func(r result) bool {
		return r.status == exitOK && fencedByID(r.stdout)[victim] == "yes"
	}, "cluster")
	inISR := regexp.MustCompile(`(?m)^\d+\s+\S+\s+\d+\s+[\d,]+\s+\S*\b` + victim + `\b`)
	after := awaitKctl(t, survivor, "broker "+victim+"'s partitions led by others and it out of every ISR", func(r result) bool {
		return r.status == exitOK && !regexp.MustCompile(`(?m)^\d+\s+`+victim+`\s`).MatchString(r.stdout) &&
			!inISR.MatchString(r.stdout)
	}, "topic", "describe", "orders")
	if got := partitionLeaders(t, after.stdout, 6)["none"]; got != 0 {
		t.Fatalf("%d partitions without a leader, want every one of broker %s's moved to an ISR member:\n%s", got, victim, after.stdout)
	}

	// With a second node gone no majority is left: no voter leads the
	// quorum, and kctl cluster still prints the brokers, then one error
	// line, and exits 1.
	for i, n := range nodes {
		if fmt.Sprint(i+1) != victim && n.addr != survivor {
			n.crash()
		}
	}
	lost := awaitKctl(t, survivor, "the quorum without a leader", func(r result) bool {
		return r.status == exitFailure && strings.Contains(r.stdout, "CONTROLLER  unknown (no quorum leader answers)")
	}, "cluster", "--timeout", "2s")
	if strings.Count(lost.stderr, "\n") != 1 || !strings.Contains(lost.stderr, "is a majority of the voters running?") ||
		len(fencedByID(lost.stdout)) != 3 {
		t.Fatalf("want three broker rows and one error line:\n%s%s", lost.stdout, lost.stderr)
	}
}

// partitionLeaders parses topic describe's partition table, checks each of
// the partitions rows (three distinct replicas, an ISR within them holding
// the leader) and counts partitions by leader ("none" for no leader).
func partitionLeaders(t *testing.T, stdout string, partitions int) map[string]int {
	t.Helper()
	row := regexp.MustCompile(`(?m)^(\d+)\s+(\d+|none)\s+\d+\s+([\d,]+)\s+([\d,]+|-)\s+(\d+|-)\s+(\d+|-)$`)
	rows := row.FindAllStringSubmatch(stdout, -1)
	if len(rows) != partitions {
		t.Fatalf("%d partition rows, want %d:\n%s", len(rows), partitions, stdout)
	}
	count := map[string]int{}
	for _, m := range rows {
		leader, replicas, isr := m[2], strings.Split(m[3], ","), strings.Split(m[4], ",")
		if m[4] == "-" {
			isr = nil
		}
		if len(replicas) != 3 || replicas[0] == replicas[1] || replicas[1] == replicas[2] || replicas[0] == replicas[2] {
			t.Fatalf("partition %s: replicas %s, want three distinct brokers:\n%s", m[1], m[3], stdout)
		}
		for _, member := range isr {
			if !strings.Contains(","+m[3]+",", ","+member+",") {
				t.Fatalf("partition %s: ISR member %s is not a replica:\n%s", m[1], member, stdout)
			}
		}
		if leader != "none" && !strings.Contains(","+m[4]+",", ","+leader+",") {
			t.Fatalf("partition %s: leader %s is not in the ISR %s:\n%s", m[1], leader, m[4], stdout)
		}
		count[leader]++
	}
	return count
}

// TestListSettled checks that topic describe asks again while a partition
// answers an error that only means its leader has not yet applied a new
// topic, keeps the last answer (the error's name shows in the cell) when
// the context ends first, and returns any request failure at once.
func TestListSettled(t *testing.T) {
	answer := func(p1 error) kadm.ListedOffsets {
		return kadm.ListedOffsets{"t": {
			0: {Topic: "t", Partition: 0, Offset: 3},
			1: {Topic: "t", Partition: 1, Offset: 4, Err: p1},
		}}
	}
	cases := []struct {
		name      string
		answers   []error // partition 1's error in each answer; the last repeats
		request   error
		wantCalls int
		wantCell  string
		wantErr   bool
	}{
		{"settled at once", []error{nil}, nil, 1, "4", false},
		{"settles on the third answer", []error{kerr.UnknownTopicOrPartition, kerr.NotLeaderForPartition, nil}, nil, 3, "4", false},
		{"never settles", []error{kerr.UnknownTopicOrPartition}, nil, -1, "UNKNOWN_TOPIC_OR_PARTITION", false},
		{"another error is not waited for", []error{kerr.OffsetNotAvailable}, nil, 1, "OFFSET_NOT_AVAILABLE", false},
		{"request failure", []error{nil}, errors.New("connection reset"), 1, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*settleInterval)
			defer cancel()
			calls := 0
			list := func(context.Context, ...string) (kadm.ListedOffsets, error) {
				err := c.answers[min(calls, len(c.answers)-1)]
				calls++
				return answer(err), c.request
			}
			got, err := listSettled(ctx, list, "t")
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want an error: %v", err, c.wantErr)
			}
			if c.wantCalls > 0 && calls != c.wantCalls {
				t.Fatalf("%d listings, want %d", calls, c.wantCalls)
			}
			if c.wantCalls < 0 && calls < 2 {
				t.Fatalf("%d listings: it did not ask again", calls)
			}
			if !c.wantErr && offsetText(got, "t", 1) != c.wantCell {
				t.Fatalf("cell %q, want %q", offsetText(got, "t", 1), c.wantCell)
			}
		})
	}
}
