package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataTopic and metadataPartition name the metadata log that
// DescribeQuorum describes, as KRaft names it.
const (
	metadataTopic     = "__cluster_metadata"
	metadataPartition = 0
)

// describeClusterFencedVersion is the first DescribeCluster version that can
// list fenced brokers and flag them (KIP-1073's IncludeFencedBrokers and
// IsFenced).
const describeClusterFencedVersion = 2

// clusterCommand is "kctl cluster".
var clusterCommand = command{
	name:    "cluster",
	summary: "Show the brokers, the active controller and the metadata quorum.",
	description: "Shows the cluster id and the active controller, every registered broker with its address\n" +
		"and whether it is fenced (DescribeCluster v2, which lists fenced brokers too), and the\n" +
		"metadata quorum as its leader sees it (DescribeQuorum): leader, epoch, high watermark,\n" +
		"and each voter's and observer's log end offset and lag behind the leader. A standalone\n" +
		"broker runs no quorum; then only the brokers and the controller are shown.",
	examples: []string{
		"kctl cluster                      # the cluster behind 127.0.0.1:9092",
		"kctl -b 127.0.0.1:9093 cluster    # ask through another broker",
	},
	flags: clusterFlags,
}

func clusterFlags(fs *flagSet) func(*invocation, []string) error {
	return func(inv *invocation, args []string) error {
		if len(args) > 0 {
			return fs.usageErrorf("cluster takes no arguments (got %q)", args[0])
		}
		return clusterShow(inv)
	}
}

// clusterState is everything "kctl cluster" shows.
type clusterState struct {
	cluster *kmsg.DescribeClusterResponse
	// quorum is the metadata log's partition as the quorum leader
	// describes it, or nil when there is none to show (see quorumNote).
	quorum *kmsg.DescribeQuorumResponseTopicPartition
	// quorumNote says why quorum is nil, for the QUORUM line.
	quorumNote string
	// quorumFailed is set when DescribeQuorum failed (as opposed to not
	// being offered): nobody is known to lead the quorum.
	quorumFailed bool
}

func clusterShow(inv *invocation) error {
	client, err := inv.connect()
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := inv.requestContext()
	defer cancel()
	state, err := loadClusterState(ctx, client)
	if state.cluster == nil {
		return err
	}
	// A quorum that cannot be described (no leader while a majority of
	// voters is down) is part of the picture: the brokers and the
	// controller are still printed, then the error, with exit status 1.
	if printErr := printCluster(inv.stdout, state); printErr != nil {
		return printErr
	}
	return err
}

// loadClusterState asks any broker for the brokers and the controller, and
// the quorum leader (through the controller, as kgo routes admin requests)
// for the quorum. A broker without DescribeQuorum runs no quorum: that is a
// note on the output, not a failure. When only the quorum fails, the state
// still holds the brokers, with the error.
func loadClusterState(ctx context.Context, client *kgo.Client) (clusterState, error) {
	var state clusterState
	describe := kmsg.NewPtrDescribeClusterRequest()
	describe.IncludeFencedBrokers = true
	cluster, err := describe.RequestWith(ctx, client)
	if err != nil {
		return state, requestError("describe cluster", err)
	}
	if err := kerr.ErrorForCode(cluster.ErrorCode); err != nil {
		return state, fmt.Errorf("describe cluster: %s", kafkaError(err, stringOrEmpty(cluster.ErrorMessage)))
	}
	state.cluster = cluster
	state.quorum, state.quorumNote, err = loadQuorum(ctx, client)
	if err != nil {
		state.quorumNote, state.quorumFailed = "unavailable (the error follows)", true
	}
	return state, err
}

// loadQuorum describes the metadata log's partition. It returns a note
// instead of a partition when the broker does not offer DescribeQuorum.
func loadQuorum(ctx context.Context, client *kgo.Client) (*kmsg.DescribeQuorumResponseTopicPartition, string, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	topic := kmsg.NewDescribeQuorumRequestTopic()
	topic.Topic = metadataTopic
	partition := kmsg.NewDescribeQuorumRequestTopicPartition()
	partition.Partition = metadataPartition
	topic.Partitions = append(topic.Partitions, partition)
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		if strings.Contains(err.Error(), brokerTooOld) {
			return nil, "none (the broker runs standalone: it does not offer DescribeQuorum)", nil
		}
		return nil, "", requestError("describe quorum", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, "", quorumError(err, resp.ErrorMessage)
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if t.Topic != metadataTopic || p.Partition != metadataPartition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, "", quorumError(err, p.ErrorMessage)
			}
			return p, "", nil
		}
	}
	return nil, "", fmt.Errorf("describe quorum: the answer does not describe %s-%d", metadataTopic, metadataPartition)
}

