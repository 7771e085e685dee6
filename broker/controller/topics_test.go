package controller

import (
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopics creates one topic per case on a cluster of three
// unfenced brokers (and, when set, broker 4 registered but fenced) that
// already has "orders", and checks the error, then, for a success, the
// committed topic: partition count, replication factor, a leader that is
// its first replica and alone in the ISR, and the configs.
func TestCreateTopics(t *testing.T) {
	cases := []struct {
		name         string
		request      *kmsg.CreateTopicsRequest
		fencedFourth bool
		want         *kerr.Error
		partitions   int
		factor       int
	}{
		{"defaults for -1", createTopic("new", -1, -1), false, nil, 2, 2},
		{"explicit counts", createTopic("new", 3, 3), false, nil, 3, 3},
		{"a topic config", createTopic("new", 1, 1, "retention.ms", "1000", uncleanConfigName, "true"), false, nil, 1, 1},
		{"the name exists, checked before the replication factor", createTopic("orders", 1, 9), false, kerr.TopicAlreadyExists, 0, 0},
		{"replication factor above the registered brokers", createTopic("new", 1, 5), true, kerr.InvalidReplicationFactor, 0, 0},
		{"a fenced broker counts as registered but never leads", createTopic("new", 4, 4), true, nil, 4, 4},
		{"zero partitions", createTopic("new", 0, 1), false, kerr.InvalidPartitions, 0, 0},
		{"too many partitions", createTopic("new", partitionsPerTopicMax+1, 1), false, kerr.InvalidPartitions, 0, 0},
		{"zero replication factor", createTopic("new", 1, 0), false, kerr.InvalidReplicationFactor, 0, 0},
		{"an illegal name", createTopic("a/b", 1, 1), false, kerr.InvalidTopicException, 0, 0},
		{"an unclean setting that is not a boolean", createTopic("new", 1, 1, uncleanConfigName, "yes"), false, kerr.InvalidConfig, 0, 0},
		{"a config set twice", createTopic("new", 1, 1, "retention.ms", "1", "retention.ms", "2"), false, kerr.InvalidConfig, 0, 0},
		{"a manual assignment", createTopicAssigned("new", []int32{3, 1}), false, nil, 1, 2},
		{"a manual assignment led by its first live replica", createTopicAssigned("new", []int32{4, 2}), true, nil, 1, 2},
		{"a manual assignment on an unknown broker", createTopicAssigned("new", []int32{1, 7}), false, kerr.InvalidReplicaAssignment, 0, 0},
		{"a manual assignment with counts", func() *kmsg.CreateTopicsRequest {
			request := createTopicAssigned("new", []int32{1})
			request.Topics[0].NumPartitions = 1
			return request
		}(), false, kerr.InvalidRequest, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seed := seedOrders([]int32{1}, 1)
			if c.fencedFourth {
				seed = append(seed, &metadata.RegisterBrokerRecord{BrokerID: 4, BrokerEpoch: 4, Fenced: true})
			}
			h := newHarness(t, func(config *Config) { config.DefaultPartitions, config.DefaultReplicationFactor = 2, 2 }, seed...)
			response := h.do(c.request).(*kmsg.CreateTopicsResponse)
			if len(response.Topics) != 1 {
				t.Fatalf("%d topics answered", len(response.Topics))
			}
			answer := response.Topics[0]
			requireCode(t, "create", answer.ErrorCode, c.want)
			name := c.request.Topics[0].Topic
			topic, exists := h.committed.TopicByName(name)
			if c.want != nil {
				if name != "orders" && exists {
					t.Error("a refused topic exists")
				}
				return
			}
			if !exists || topic.ID != answer.TopicID || len(topic.Partitions) != c.partitions || int(answer.NumPartitions) != c.partitions || int(answer.ReplicationFactor) != c.factor {
				t.Fatalf("topic %+v, answer %+v; want %d partitions of factor %d", topic, answer, c.partitions, c.factor)
			}
			for _, partition := range topic.Partitions {
				if len(partition.Replicas) != c.factor || !slices.Equal(partition.ISR, []int32{partition.Leader}) || !h.committed.Live(partition.Leader) {
					t.Errorf("partition %+v: want %d replicas and a live leader alone in the ISR", partition, c.factor)
				}
			}
			for _, config := range c.request.Topics[0].Configs {
				entries := h.committed.Configs(metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: name})
				if !slices.Contains(entries, metadata.ConfigEntry{Name: config.Name, Value: *config.Value}) {
					t.Errorf("config %s not committed: %+v", config.Name, entries)
				}
			}
		})
	}
}

