package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaConfig is a sarama configuration speaking the protocol of Kafka
// version, with sarama's own retry behaviour otherwise.
func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = version
	c.ClientID = "sarama-test"
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	return c
}

// TestSaramaClients runs IBM's sarama, an independent Go client, against
// the binary at three protocol generations it negotiates differently
// (message format v2's first version, the version that added zstd, and
// Kafka 4.0): the cluster admin creates, describes and deletes a topic; an
// idempotent producer with acks=all writes keyed records with a header,
// and a producer per codec with acks=1 writes one more each; the offsets
// add up; a consumer group reads every record exactly once, with its key,
// value and header, and commits the end of every partition; the admin then
// lists and describes the group.
func TestSaramaClients(t *testing.T) {
	b := startBroker(t, t.TempDir())
	for _, version := range []sarama.KafkaVersion{sarama.V0_11_0_0, sarama.V2_1_0_0, sarama.V4_0_0_0} {
		t.Run(version.String(), func(t *testing.T) {
			topic := "sarama-" + strings.ReplaceAll(version.String(), ".", "-")
			saramaRoundTrip(t, b.addr, topic, version)
		})
	}
}

func saramaRoundTrip(t *testing.T, addr, topic string, version sarama.KafkaVersion) {
	const partitions, count = 3, 600
	addrs := []string{addr}
	admin, err := sarama.NewClusterAdmin(addrs, saramaConfig(version))
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	described, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(described) != 1 || described[0].Err != sarama.ErrNoError || len(described[0].Partitions) != partitions {
		t.Fatalf("describe topics: %v %+v", err, described)
	}

	want := saramaProduce(t, addrs, topic, version, count)

	client, err := sarama.NewClient(addrs, saramaConfig(version))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// The newest offset is the high watermark, which passes an acks=1
	// write only once the group commit has synced it: ask until the
	// offsets add up or the hang guard passes.
	var ends map[int32]int64
	deadline := time.Now().Add(hangGuard)
	for total := int64(-1); total != int64(len(want)); {
		if time.Now().After(deadline) {
			t.Fatalf("the partitions hold %d records, want %d", total, len(want))
		}
		time.Sleep(10 * time.Millisecond)
		ends, total = map[int32]int64{}, 0
		for p := range int32(partitions) {
			oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("partition %d oldest offset: %v", p, err)
			}
			newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatalf("partition %d newest offset: %v", p, err)
			}
			ends[p] = newest
			total += newest - oldest
		}
	}

	group := "group-" + topic
	got := saramaConsumeGroup(t, addrs, topic, group, version, len(want))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the group read %d records, want %d, or other ones", len(got), len(want))
	}

	committed, err := admin.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatalf("list group offsets: %v", err)
	}
	for p, end := range ends {
		block := committed.GetBlock(topic, p)
		if block == nil || block.Err != sarama.ErrNoError || block.Offset != end {
			t.Errorf("partition %d: committed %+v, want offset %d", p, block, end)
		}
	}
	groups, err := admin.ListConsumerGroups()
	if _, ok := groups[group]; err != nil || !ok {
		t.Errorf("list groups: %v, %v lacks %s", err, groups, group)
	}
	descriptions, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(descriptions) != 1 || descriptions[0].Err != sarama.ErrNoError || descriptions[0].State != "Empty" {
		t.Errorf("describe group: %v %+v, want it Empty", err, descriptions)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		t.Errorf("delete topic: %v", err)
	}
}

// saramaProduce writes count keyed records with a header through an
// idempotent producer (acks=all, the strongest codec the version has),
// then one record through an acks=1 producer per codec, and returns every
// record as "key value header".
func saramaProduce(t *testing.T, addrs []string, topic string, version sarama.KafkaVersion, count int) []string {
	t.Helper()
	config := saramaConfig(version)
	config.Producer.Idempotent = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Net.MaxOpenRequests = 1
	config.Producer.Return.Successes = true
	config.Producer.Compression = sarama.CompressionLZ4
	if version.IsAtLeast(sarama.V2_1_0_0) {
		config.Producer.Compression = sarama.CompressionZSTD
	}
	producer, err := sarama.NewSyncProducer(addrs, config)
	if err != nil {
		t.Fatalf("idempotent producer: %v", err)
	}
	var want []string
	var messages []*sarama.ProducerMessage
	for i := range count {
		key, value := fmt.Sprint(i%17), fmt.Sprintf("value-%d", i)
		messages = append(messages, &sarama.ProducerMessage{
			Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value),
			Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(fmt.Sprint(i))}},
		})
		want = append(want, fmt.Sprintf("%s %s i=%d", key, value, i))
	}
	if err := producer.SendMessages(messages); err != nil {
		t.Fatalf("idempotent send: %v", err)
	}
	if err := producer.Close(); err != nil {
		t.Fatal(err)
	}
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4}
	if version.IsAtLeast(sarama.V2_1_0_0) {
		codecs = append(codecs, sarama.CompressionZSTD)
	}
	for _, codec := range codecs {
		config := saramaConfig(version)
		config.Producer.RequiredAcks = sarama.WaitForLocal
		config.Producer.Return.Successes = true
		config.Producer.Compression = codec
		producer, err := sarama.NewSyncProducer(addrs, config)
		if err != nil {
			t.Fatalf("%s producer: %v", codec, err)
		}
		value := "codec-" + codec.String()
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)}); err != nil {
			t.Fatalf("%s send: %v", codec, err)
		}
		if err := producer.Close(); err != nil {
			t.Fatalf("%s producer close: %v", codec, err)
		}
		want = append(want, " "+value+" ")
	}
	return want
}

// saramaConsumeGroup reads from the beginning of topic in a consumer group
// until it has want records or the hang guard passes, marking each, and
// returns them as saramaProduce does.
func saramaConsumeGroup(t *testing.T, addrs []string, topic, group string, version sarama.KafkaVersion, want int) []string {
	t.Helper()
	config := saramaConfig(version)
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	consumer, err := sarama.NewConsumerGroup(addrs, group, config)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	h := &saramaHandler{want: want, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		var err error
		for ctx.Err() == nil && err == nil {
			err = consumer.Consume(ctx, []string{topic}, h)
		}
		consumed <- err
	}()
	select {
	case <-h.done:
	case err := <-consumed:
		t.Fatalf("the group stopped after %d of %d records: %v", h.len(), want, err)
	case <-ctx.Done():
		t.Fatalf("the group read %d of %d records within the hang guard", h.len(), want)
	}
	cancel()
	<-consumed
	if err := consumer.Close(); err != nil {
		t.Fatalf("closing the group: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.records
}

// saramaHandler collects a group member's records and marks each one, so
// that sarama commits them.
type saramaHandler struct {
	mu      sync.Mutex
	records []string
	want    int
	done    chan struct{}
	once    sync.Once
}

func (h *saramaHandler) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.records)
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		var headers []string
		for _, header := range m.Headers {
			headers = append(headers, string(header.Key)+"="+string(header.Value))
		}
		session.MarkMessage(m, "")
		h.mu.Lock()
		h.records = append(h.records, fmt.Sprintf("%s %s %s", m.Key, m.Value, strings.Join(headers, ",")))
		if len(h.records) >= h.want {
			h.once.Do(func() { close(h.done) })
		}
		h.mu.Unlock()
	}
	return nil
}