// quorumError describes a DescribeQuorum error code, with what
// NOT_LEADER_FOR_PARTITION means here: no voter leads the quorum.
func quorumError(err error, message *string) error {
	text := kafkaError(err, stringOrEmpty(message))
	if errors.Is(err, kerr.NotLeaderForPartition) {
		text += " (no voter leads the metadata quorum: is a majority of the voters running?)"
	}
	return fmt.Errorf("describe quorum: %s", text)
}

func stringOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// printCluster writes the three sections: the cluster and its controller,
// the brokers, and the quorum with one row per voter and observer.
func printCluster(w io.Writer, s clusterState) error {
	header := newTable(w)
	header.row("CLUSTER", s.cluster.ClusterID)
	header.row("CONTROLLER", controllerText(s))
	if err := header.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printBrokers(w, s.cluster); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if s.quorum == nil {
		_, err := fmt.Fprintf(w, "QUORUM  %s\n", s.quorumNote)
		return err
	}
	return printQuorum(w, s.quorum)
}

// controllerText names the active controller. In KRaft it is the quorum
// leader, which DescribeQuorum names; DescribeCluster's controller id is
// only the node a client should send admin requests to (Kafka's brokers
// name any live broker, which forwards them), so it is shown only when
// there is no quorum to ask, as on a standalone broker.
func controllerText(s clusterState) string {
	switch {
	case s.quorum != nil:
		return nodeText(s.quorum.LeaderID)
	case s.quorumFailed:
		return "unknown (no quorum leader answers)"
	}
	return nodeText(s.cluster.ControllerID)
}

// printBrokers lists the brokers by id. Before DescribeCluster v2 a broker
// cannot say whether a broker is fenced (and lists only unfenced ones), so
// the column shows "-".
func printBrokers(w io.Writer, cluster *kmsg.DescribeClusterResponse) error {
	brokers := append([]kmsg.DescribeClusterResponseBroker(nil), cluster.Brokers...)
	sort.Slice(brokers, func(i, j int) bool { return brokers[i].NodeID < brokers[j].NodeID })
	table := newTable(w, "BROKER", "HOST:PORT", "RACK", "FENCED")
	for _, b := range brokers {
		fenced := "-"
		if cluster.GetVersion() >= describeClusterFencedVersion {
			fenced = yesNo(b.IsFenced)
		}
		rack := "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		table.row(b.NodeID, hostPort(b.Host, b.Port), rack, fenced)
	}
	if len(brokers) == 0 {
		table.row("(none)")
	}
	return table.flush()
}

// printQuorum writes the quorum's summary line and one row per replica of
// the metadata log, as kafka-metadata-quorum.sh describe --status and
// --replication do: a replica's lag is how far its log end offset is behind
// the leader's.
func printQuorum(w io.Writer, q *kmsg.DescribeQuorumResponseTopicPartition) error {
	leaderEnd := int64(-1)
	for _, v := range q.CurrentVoters {
		if v.ReplicaID == q.LeaderID {
			leaderEnd = v.LogEndOffset
		}
	}
	maxLag := "-"
	if leaderEnd >= 0 {
		var lag int64
		for _, v := range q.CurrentVoters {
			if v.LogEndOffset >= 0 {
				lag = max(lag, leaderEnd-v.LogEndOffset)
			}
		}
		maxLag = strconv.FormatInt(lag, 10)
	}
	summary := newTable(w, "QUORUM-LEADER", "EPOCH", "HIGH-WATERMARK", "MAX-FOLLOWER-LAG")
	summary.row(nodeText(q.LeaderID), q.LeaderEpoch, offsetOrDash(q.HighWatermark), maxLag)
	if err := summary.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	table := newTable(w, "REPLICA", "STATUS", "LOG-END-OFFSET", "LAG")
	rows := func(replicas []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, voter bool) {
		sorted := append([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState(nil), replicas...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].ReplicaID < sorted[j].ReplicaID })
		for _, r := range sorted {
			status := "observer"
			switch {
			case voter && r.ReplicaID == q.LeaderID:
				status = "leader"
			case voter:
				status = "follower"
			}
			lag := "-"
			if leaderEnd >= 0 && r.LogEndOffset >= 0 {
				lag = strconv.FormatInt(leaderEnd-r.LogEndOffset, 10)
			}
			table.row(r.ReplicaID, status, offsetOrDash(r.LogEndOffset), lag)
		}
	}
	rows(q.CurrentVoters, true)
	rows(q.Observers, false)
	return table.flush()
}

// nodeText is a node id, or "none" for Kafka's -1 (no controller, no
// leader).
func nodeText(id int32) string {
	if id < 0 {
		return "none"
	}
	return strconv.Itoa(int(id))
}

// offsetOrDash is an offset, or "-" for Kafka's -1 (not known).
func offsetOrDash(offset int64) string {
	if offset < 0 {
		return "-"
	}
	return strconv.FormatInt(offset, 10)
}

func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
