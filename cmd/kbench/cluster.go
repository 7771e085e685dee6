package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The cluster target is the layout of cmd/broker/examples/cluster: three
// combined broker and controller nodes, each a broker process of its own
// on this machine, and topics with three replicas of which at least two
// must hold an acks=all write (min.insync.replicas=2). It shows what
// replication costs against one broker on the same machine.

// Shape of the cluster target.
const (
	clusterNodes    = 3
	clusterReplicas = 3
	// clusterMinInsyncReplicas is the topics' min.insync.replicas.
	clusterMinInsyncReplicas = "2"
	minInsyncReplicasKey     = "min.insync.replicas"
	// controllerListener names the nodes' quorum listener.
	controllerListener = "CONTROLLER"
)

// clusterReadyTimeout bounds how long a started cluster may take until
// every node is registered and unfenced, and how long a created topic may
// take until every partition has a leader and a full ISR.
const clusterReadyTimeout = 60 * time.Second

// clusterPollInterval is how often those waits ask again.
const clusterPollInterval = 50 * time.Millisecond

// clusterNode is one node's ports.
type clusterNode struct {
	id                     int
	client, controller     string
	metrics, dir, settings string
}

// startCluster starts clusterNodes combined nodes of the broker at path
// (already built) on free ports, each with a fresh data directory and the
// extra server.properties lines, and waits until every node is
// registered and unfenced.
func startCluster(ctx context.Context, path string, extra []string) (*server, error) {
	nodes := make([]clusterNode, clusterNodes)
	var voters []string
	for i := range nodes {
		dir, err := os.MkdirTemp("", fmt.Sprintf("kbench-node-%d-", i+1))
		if err != nil {
			return nil, err
		}
		n := clusterNode{id: i + 1, dir: dir, settings: filepath.Join(dir, "server.properties")}
		for _, addr := range []*string{&n.client, &n.controller, &n.metrics} {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			*addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		nodes[i] = n
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, n.controller))
	}
	var s *server
	for _, n := range nodes {
		if err := os.WriteFile(n.settings, []byte(clusterProperties(n, strings.Join(voters, ","), extra)), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command(path, "--config", n.settings, "--log-level", "warn", "--metrics-listener", n.metrics)
		node, err := launch(fmt.Sprintf("cluster node %d", n.id), n.client, n.dir, cmd)
		if err != nil {
			if s != nil {
				s.stop()
			}
			return nil, err
		}
		node.metricsAddr = n.metrics
		if s == nil {
			s = node
		} else {
			s.peers = append(s.peers, node)
		}
	}
	s.name = "cluster"
	s.replicas = clusterReplicas
	s.topicConfigs = map[string]*string{minInsyncReplicasKey: kadm.StringPtr(clusterMinInsyncReplicas)}
	if err := awaitCluster(ctx, s); err != nil {
		s.stop()
		return nil, fmt.Errorf("cluster did not start: %w", err)
	}
	if err := warmProducerIDs(ctx, s); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// warmProducerIDs asks every node for a producer id until it hands one
// out. In a cluster a broker hands out producer ids from blocks the
// controller allocates (broker/cluster_producer_ids.go); its first
// InitProducerId is refused with a retriable error while it asks for its
// first block, and the client retries with backoff: on a fresh cluster
// that cost the first idempotent producer about 1.7 s, which the first
// case of a run would have counted as produce time. A single broker
// needs no such round.
func warmProducerIDs(ctx context.Context, s *server) (err error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return err
	}
	defer client.Close()
	started := time.Now()
	defer func() {
		if err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "kbench: cluster: every node handed out a producer id %v after the first ask\n", time.Since(started).Round(time.Millisecond))
	}()
	for id := 1; id <= clusterNodes; id++ {
		err := poll(ctx, fmt.Sprintf("node %d hands out a producer id", id), func() (bool, string, error) {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionTimeoutMillis = -1
			resp, err := client.Broker(id).Request(ctx, req)
			if err == nil {
				err = kerr.ErrorForCode(resp.(*kmsg.InitProducerIDResponse).ErrorCode)
			}
			if err != nil {
				return false, err.Error(), nil
			}
			return true, "", nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// clusterProperties is node n's server.properties: those of
// cmd/broker/examples/cluster with this run's ports and directory, plus
// kbench's own lines.
func clusterProperties(n clusterNode, voters string, extra []string) string {
	lines := []string{
		fmt.Sprintf("node.id=%d", n.id),
		"process.roles=broker,controller",
		fmt.Sprintf("listeners=PLAINTEXT://%s,%s://%s", n.client, controllerListener, n.controller),
		"controller.listener.names=" + controllerListener,
		"controller.quorum.voters=" + voters,
		"log.dirs=" + filepath.Join(n.dir, "data"),
		"auto.create.topics.enable=true",
		"group.initial.rebalance.delay.ms=0",
		fmt.Sprintf("default.replication.factor=%d", clusterReplicas),
		fmt.Sprintf("offsets.topic.replication.factor=%d", clusterReplicas),
		minInsyncReplicasKey + "=" + clusterMinInsyncReplicas,
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

// awaitCluster waits until every node of s answers a client and the
// cluster reports all of them registered and unfenced.
func awaitCluster(ctx context.Context, s *server) error {
	for _, n := range s.nodes() {
		if err := waitReady(ctx, n.addr); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return err
	}
	defer client.Close()
	return poll(ctx, "every node registered and unfenced", func() (bool, string, error) {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeFencedBrokers = true
		resp, err := req.RequestWith(ctx, client)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return false, err.Error(), nil
		}
		unfenced := 0
		for _, b := range resp.Brokers {
			if !b.IsFenced {
				unfenced++
			}
		}
		return unfenced == clusterNodes, fmt.Sprintf("%d of %d brokers unfenced", unfenced, clusterNodes), nil
	})
}

// awaitTopicReplicated waits until every partition of topic has a leader
// and an ISR of every replica, so that a measurement starts with the
// topic as it stays, and says how long that took.
func awaitTopicReplicated(ctx context.Context, s *server, topic string, partitions int32) (err error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	started := time.Now()
	defer func() {
		if err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "kbench: %s: every partition led with an ISR of %d, %v after CreateTopics answered\n",
			topic, s.replicas, time.Since(started).Round(time.Millisecond))
	}()
	return poll(ctx, "topic "+topic+" fully replicated", func() (bool, string, error) {
		details, err := admin.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error(), nil
		}
		detail := details[topic]
		if detail.Err != nil {
			return false, detail.Err.Error(), nil
		}
		if int32(len(detail.Partitions)) != partitions {
			return false, fmt.Sprintf("%d of %d partitions", len(detail.Partitions), partitions), nil
		}
		for _, p := range detail.Partitions.Sorted() {
			if p.Leader < 0 || len(p.ISR) != int(s.replicas) {
				return false, fmt.Sprintf("partition %d: leader %d, ISR %v", p.Partition, p.Leader, p.ISR), nil
			}
		}
		return true, "", nil
	})
}

// poll calls check until it holds, fails, or clusterReadyTimeout passes;
// the timeout's error names what was awaited and what was seen last.
func poll(ctx context.Context, what string, check func() (bool, string, error)) error {
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		done, seen, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v (%s)", what, clusterReadyTimeout, seen)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(clusterPollInterval):
		}
	}
}
