package broker

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// conformanceCase is one row of a table in docs/conformance.md: a request
// sent to a fresh broker and the answer it must get. TestConformanceTable
// runs every case; TestConformanceDocMatchesTable checks that the document
// lists exactly these cases with exactly these answers, so the document
// cannot drift from the broker.
type conformanceCase struct {
	// id names the case; the document's row starts with it in backticks.
	id string
	// run sends the case's requests to b and renders the answer.
	run func(t *testing.T, b *simBroker) string
	// want is the answer, as the document prints it.
	want string
}

// codeName renders an error code as Kafka names it, NONE for success.
func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return ke.Message
		}
	}
	return strconv.Itoa(int(code))
}

// createRequest builds a CreateTopics request of a version for one topic.
func createRequest(version int16, name string, partitions int32, factor int16, configs ...string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(version)
	req.TimeoutMillis = 1000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, factor
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// createCode sends one CreateTopics v7 entry and renders its error code.
func createCode(t *testing.T, b *simBroker, name string, partitions int32, factor int16, configs ...string) string {
	resp := b.roundTrip(t, createRequest(7, name, partitions, factor, configs...)).(*kmsg.CreateTopicsResponse)
	return codeName(resp.Topics[0].ErrorCode)
}

// createEntries renders every entry of a CreateTopics response as
// "name:CODE", in response order.
func createEntries(resp *kmsg.CreateTopicsResponse) string {
	var parts []string
	for _, st := range resp.Topics {
		parts = append(parts, st.Topic+":"+codeName(st.ErrorCode))
	}
	return strings.Join(parts, " ")
}

// deleteEntries renders every entry of a DeleteTopics response.
func deleteEntries(resp *kmsg.DeleteTopicsResponse) string {
	var parts []string
	for _, st := range resp.Topics {
		name := "<id>"
		if st.Topic != nil {
			name = *st.Topic
		}
		parts = append(parts, name+":"+codeName(st.ErrorCode))
	}
	return strings.Join(parts, " ")
}

// describeTopic returns DescribeConfigs v4's answer for a topic.
func describeTopic(t *testing.T, b *simBroker, resourceType kmsg.ConfigResourceType, name string) kmsg.DescribeConfigsResponseResource {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.SetVersion(4)
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = resourceType, name
	req.Resources = append(req.Resources, rr)
	return b.roundTrip(t, req).(*kmsg.DescribeConfigsResponse).Resources[0]
}

// topicSetting returns a described setting's value, "<absent>" if missing.
func describedValue(r kmsg.DescribeConfigsResponseResource, name string) string {
	for _, c := range r.Configs {
		if c.Name == name && c.Value != nil {
			return *c.Value
		}
	}
	return "<absent>"
}

// readOnlyFlags renders the distinct ReadOnly flags of a described resource.
func readOnlyFlags(r kmsg.DescribeConfigsResponseResource) string {
	var flags []string
	for _, c := range r.Configs {
		if f := strconv.FormatBool(c.ReadOnly); !slices.Contains(flags, f) {
			flags = append(flags, f)
		}
	}
	return "readOnly=" + strings.Join(flags, ",")
}

// alterOp is one operation of an IncrementalAlterConfigs resource.
type alterOp struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

func set(name, value string) alterOp { return alterOp{name, kmsg.IncrementalAlterConfigOpSet, &value} }

// alter sends IncrementalAlterConfigs v1 for resources of one type, each
// a name and its operations, and renders each resource's error code.
func alter(t *testing.T, b *simBroker, validateOnly bool, resourceType kmsg.ConfigResourceType, resources map[string][]alterOp, order ...string) string {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.SetVersion(1)
	req.ValidateOnly = validateOnly
	for _, name := range order {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = resourceType, name
		for _, op := range resources[name] {
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Op, c.Value = op.name, op.op, op.value
			rr.Configs = append(rr.Configs, c)
		}
		req.Resources = append(req.Resources, rr)
	}
	resp := b.roundTrip(t, req).(*kmsg.IncrementalAlterConfigsResponse)
	var codes []string
	for _, r := range resp.Resources {
		codes = append(codes, codeName(r.ErrorCode))
	}
	return strings.Join(codes, " ")
}

// alterTopic alters one topic and renders its error code.
func alterTopic(t *testing.T, b *simBroker, name string, ops ...alterOp) string {
	return alter(t, b, false, kmsg.ConfigResourceTypeTopic, map[string][]alterOp{name: ops}, name)
}

// conformanceBase is the timestamp the ListOffsets cases count from.
const conformanceBase = 1_700_000_000_000

// listOffsetsAnswer produces two batches with out-of-order timestamps and
// renders ListOffsets v6's answer for base+target.
func listOffsetsAnswer(t *testing.T, b *simBroker, target int64) string {
	createTopic(t, b, "times", 1)
	produceTimestamps(t, b, "times", record.CodecZstd, conformanceBase+100, conformanceBase+300, conformanceBase+200)
	produceTimestamps(t, b, "times", record.CodecGzip, conformanceBase+400, conformanceBase+350, conformanceBase+500)
	got := listOffsetAt(t, b, "times", conformanceBase+target)
	stamp := "-1"
	if got.Timestamp >= 0 {
		stamp = fmt.Sprintf("base+%d", got.Timestamp-conformanceBase)
	}
	return fmt.Sprintf("%s offset=%d timestamp=%s epoch=%d", codeName(got.ErrorCode), got.Offset, stamp, got.LeaderEpoch)
}

// conformanceCases are the rows of docs/conformance.md. Each comment cites
// where Kafka decides the answer (apache/kafka at 1eb7644349c).
// produceAnswer sends one produce of a one-record batch to "t" (created
// first unless topic names another), after edit changes the request, and
// renders its error code and log start offset.
func produceAnswer(t *testing.T, b *simBroker, version int16, topic string, edit func(*kmsg.ProduceRequest)) string {
	t.Helper()
	createTopic(t, b, "t", 1)
	req := produceRequest(t, topic, 0, -1, record.NewBatchSpec(record.CodecNone), "v")
	req.SetVersion(version)
	if edit != nil {
		edit(req)
	}
	resp := b.roundTrip(t, req).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	return codeName(p.ErrorCode) + " log_start=" + strconv.FormatInt(p.LogStartOffset, 10)
}

var conformanceCases = []conformanceCase{
	// ProduceRequest.validateRecords (called by KafkaApis.handleProduceRequest):
	// v3+ requests carry only magic 2 batches; refused before the log, so
	// the log start offset is -1 (UNKNOWN_LOG_APPEND_INFO).
	{"produce-magic-1-v9", func(t *testing.T, b *simBroker) string {
		return produceAnswer(t, b, 9, "t", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Records[16] = 1 })
	}, "INVALID_RECORD log_start=-1"},
	// A v0-2 request carries the legacy format by definition; Kafka would
	// convert it, this broker does not.
	{"produce-magic-1-v2", func(t *testing.T, b *simBroker) string {
		return produceAnswer(t, b, 2, "t", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Records[16] = 1 })
	}, "UNSUPPORTED_FOR_MESSAGE_FORMAT log_start=-1"},
	// LogValidator.validateBatch: "Invalid reported count for record
	// batch"; a LogValidator error answers the real log start
	// (ReplicaManager.processFailedRecord).
	{"produce-zero-records", func(t *testing.T, b *simBroker) string {
		return produceAnswer(t, b, 9, "t", func(r *kmsg.ProduceRequest) {
			batch := r.Topics[0].Partitions[0].Records
			binary.BigEndian.PutUint32(batch[57:], 0) // the record count
			binary.BigEndian.PutUint32(batch[17:], record.ComputeCRC(batch))
		})
	}, "INVALID_RECORD log_start=0"},
	// ReplicaManager.appendToLocalLog: UNKNOWN_TOPIC_OR_PARTITION uses
	// UNKNOWN_LOG_APPEND_INFO, log start -1.
	{"produce-unknown-partition", func(t *testing.T, b *simBroker) string {
		b.cfg.AutoCreateTopics = false
		return produceAnswer(t, b, 9, "t", func(r *kmsg.ProduceRequest) { r.Topics[0].Partitions[0].Partition = 7 })
	}, "UNKNOWN_TOPIC_OR_PARTITION log_start=-1"},

	// ReplicationControlManager.createTopics: existing topics are marked
	// TOPIC_ALREADY_EXISTS before any other check of the entry.
	{"create-exists-before-replication-factor", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "taken", 1)
		return createCode(t, b, "taken", 1, 3)
	}, "TOPIC_ALREADY_EXISTS"},
	// ReplicationControlManager.createTopics: validateNewTopicNames runs
	// first.
	{"create-name-first", func(t *testing.T, b *simBroker) string {
		return createCode(t, b, "bad name", 0, 3)
	}, "INVALID_TOPIC_EXCEPTION"},
	// ReplicationControlManager.createTopics: computeConfigChanges and the
	// config validation run before createTopic checks the replication
	// factor.
	{"create-config-before-replication-factor", func(t *testing.T, b *simBroker) string {
		return createCode(t, b, "fresh", 1, 3, "retention.ms", "soon")
	}, "INVALID_CONFIG"},
	// ReplicationControlManager.createTopic: a replication factor below -1
	// or 0 fails before the partition count is looked at.
	{"create-replication-factor-zero-before-partitions", func(t *testing.T, b *simBroker) string {
		return createCode(t, b, "fresh", 0, 0)
	}, "INVALID_REPLICATION_FACTOR"},
	{"create-partitions-zero", func(t *testing.T, b *simBroker) string {
		return createCode(t, b, "fresh", 0, 1)
	}, "INVALID_PARTITIONS"},
	// ReplicationControlManager.createTopic: the replica placer cannot place
	// more replicas than brokers.
	{"create-replication-factor-above-brokers", func(t *testing.T, b *simBroker) string {
		return createCode(t, b, "fresh", 1, 3)
	}, "INVALID_REPLICATION_FACTOR"},
	// ReplicationControlManager.createTopic: a manual assignment requires
	// partitions and replication factor -1.
	{"create-assignment-with-replication-factor", func(t *testing.T, b *simBroker) string {
		req := createRequest(7, "fresh", -1, 1)
		req.Topics[0].ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{b.cfg.NodeID}}}
		return codeName(b.roundTrip(t, req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
	}, "INVALID_REQUEST"},
	{"create-assignment-other-broker", func(t *testing.T, b *simBroker) string {
		req := createRequest(7, "fresh", -1, -1)
		req.Topics[0].ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{b.cfg.NodeID + 1}}}
		return codeName(b.roundTrip(t, req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
	}, "INVALID_REPLICA_ASSIGNMENT"},
	// ControllerApis.createTopics: a duplicated name is removed from the
	// request and answered once with INVALID_REQUEST after the others.
	{"create-duplicate-name", func(t *testing.T, b *simBroker) string {
		req := createRequest(7, "twice", 1, 1)
		other := createRequest(7, "once", 1, 1)
		req.Topics = append(req.Topics, other.Topics[0], req.Topics[0])
		return createEntries(b.roundTrip(t, req).(*kmsg.CreateTopicsResponse))
	}, "once:NONE twice:INVALID_REQUEST"},
	// ReplicationControlManager.createTopic fills partitions, replication
	// factor and configs whether or not validateOnly is set (KIP-525).
	{"create-validate-only-fills-result", func(t *testing.T, b *simBroker) string {
		req := createRequest(5, "dry", -1, -1, "compression.type", "gzip")
		req.ValidateOnly = true
		st := b.roundTrip(t, req).(*kmsg.CreateTopicsResponse).Topics[0]
		compression := "<absent>"
		for _, c := range st.Configs {
			if c.Name == "compression.type" && c.Value != nil {
				compression = *c.Value
			}
		}
		if b.node.catalog.topics["dry"] != nil {
			t.Error("validateOnly created the topic")
		}
		return fmt.Sprintf("%s partitions=%d replicationFactor=%d compression.type=%s",
			codeName(st.ErrorCode), st.NumPartitions, st.ReplicationFactor, compression)
	}, "NONE partitions=1 replicationFactor=1 compression.type=gzip"},
	// LogConfig: compression.type takes producer, uncompressed, gzip,
	// snappy, lz4 or zstd.
	{"create-compression-type", func(t *testing.T, b *simBroker) string {
		var codes []string
		for _, v := range []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"} {
			codes = append(codes, createCode(t, b, "c-"+v, 1, 1, "compression.type", v))
		}
		return strings.Join(slices.Compact(codes), " ")
	}, "NONE"},
	{"create-compression-type-unknown", func(t *testing.T, b *simBroker) string {
		return createCode(t, b, "fresh", 1, 1, "compression.type", "brotli")
	}, "INVALID_CONFIG"},
	// Kafka accepts compact; this broker has no compaction yet and says so.
	{"create-cleanup-policy-compact", func(t *testing.T, b *simBroker) string {
		st := b.roundTrip(t, createRequest(7, "fresh", 1, 1, "cleanup.policy", "compact")).(*kmsg.CreateTopicsResponse).Topics[0]
		if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "not implemented yet") {
			t.Errorf("message %v does not say compaction is not implemented yet", st.ErrorMessage)
		}
		return codeName(st.ErrorCode)
	}, "INVALID_CONFIG"},
	// ControllerApis.deleteTopics: each duplicated name is answered once
	// with INVALID_REQUEST, before the others.
	{"delete-duplicate-name", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "kept", 1)
		createTopic(t, b, "gone", 1)
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(5)
		req.TopicNames = []string{"kept", "gone", "kept"}
		answer := deleteEntries(b.roundTrip(t, req).(*kmsg.DeleteTopicsResponse))
		if b.node.catalog.topics["kept"] == nil {
			t.Error("a duplicated name was deleted")
		}
		return answer
	}, "kept:INVALID_REQUEST gone:NONE"},
	{"delete-unknown-name", func(t *testing.T, b *simBroker) string {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(5)
		req.TopicNames = []string{"never"}
		return deleteEntries(b.roundTrip(t, req).(*kmsg.DeleteTopicsResponse))
	}, "never:UNKNOWN_TOPIC_OR_PARTITION"},
	{"delete-unknown-id", func(t *testing.T, b *simBroker) string {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(6)
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = [16]byte{1, 2, 3}
		req.Topics = append(req.Topics, rt)
		return deleteEntries(b.roundTrip(t, req).(*kmsg.DeleteTopicsResponse))
	}, "<id>:UNKNOWN_TOPIC_ID"},
	// ControllerApis.deleteTopics: a name and an id together, or neither,
	// is INVALID_REQUEST.
	{"delete-name-and-id", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "both", 1)
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(6)
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic, rt.TopicID = kmsg.StringPtr("both"), b.node.catalog.topics["both"].id
		none := kmsg.NewDeleteTopicsRequestTopic()
		req.Topics = append(req.Topics, rt, none)
		return deleteEntries(b.roundTrip(t, req).(*kmsg.DeleteTopicsResponse))
	}, "both:INVALID_REQUEST <id>:INVALID_REQUEST"},
	// ConfigHelper.createTopicConfigEntry sets readOnly false for every
	// topic config; compression.type is one of them (default producer).
	{"describe-topic-configs-writable", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "described", 1)
		r := describeTopic(t, b, kmsg.ConfigResourceTypeTopic, "described")
		return fmt.Sprintf("%s %s compression.type=%s", codeName(r.ErrorCode), readOnlyFlags(r), describedValue(r, "compression.type"))
	}, "NONE readOnly=false compression.type=producer"},
	// ConfigHelper.createBrokerConfigEntry: a broker config is read-only
	// unless it is dynamic; none is dynamic here.
	{"describe-broker-configs-read-only", func(t *testing.T, b *simBroker) string {
		r := describeTopic(t, b, kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(b.cfg.NodeID)))
		return codeName(r.ErrorCode) + " " + readOnlyFlags(r)
	}, "NONE readOnly=true"},
	{"describe-unknown-topic", func(t *testing.T, b *simBroker) string {
		return codeName(describeTopic(t, b, kmsg.ConfigResourceTypeTopic, "never").ErrorCode)
	}, "UNKNOWN_TOPIC_OR_PARTITION"},
	// ConfigurationControlManager.incrementalAlterConfigResource: SET
	// replaces a value; DELETE returns it to the default. The change is
	// durable: it survives a power loss.
	{"alter-set-and-delete", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		first := alterTopic(t, b, "altered", set("compression.type", "lz4"), set("max.message.bytes", "2048"))
		b.crash(t)
		afterCrash := describeTopic(t, b, kmsg.ConfigResourceTypeTopic, "altered")
		second := alterTopic(t, b, "altered", alterOp{"compression.type", kmsg.IncrementalAlterConfigOpDelete, nil})
		afterDelete := describeTopic(t, b, kmsg.ConfigResourceTypeTopic, "altered")
		return fmt.Sprintf("%s compression.type=%s max.message.bytes=%s; %s compression.type=%s", first,
			describedValue(afterCrash, "compression.type"), describedValue(afterCrash, "max.message.bytes"),
			second, describedValue(afterDelete, "compression.type"))
	}, "NONE compression.type=lz4 max.message.bytes=2048; NONE compression.type=producer"},
	{"alter-validate-only", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		code := alter(t, b, true, kmsg.ConfigResourceTypeTopic, map[string][]alterOp{"altered": {set("compression.type", "zstd")}}, "altered")
		return code + " compression.type=" + describedValue(describeTopic(t, b, kmsg.ConfigResourceTypeTopic, "altered"), "compression.type")
	}, "NONE compression.type=producer"},
	// ConfigurationControlManager.validateAlterConfig: values are validated
	// as at creation (ConfigException is INVALID_CONFIG).
	{"alter-bad-value", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", set("compression.type", "brotli"))
	}, "INVALID_CONFIG"},
	{"alter-unknown-config", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", set("no.such.config", "1"))
	}, "INVALID_CONFIG"},
	{"alter-cleanup-policy-compact", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", alterOp{"cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact")})
	}, "INVALID_CONFIG"},
	// ConfigurationControlManager.incrementalAlterConfigResource: APPEND and
	// SUBTRACT need a LIST setting.
	{"alter-append-to-non-list", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", alterOp{"max.message.bytes", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("1")})
	}, "INVALID_CONFIG"},
	// ConfigAdminManager.preprocess: duplicate keys, a null value for SET,
	// and a resource named twice are INVALID_REQUEST.
	{"alter-duplicate-key", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", set("compression.type", "lz4"), set("compression.type", "gzip"))
	}, "INVALID_REQUEST"},
	{"alter-null-value", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", alterOp{"compression.type", kmsg.IncrementalAlterConfigOpSet, nil})
	}, "INVALID_REQUEST"},
	{"alter-resource-twice", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		ops := map[string][]alterOp{"altered": {set("compression.type", "lz4")}}
		return alter(t, b, false, kmsg.ConfigResourceTypeTopic, ops, "altered", "altered")
	}, "INVALID_REQUEST INVALID_REQUEST"},
	// ConfigurationControlManager.validateAlterConfig: the existence check
	// of the topic comes after validation.
	{"alter-unknown-topic", func(t *testing.T, b *simBroker) string {
		return alterTopic(t, b, "never", set("compression.type", "lz4"))
	}, "UNKNOWN_TOPIC_OR_PARTITION"},
	// Known gap: Kafka changes these at once; here the partition logs read
	// them only when they open.
	{"alter-storage-setting", func(t *testing.T, b *simBroker) string {
		createTopic(t, b, "altered", 1)
		return alterTopic(t, b, "altered", set("retention.ms", "1000"))
	}, "INVALID_CONFIG"},
	{"alter-broker", func(t *testing.T, b *simBroker) string {
		ops := map[string][]alterOp{"": {set("log.retention.ms", "1000")}}
		return alter(t, b, false, kmsg.ConfigResourceTypeBroker, ops, "")
	}, "INVALID_REQUEST"},
	// LogSegment.findOffsetByTimestamp: the first record at or after the
	// target in the first batch whose max timestamp qualifies, with the
	// record's timestamp and the batch's leader epoch (KIP-79).
	{"list-offsets-record-inside-batch", func(t *testing.T, b *simBroker) string {
		return listOffsetsAnswer(t, b, 150)
	}, "NONE offset=1 timestamp=base+300 epoch=0"},
	{"list-offsets-record-not-first-of-batch", func(t *testing.T, b *simBroker) string {
		return listOffsetsAnswer(t, b, 450)
	}, "NONE offset=5 timestamp=base+500 epoch=0"},
	// UnifiedLog.fetchOffsetByTimestamp: no record qualifies gives an
	// unknown TimestampAndOffset, leader epoch -1 included.
	{"list-offsets-none-qualifies", func(t *testing.T, b *simBroker) string {
		return listOffsetsAnswer(t, b, 501)
	}, "NONE offset=-1 timestamp=-1 epoch=-1"},
}

