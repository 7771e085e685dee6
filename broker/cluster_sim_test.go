package broker

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/controller"
	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/sim"
)

// simCluster is a cluster of combined broker and controller nodes inside
// the simulator, with a client node that talks to them over the simulated
// network.
type simCluster struct {
	t      testing.TB
	sched  *sim.Scheduler
	nodes  []*simClusterNode
	client *client.Cluster
	admin  *client.Admin
}

type simClusterNode struct {
	c    *simCluster
	id   int32
	host *sim.Node
	cfg  Config
	node *Node
}

func newSimCluster(t testing.TB, seed uint64, size int) *simCluster {
	t.Helper()
	return newSimClusterWithVoters(t, seed, size, size)
}

// newSimClusterWithVoters builds size nodes of which the first voters are
// combined broker and controller nodes and the rest broker-only nodes,
// which follow the metadata log as observers.
func newSimClusterWithVoters(t testing.TB, seed uint64, size, votersCount int) *simCluster {
	t.Helper()
	return newSimClusterOfRoles(t, seed, size, votersCount, false, nil)
}

// newSimClusterOfRoles is newSimClusterWithVoters whose voters, when
// separate is set, are controller-only nodes that serve no client;
// configure, if set, adjusts every node's configuration.
func newSimClusterOfRoles(t testing.TB, seed uint64, size, votersCount int, separate bool, configure func(*Config)) *simCluster {
	t.Helper()
	sc := &simCluster{t: t, sched: sim.NewScheduler(seed)}
	if testing.Verbose() {
		sc.sched.SetTraceWriter(os.Stdout)
	}
	var voters []quorum.Voter
	var bootstrap []string
	for i := 1; i <= size; i++ {
		if i <= votersCount {
			voters = append(voters, quorum.Voter{ID: int32(i), Address: fmt.Sprintf("b%d:9093", i)})
		}
		if i > votersCount || !separate {
			bootstrap = append(bootstrap, fmt.Sprintf("b%d:9092", i))
		}
	}
	for i := 1; i <= size; i++ {
		host := sc.sched.AddNode(fmt.Sprintf("b%d", i), sim.NodeOptions{})
		host.SetDisk(sim.NewDisk(sc.sched.ForkRand(), sim.DiskOptions{}))
		cfg := DefaultConfig()
		cfg.NodeID = int32(i)
		cfg.Listeners = []string{fmt.Sprintf("b%d:9092", i)}
		cfg.QuorumVoters = voters
		cfg.ProcessRoles = []string{roleBroker}
		if i <= votersCount {
			cfg.ControllerListeners = []string{fmt.Sprintf("b%d:9093", i)}
			cfg.ProcessRoles = []string{roleBroker, roleController}
			if separate {
				cfg.ProcessRoles, cfg.Listeners = []string{roleController}, nil
			}
		}
		cfg.GroupInitialRebalanceDelayMs = 0
		if configure != nil {
			configure(&cfg)
		}
		n := &simClusterNode{c: sc, id: int32(i), host: host, cfg: cfg}
		sc.nodes = append(sc.nodes, n)
		n.boot()
	}
	clientHost := sc.sched.AddNode("client", sim.NodeOptions{})
	var err error
	sc.client, err = client.NewCluster(clientHost.Env(), client.ClusterConfig{Bootstrap: bootstrap, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sc.admin = client.NewAdmin(sc.client)
	return sc
}

func (n *simClusterNode) boot() {
	node, err := New(n.host.Env(), n.cfg)
	if err != nil {
		n.c.t.Fatalf("node %d: %v", n.id, err)
	}
	if err := node.Start(); err != nil {
		n.c.t.Fatalf("node %d: start: %v", n.id, err)
	}
	n.node = node
}

func (n *simClusterNode) crash() {
	n.host.Crash()
	n.node = nil
}

func (n *simClusterNode) restart() {
	n.host.Restart()
	n.boot()
}

// activeController returns the node whose controller is active, or nil.
func (sc *simCluster) activeController() *simClusterNode {
	for _, n := range sc.nodes {
		if n.node != nil && n.node.cluster.controller != nil && n.node.cluster.controller.Active() {
			return n
		}
	}
	return nil
}

// runUntil runs the simulation until cond holds, failing after limit.
func (sc *simCluster) runUntil(what string, limit time.Duration, cond func() bool) {
	sc.t.Helper()
	deadline := sc.sched.Now() + limit
	for !cond() {
		if sc.sched.Now() > deadline {
			sc.t.Fatalf("not within %v: %s", limit, what)
		}
		if err := sc.sched.RunFor(50 * time.Millisecond); err != nil {
			sc.t.Fatal(err)
		}
	}
}

// unfenced reports whether every live node sees every live broker
// registered and unfenced.
func (sc *simCluster) unfenced() bool {
	for _, viewer := range sc.nodes {
		if viewer.node == nil {
			continue
		}
		for _, n := range sc.nodes {
			if n.node == nil || !n.cfg.IsBroker() {
				continue
			}
			b, ok := viewer.node.cluster.image.Broker(n.id)
			if !ok || b.Fenced || b.Epoch != n.node.cluster.lifecycle.brokerEpoch {
				return false
			}
		}
	}
	return true
}

// createTopic creates a topic through the client and returns its error
// text, or "".
func (sc *simCluster) createTopic(name string, partitions int32, configs ...map[string]string) string {
	var result string
	done := false
	spec := client.TopicSpec{Topic: name, Partitions: partitions, ReplicationFactor: 1}
	if len(configs) > 0 {
		spec.Configs = configs[0]
	}
	sc.admin.CreateTopics([]client.TopicSpec{spec}, func(errs []client.TopicError, err error) {
		done = true
		switch {
		case err != nil:
			result = err.Error()
		case len(errs) != 1:
			result = fmt.Sprintf("%d answers", len(errs))
		case errs[0].Err != nil:
			result = errs[0].Err.Error()
		}
	})
	sc.runUntil("CreateTopics answered", 30*time.Second, func() bool { return done })
	return result
}

func TestClusterElectsRegistersCreatesAndFailsOver(t *testing.T) {
	sc := newSimCluster(t, 1, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)

	if err := sc.createTopic("orders", 6); err != "" {
		t.Fatalf("create: %s", err)
	}
	// Every node's image has the topic; the six partitions are spread over
	// the three brokers, and each leader holds its partition locally.
	sc.runUntil("every image has the topic", 10*time.Second, func() bool {
		for _, n := range sc.nodes {
			if _, ok := n.node.cluster.image.TopicByName("orders"); !ok {
				return false
			}
		}
		return true
	})
	leaders := map[int32]int{}
	topic, _ := sc.nodes[0].node.cluster.image.TopicByName("orders")
	for i, p := range topic.Partitions {
		leaders[p.Leader]++
		leader := sc.nodes[p.Leader-1].node
		if leader.catalog.partition("orders", int32(i)) == nil {
			t.Fatalf("partition %d: leader %d serves no local replica", i, p.Leader)
		}
		// Any other broker sends the client to the leader.
		other := sc.nodes[p.Leader%3].node
		if other.catalog.partition("orders", int32(i)) != nil || !errors.Is(other.missingPartition("orders", int32(i)), kerr.NotLeaderForPartition) {
			t.Fatalf("partition %d: broker %d, not its leader, serves it or answers %v", i, other.cfg.NodeID, other.missingPartition("orders", int32(i)))
		}
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders spread %v, want all three brokers", leaders)
	}
	sc.produceAndConsume("orders", 60)

	// kill -9 the active controller: another takes over, the topic is
	// still there, and a new topic can be created.
	old := sc.killActiveController()
	for _, n := range sc.nodes {
		if n.node == nil {
			continue
		}
		if _, ok := n.node.cluster.image.TopicByName("orders"); !ok {
			t.Fatalf("node %d lost the topic created before the failover", n.id)
		}
	}
	// The crashed broker is fenced once its session expires, and no
	// partition names it leader any more.
	sc.runUntil("the crashed broker fenced", 30*time.Second, func() bool {
		b, _ := sc.activeController().node.cluster.image.Broker(old.id)
		return b.Fenced
	})
	image := sc.activeController().node.cluster.image
	topic, _ = image.TopicByName("orders")
	for i, p := range topic.Partitions {
		if p.Leader == old.id {
			t.Fatalf("partition %d still led by fenced broker %d", i, old.id)
		}
	}
	// Restarted, it registers again and is unfenced, and the controller
	// elects it again for the partitions it was the last in-sync replica
	// of; the group reads everything, its coordinator reloaded from the
	// offsets log wherever that partition's leader is now.
	old.restart()
	sc.runUntil("the restarted broker unfenced", 40*time.Second, sc.unfenced)
	sc.runUntil("every partition led again", 20*time.Second, func() bool {
		topic, _ := old.node.cluster.image.TopicByName("orders")
		for _, p := range topic.Partitions {
			if p.Leader == metadata.NoLeader {
				return false
			}
		}
		return true
	})
	sc.produceAndConsume("orders", 120)
}

// killActiveController kill -9s the active controller and requires that
// another takes over and that a topic can then be created; it returns the
// killed node.
func (sc *simCluster) killActiveController() *simClusterNode {
	sc.t.Helper()
	old := sc.activeController()
	old.crash()
	sc.runUntil("a new active controller", 20*time.Second, func() bool {
		a := sc.activeController()
		return a != nil && a != old
	})
	if err := sc.createTopicRetrying("after-failover", 1); err != "" {
		sc.t.Fatalf("create after failover: %s", err)
	}
	return old
}

// createTopicRetrying creates a topic as an admin tool would across a
// failure: an attempt may go to a dead node (the client's cached
// controller), so on a broken connection it refreshes its metadata and
// tries again; a retry of an attempt that did land finds the topic there.
func (sc *simCluster) createTopicRetrying(name string, partitions int32) string {
	for attempt := 0; ; attempt++ {
		err := sc.createTopic(name, partitions)
		if err == "" || (attempt > 0 && strings.Contains(err, "TOPIC_ALREADY_EXISTS")) {
			return ""
		}
		if attempt == 5 || !strings.Contains(err, "connection") {
			return err
		}
		refreshed := false
		sc.client.RefreshMetadata(func(error) { refreshed = true })
		sc.runUntil("a metadata refresh", 30*time.Second, func() bool { return refreshed })
	}
}

// produceAndConsume produces count records with acks=all and reads them
// back through a consumer group, whose coordinator lives on the leader of
// a __consumer_offsets partition that the first FindCoordinator asked the
// controller to create.
func (sc *simCluster) produceAndConsume(topic string, count int) {
	sc.t.Helper()
	producer, err := client.NewProducer(sc.client, client.DefaultProducerConfig())
	if err != nil {
		sc.t.Fatal(err)
	}
	acknowledged := 0
	for i := range count {
		producer.Produce(client.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}, func(r client.Result) {
			if r.Err != nil {
				sc.t.Errorf("produce %d: %v", i, r.Err)
			}
			acknowledged++
		})
	}
	sc.runUntil("every record acknowledged", 30*time.Second, func() bool { return acknowledged == count })
	producer.Close()
	cfg := client.DefaultConsumerConfig("readers")
	cfg.AutoOffsetReset = client.ResetEarliest
	consumer, err := client.NewConsumer(sc.client, cfg)
	if err != nil {
		sc.t.Fatal(err)
	}
	if err := consumer.Subscribe([]string{topic}); err != nil {
		sc.t.Fatal(err)
	}
	seen := map[string]bool{}
	var poll func([]client.Record)
	poll = func(records []client.Record) {
		for _, r := range records {
			seen[string(r.Value)] = true
		}
		_ = consumer.Poll(poll)
	}
	if err := consumer.Poll(poll); err != nil {
		sc.t.Fatal(err)
	}
	sc.runUntil("every record consumed through the group", 60*time.Second, func() bool { return len(seen) == count })
	closed := false
	consumer.Close(func() { closed = true })
	sc.runUntil("the consumer closed", 30*time.Second, func() bool { return closed })
}

func TestClusterModeConfigRejections(t *testing.T) {
	voters, _ := quorum.ParseVoters("1@b1:9093,2@b2:9093,3@b3:9093")
	base := DefaultConfig()
	base.QuorumVoters = voters
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		want      string
	}{
		{"no process.roles", func(c *Config) {}, "process.roles is not"},
		{"controller not a voter", func(c *Config) { c.NodeID = 9; c.ProcessRoles = []string{roleBroker, roleController} }, "not in controller.quorum.voters"},
		{"voter without controller role", func(c *Config) { c.ProcessRoles = []string{roleBroker} }, "does not name the controller"},
		{"controller without listener", func(c *Config) { c.ProcessRoles = []string{roleBroker, roleController} }, "controller.listener.names"},
	} {
		cfg := base
		tc.configure(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestControlledShutdownMovesLeadershipsFirst shuts down the active
// controller's node the way SIGTERM does: it may stop only once it leads
// no partition, and the quorum elects a successor at once (the leader
// resigns) rather than after a fetch timeout.
func TestControlledShutdownMovesLeadershipsFirst(t *testing.T) {
	sc := newSimCluster(t, 2, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	if err := sc.createTopic("orders", 6); err != "" {
		t.Fatalf("create: %s", err)
	}
	leaving := sc.activeController()
	stopped := false
	var stopErr error
	leaving.node.Shutdown(func(err error) { stopped, stopErr = true, err })
	sc.runUntil("the controlled shutdown finished", 30*time.Second, func() bool { return stopped })
	if stopErr != nil {
		t.Fatal(stopErr)
	}
	// Its own image, as it stopped, shows it leading nothing: the
	// controller let it go only after committing the moves.
	image := leaving.node.cluster.image
	topic, _ := image.TopicByName("orders")
	for i, p := range topic.Partitions {
		if p.Leader == leaving.id {
			t.Fatalf("partition %d still led by the broker that shut down", i)
		}
	}
	if b, _ := image.Broker(leaving.id); !b.Fenced && !b.InControlledShutdown {
		t.Fatalf("broker %d left neither fenced nor in controlled shutdown: %+v", leaving.id, b)
	}
	leaving.host.Crash()
	leaving.node = nil
	// The resignation lets the others elect well within one fetch
	// timeout (2 s), the wait a crashed leader would cost.
	start := sc.sched.Now()
	sc.runUntil("a successor controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	if took := sc.sched.Now() - start; took >= 2*time.Second {
		t.Fatalf("a successor took %v of virtual time after a resignation", took)
	}
}

// TestBrokerOnlyNodesFollowTheMetadataLog runs three voters and two
// broker-only nodes: the latter follow the metadata log as observers,
// register, are unfenced, lead partitions and serve them.
func TestBrokerOnlyNodesFollowTheMetadataLog(t *testing.T) {
	sc := newSimClusterWithVoters(t, 3, 5, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 30*time.Second, sc.unfenced)
	for _, n := range sc.nodes[3:] {
		if !n.node.cluster.host.IsObserver() {
			t.Fatalf("broker-only node %d is not an observer of the quorum", n.id)
		}
	}
	if err := sc.createTopic("wide", 10); err != "" {
		t.Fatalf("create: %s", err)
	}
	sc.runUntil("every image has the topic", 10*time.Second, func() bool {
		for _, n := range sc.nodes {
			if _, ok := n.node.cluster.image.TopicByName("wide"); !ok {
				return false
			}
		}
		return true
	})
	topic, _ := sc.nodes[4].node.cluster.image.TopicByName("wide")
	led := map[int32]bool{}
	for _, p := range topic.Partitions {
		led[p.Leader] = true
	}
	if !led[4] || !led[5] {
		t.Fatalf("broker-only nodes lead nothing: leaders %v", led)
	}
	sc.produceAndConsume("wide", 40)
}

// TestSeparateControllers runs three controller-only nodes and three
// broker-only nodes: the controllers serve no client and lead no
// partition, the brokers register with the active controller through its
// controller listener, and killing the active controller leaves the
// brokers serving and a new controller taking requests.
func TestSeparateControllers(t *testing.T) {
	sc := newSimClusterOfRoles(t, 4, 6, 3, true, nil)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 30*time.Second, sc.unfenced)
	for _, n := range sc.nodes[:3] {
		if _, registered := n.node.cluster.image.Broker(n.id); registered || len(n.node.Addrs()) != 1 {
			t.Fatalf("controller-only node %d registered as a broker or serves clients: %v", n.id, n.node.Addrs())
		}
	}
	if err := sc.createTopic("events", 6); err != "" {
		t.Fatalf("create: %s", err)
	}
	sc.produceAndConsume("events", 30)
	sc.killActiveController()
}

// TestClusterTopicConfigs: configurations go through the controller. A
// topic created with unclean.leader.election.enable gets its partitions on
// every replica (a setting the brokers did not know once left it with none);
// an unknown setting is refused before anything commits; an
// IncrementalAlterConfigs sent to any broker commits, every broker's
// catalog follows it, and every broker describes the topic's configuration,
// a replica of it or not.
func TestClusterTopicConfigs(t *testing.T) {
	sc := newSimCluster(t, 8, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	if err := sc.createTopic("unclean", 3, map[string]string{"unclean.leader.election.enable": "true"}); err != "" {
		t.Fatalf("create with unclean election: %s", err)
	}
	sc.runUntil("every leader serves its partition", 10*time.Second, func() bool {
		topic, ok := sc.nodes[0].node.cluster.image.TopicByName("unclean")
		if !ok {
			return false
		}
		for i, p := range topic.Partitions {
			if sc.nodes[p.Leader-1].node.catalog.partition("unclean", int32(i)) == nil {
				return false
			}
		}
		return true
	})
	if err := sc.createTopic("bogus", 3, map[string]string{"bogus.setting": "1"}); !strings.Contains(err, "INVALID_CONFIG") {
		t.Fatalf("an unknown setting: %q, want INVALID_CONFIG", err)
	}
	if _, ok := sc.nodes[0].node.cluster.image.TopicByName("bogus"); ok {
		t.Fatal("a topic with an unknown setting was committed")
	}

	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	resource := kmsg.NewIncrementalAlterConfigsRequestResource()
	resource.ResourceType, resource.ResourceName = kmsg.ConfigResourceTypeTopic, "unclean"
	change := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	change.Name, change.Op, change.Value = "compression.type", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("lz4")
	resource.Configs = append(resource.Configs, change)
	alter.Resources = append(alter.Resources, resource)
	var answer *kmsg.IncrementalAlterConfigsResponse
	from := sc.nodes[2].node
	from.cluster.sendToController(alter, 10*time.Second, func(resp kmsg.Response, err error) {
		if err != nil {
			t.Fatalf("alter: %v", err)
		}
		answer = resp.(*kmsg.IncrementalAlterConfigsResponse)
	})
	sc.runUntil("IncrementalAlterConfigs answered", 20*time.Second, func() bool { return answer != nil })
	if code := answer.Resources[0].ErrorCode; code != 0 {
		t.Fatalf("alter: %v", kerr.ErrorForCode(code))
	}
	sc.runUntil("every broker follows the change", 10*time.Second, func() bool {
		for _, n := range sc.nodes {
			overrides, ok := n.node.topicOverrides("unclean")
			if !ok || overrides["compression.type"] != "lz4" {
				return false
			}
			if local := n.node.catalog.topics["unclean"]; local != nil && local.overrides["compression.type"] != "lz4" {
				return false
			}
		}
		return true
	})
}

// TestProducerIDsAreUniqueAcrossBrokers: every broker hands out producer
// ids from blocks the controller committed, so no two brokers, and no
// restarted broker, ever give out the same id; an idempotent producer then
// writes through the cluster.
func TestProducerIDsAreUniqueAcrossBrokers(t *testing.T) {
	sc := newSimCluster(t, 9, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	seen := map[int64]int32{}
	take := func(n *simClusterNode, count int) {
		for range count {
			var id int64
			sc.runUntil("a producer id", 10*time.Second, func() bool {
				var ok bool
				id, ok = n.node.cluster.producerIDs.allocate()
				return ok
			})
			if other, taken := seen[id]; taken {
				t.Fatalf("producer id %d handed out by brokers %d and %d", id, other, n.id)
			}
			seen[id] = n.id
		}
	}
	for _, n := range sc.nodes {
		take(n, 5)
	}
	sc.nodes[1].crash()
	sc.nodes[1].restart()
	sc.runUntil("every broker unfenced", 30*time.Second, sc.unfenced)
	take(sc.nodes[1], 5)
	take(sc.nodes[0], controller.ProducerIDBlockSize)

	if err := sc.createTopic("idempotent", 3); err != "" {
		t.Fatalf("create: %s", err)
	}
	cfg := client.DefaultProducerConfig()
	cfg.Idempotent = true
	producer, err := client.NewProducer(sc.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	acknowledged := 0
	for i := range 30 {
		producer.Produce(client.Record{Topic: "idempotent", Value: []byte(fmt.Sprintf("v%d", i))}, func(r client.Result) {
			if r.Err != nil || r.ProducerID < 0 {
				t.Errorf("produce %d: %v, producer id %d", i, r.Err, r.ProducerID)
			}
			acknowledged++
		})
	}
	sc.runUntil("every idempotent record acknowledged", 30*time.Second, func() bool { return acknowledged == 30 })
}