// TestCreateTopicsDecidesAgainstUncommittedProposals sends two CreateTopics
// of the same name before either commits, and one request naming a topic
// twice: the second create must see the first (TOPIC_ALREADY_EXISTS), the
// duplicate names both get INVALID_REQUEST, and a validate-only create
// proposes nothing. Two topics of one request are placed one after the
// other, so their leaders differ.
func TestCreateTopicsDecidesAgainstUncommittedProposals(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(3)
	first, second := h.handle(createTopic("a", 1, 1)), h.handle(createTopic("a", 1, 1))
	if len(first.responses) != 0 || len(second.responses) != 0 {
		t.Fatal("a create was answered before its entry committed")
	}
	h.commit()
	requireCode(t, "first", first.responses[0].(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
	requireCode(t, "second", second.responses[0].(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.TopicAlreadyExists)

	twice := createTopic("b", 1, 1)
	twice.Topics = append(twice.Topics, twice.Topics[0])
	for _, answer := range h.do(twice).(*kmsg.CreateTopicsResponse).Topics {
		requireCode(t, "duplicate", answer.ErrorCode, kerr.InvalidRequest)
	}

	validate := createTopic("c", 1, 1)
	validate.ValidateOnly = true
	before := h.raft.next
	requireCode(t, "validate only", h.do(validate).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
	if _, exists := h.committed.TopicByName("c"); exists || h.raft.next != before {
		t.Error("a validate-only create created the topic")
	}

	pair := createTopic("d", 1, 1)
	pair.Topics = append(pair.Topics, createTopic("e", 1, 1).Topics[0])
	h.do(pair)
	if h.partition("d", 0).Leader == h.partition("e", 0).Leader {
		t.Error("two topics of one request got the same leader on three brokers")
	}
}

// TestCreateTopicsNeedsAnUnfencedBroker: with every broker fenced there is
// no one to lead, which is BROKER_NOT_AVAILABLE.
func TestCreateTopicsNeedsAnUnfencedBroker(t *testing.T) {
	h := newHarness(t, nil)
	h.register(1, 1)
	answer := h.do(createTopic("new", 1, 1)).(*kmsg.CreateTopicsResponse).Topics[0]
	requireCode(t, "create", answer.ErrorCode, kerr.BrokerNotAvailable)
}

func deleteByName(version int16, names ...string) *kmsg.DeleteTopicsRequest {
	request := kmsg.NewPtrDeleteTopicsRequest()
	request.Version = version
	for _, name := range names {
		if version < 6 {
			request.TopicNames = append(request.TopicNames, name)
			continue
		}
		topic := kmsg.NewDeleteTopicsRequestTopic()
		topic.Topic = &name
		request.Topics = append(request.Topics, topic)
	}
	return request
}

func deleteByID(ids ...metadata.TopicID) *kmsg.DeleteTopicsRequest {
	request := kmsg.NewPtrDeleteTopicsRequest()
	request.Version = 6
	for _, id := range ids {
		topic := kmsg.NewDeleteTopicsRequestTopic()
		topic.TopicID = id
		request.Topics = append(request.Topics, topic)
	}
	return request
}

// TestDeleteTopics deletes "orders" (or fails to) in every way a request
// can name it, and checks each answer and whether the topic is gone.
func TestDeleteTopics(t *testing.T) {
	name := "orders"
	cases := []struct {
		name    string
		request *kmsg.DeleteTopicsRequest
		want    []*kerr.Error
		gone    bool
	}{
		{"by name before version 6", deleteByName(5, "orders"), []*kerr.Error{nil}, true},
		{"by name", deleteByName(6, "orders"), []*kerr.Error{nil}, true},
		{"by id", deleteByID(ordersID), []*kerr.Error{nil}, true},
		{"an unknown name", deleteByName(6, "nope"), []*kerr.Error{kerr.UnknownTopicOrPartition}, false},
		{"an unknown id", deleteByID(metadata.TopicID{9}), []*kerr.Error{kerr.UnknownTopicID}, false},
		{"by name and id at once", func() *kmsg.DeleteTopicsRequest {
			request := deleteByID(ordersID)
			request.Topics[0].Topic = &name
			return request
		}(), []*kerr.Error{kerr.InvalidRequest}, false},
		{"named twice", func() *kmsg.DeleteTopicsRequest {
			request := deleteByID(ordersID)
			request.Topics = append(request.Topics, deleteByName(6, "orders").Topics...)
			return request
		}(), []*kerr.Error{nil, kerr.InvalidRequest}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, seedOrders([]int32{1}, 1, "retention.ms", "5")...)
			response := h.do(c.request).(*kmsg.DeleteTopicsResponse)
			if len(response.Topics) != len(c.want) {
				t.Fatalf("%d answers, want %d", len(response.Topics), len(c.want))
			}
			for index, want := range c.want {
				requireCode(t, "delete", response.Topics[index].ErrorCode, want)
			}
			if _, exists := h.committed.TopicByName("orders"); exists == c.gone {
				t.Errorf("orders exists %t, want gone %t", exists, c.gone)
			}
			if c.gone && len(h.committed.Configs(metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: "orders"})) != 0 {
				t.Error("a deleted topic's configs remain")
			}
		})
	}
}

// TestDeletedNameCanBeCreatedAgain deletes and recreates "orders" before
// either entry commits: the create sees the deletion in the working image
// and gets a new topic ID.
func TestDeletedNameCanBeCreatedAgain(t *testing.T) {
	h := newHarness(t, nil, seedOrders([]int32{1}, 1)...)
	deleted, created := h.handle(deleteByName(6, "orders")), h.handle(createTopic("orders", 1, 1))
	h.commit()
	requireCode(t, "delete", deleted.responses[0].(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, nil)
	requireCode(t, "create", created.responses[0].(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
	if topic, _ := h.committed.TopicByName("orders"); topic.ID == ordersID {
		t.Error("the recreated topic kept its old ID")
	}
}

func createPartitions(name string, count int32, assignments ...[]int32) *kmsg.CreatePartitionsRequest {
	request := kmsg.NewPtrCreatePartitionsRequest()
	topic := kmsg.NewCreatePartitionsRequestTopic()
	topic.Topic, topic.Count = name, count
	for _, replicas := range assignments {
		assignment := kmsg.NewCreatePartitionsRequestTopicAssignment()
		assignment.Replicas = replicas
		topic.Assignment = append(topic.Assignment, assignment)
	}
	request.Topics = append(request.Topics, topic)
	return request
}

// TestCreatePartitions grows "orders" (one partition of factor 3) in each
// case and checks the answer and the committed partition count.
func TestCreatePartitions(t *testing.T) {
	cases := []struct {
		name    string
		request *kmsg.CreatePartitionsRequest
		want    *kerr.Error
		count   int
	}{
		{"placed", createPartitions("orders", 3), nil, 3},
		{"assigned", createPartitions("orders", 2, []int32{3, 2, 1}), nil, 2},
		{"not more", createPartitions("orders", 1), kerr.InvalidPartitions, 1},
		{"too many", createPartitions("orders", partitionsPerTopicMax+1), kerr.InvalidPartitions, 1},
		{"an unknown topic", createPartitions("nope", 2), kerr.UnknownTopicOrPartition, 1},
		{"too few assignments", createPartitions("orders", 3, []int32{1, 2, 3}), kerr.InvalidReplicaAssignment, 1},
		{"another replication factor", createPartitions("orders", 2, []int32{1}), kerr.InvalidReplicaAssignment, 1},
		{"validate only", func() *kmsg.CreatePartitionsRequest {
			request := createPartitions("orders", 4)
			request.ValidateOnly = true
			return request
		}(), nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, seedOrders([]int32{1}, 1)...)
			response := h.do(c.request).(*kmsg.CreatePartitionsResponse)
			requireCode(t, "create partitions", response.Topics[0].ErrorCode, c.want)
			if topic, ok := h.committed.TopicByName("orders"); !ok || len(topic.Partitions) != c.count {
				t.Errorf("orders has %d partitions, want %d", len(topic.Partitions), c.count)
			}
		})
	}
}