// TestConformanceTable runs every case of docs/conformance.md against a
// fresh simulated broker.
func TestConformanceTable(t *testing.T) {
	for i, c := range conformanceCases {
		t.Run(c.id, func(t *testing.T) {
			b := newSimBroker(t, uint64(100+i), nil)
			if got := c.run(t, b); got != c.want {
				t.Fatalf("answer %q, want %q", got, c.want)
			}
		})
	}
}

// conformanceDoc is the document the table must match.
const conformanceDoc = "../docs/conformance.md"

var (
	docRow     = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|.*\\| `([^`]*)` \\|$")
	docHeading = regexp.MustCompile(`^## [A-Za-z]+ \(key (\d+)\), versions (\d+)-(\d+)$`)
)

// TestConformanceDocMatchesTable checks docs/conformance.md against the
// code: every case row names a case of conformanceCases with its answer
// (and every case has a row), and every API heading gives the versions the
// broker advertises in ApiVersions (and every API has a heading).
func TestConformanceDocMatchesTable(t *testing.T) {
	data, err := os.ReadFile(conformanceDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[string]string)
	var keys []int16
	for line := range strings.SplitSeq(string(data), "\n") {
		if m := docRow.FindStringSubmatch(line); m != nil {
			rows[m[1]] = m[2]
		}
		if m := docHeading.FindStringSubmatch(line); m != nil {
			key, _ := strconv.Atoi(m[1])
			low, _ := strconv.Atoi(m[2])
			high, _ := strconv.Atoi(m[3])
			keys = append(keys, int16(key))
			if v, ok := supportedVersions(int16(key)); !ok || v.min != int16(low) || v.max != int16(high) {
				t.Errorf("%s: %q, but the broker advertises %v (supported %v)", conformanceDoc, m[0], v, ok)
			}
		}
	}
	for _, c := range conformanceCases {
		answer, ok := rows[c.id]
		switch {
		case !ok:
			t.Errorf("%s has no row for case %s", conformanceDoc, c.id)
		case answer != c.want:
			t.Errorf("%s: case %s answers %q, the test wants %q", conformanceDoc, c.id, answer, c.want)
		}
		delete(rows, c.id)
	}
	for id := range rows { // order-independent: each is reported
		t.Errorf("%s has a row %s that no test runs", conformanceDoc, id)
	}
	for _, k := range apiVersionsKeys() {
		if !slices.Contains(keys, k.ApiKey) {
			t.Errorf("%s has no section for API key %d", conformanceDoc, k.ApiKey)
		}
	}
}
