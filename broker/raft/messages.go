package raft

import (
	"errors"
	"fmt"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataTopic is the name of KRaft's single-partition metadata topic; every
// quorum RPC names it, as Kafka's do.
const MetadataTopic = "__cluster_metadata"

// metadataPartition is the metadata topic's only partition.
const metadataPartition int32 = 0

// Versions of the quorum RPCs the node builds. Each is the first version that
// carries every field the node uses, so that a later wire codec can encode
// them with kmsg unchanged: Vote v2 has PreVote (KIP-996); Fetch v12 has
// LastFetchedEpoch, DivergingEpoch and SnapshotId and still names topics;
// FetchSnapshot v0 is KIP-630's, which Kafka 3.x speaks until 3.9's v1 adds
// endpoints; the others are KIP-595's first versions.
const (
	voteVersion             int16 = 2
	beginQuorumEpochVersion int16 = 0
	endQuorumEpochVersion   int16 = 0
	fetchVersion            int16 = 12
	describeQuorumVersion   int16 = 0
	fetchSnapshotVersion    int16 = 0
)

// Body is a kmsg request or response: one of *kmsg.VoteRequest,
// *kmsg.VoteResponse, *kmsg.BeginQuorumEpochRequest,
// *kmsg.BeginQuorumEpochResponse, *kmsg.EndQuorumEpochRequest,
// *kmsg.EndQuorumEpochResponse, *kmsg.FetchRequest, *kmsg.FetchResponse,
// *kmsg.FetchSnapshotRequest, *kmsg.FetchSnapshotResponse,
// *kmsg.DescribeQuorumRequest or *kmsg.DescribeQuorumResponse.
type Body interface {
	Key() int16
	GetVersion() int16
	AppendTo([]byte) []byte
}

// Message is one quorum RPC between two nodes. CorrelationID plays the role
// of the Kafka request header's field: a response carries its request's, and
// a node ignores a response to a request it no longer waits for (a network
// that duplicates or reorders must not replay an old Fetch answer). Like
// Kafka's, correlation ids are per connection: they restart with the node,
// so the transport must never hand a restarted node an answer meant for its
// previous life (over TCP the old connection is gone).
type Message struct {
	From          int32
	To            int32
	CorrelationID int32
	Body          Body
}

// String describes the message for traces and test failures.
func (m Message) String() string {
	return fmt.Sprintf("%d->%d #%d %s", m.From, m.To, m.CorrelationID, kmsg.NameForKey(m.Body.Key()))
}

// errNoMetadataPartition is returned for a quorum RPC that does not name the
// metadata partition: it is malformed, and answering it could only mislead.
var errNoMetadataPartition = errors.New("raft: message does not name partition 0 of " + MetadataTopic)

func newVoteRequest(clusterID string, voterID int32, p kmsg.VoteRequestTopicPartition) *kmsg.VoteRequest {
	p.Partition = metadataPartition
	return &kmsg.VoteRequest{
		Version:   voteVersion,
		ClusterID: kmsg.StringPtr(clusterID),
		VoterID:   voterID,
		Topics:    []kmsg.VoteRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.VoteRequestTopicPartition{p}}},
	}
}

func newVoteResponse(p kmsg.VoteResponseTopicPartition) *kmsg.VoteResponse {
	p.Partition = metadataPartition
	return &kmsg.VoteResponse{
		Version: voteVersion,
		Topics:  []kmsg.VoteResponseTopic{{Topic: MetadataTopic, Partitions: []kmsg.VoteResponseTopicPartition{p}}},
	}
}

func newBeginQuorumEpochRequest(clusterID string, leaderID, epoch int32) *kmsg.BeginQuorumEpochRequest {
	p := kmsg.BeginQuorumEpochRequestTopicPartition{Partition: metadataPartition, LeaderID: leaderID, LeaderEpoch: epoch}
	return &kmsg.BeginQuorumEpochRequest{
		Version:   beginQuorumEpochVersion,
		ClusterID: kmsg.StringPtr(clusterID),
		VoterID:   NoNode,
		Topics:    []kmsg.BeginQuorumEpochRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.BeginQuorumEpochRequestTopicPartition{p}}},
	}
}

func newBeginQuorumEpochResponse(errorCode int16, leaderID, epoch int32) *kmsg.BeginQuorumEpochResponse {
	p := kmsg.BeginQuorumEpochResponseTopicPartition{Partition: metadataPartition, ErrorCode: errorCode, LeaderID: leaderID, LeaderEpoch: epoch}
	return &kmsg.BeginQuorumEpochResponse{
		Version: beginQuorumEpochVersion,
		Topics:  []kmsg.BeginQuorumEpochResponseTopic{{Topic: MetadataTopic, Partitions: []kmsg.BeginQuorumEpochResponseTopicPartition{p}}},
	}
}

func newEndQuorumEpochRequest(clusterID string, leaderID, epoch int32, successors []int32) *kmsg.EndQuorumEpochRequest {
	p := kmsg.EndQuorumEpochRequestTopicPartition{Partition: metadataPartition, LeaderID: leaderID, LeaderEpoch: epoch, PreferredSuccessors: successors}
	return &kmsg.EndQuorumEpochRequest{
		Version:   endQuorumEpochVersion,
		ClusterID: kmsg.StringPtr(clusterID),
		Topics:    []kmsg.EndQuorumEpochRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.EndQuorumEpochRequestTopicPartition{p}}},
	}
}

func newEndQuorumEpochResponse(errorCode int16, leaderID, epoch int32) *kmsg.EndQuorumEpochResponse {
	p := kmsg.EndQuorumEpochResponseTopicPartition{Partition: metadataPartition, ErrorCode: errorCode, LeaderID: leaderID, LeaderEpoch: epoch}
	return &kmsg.EndQuorumEpochResponse{
		Version: endQuorumEpochVersion,
		Topics:  []kmsg.EndQuorumEpochResponseTopic{{Topic: MetadataTopic, Partitions: []kmsg.EndQuorumEpochResponseTopicPartition{p}}},
	}
}

func newFetchRequest(clusterID string, replicaID int32, p kmsg.FetchRequestTopicPartition) *kmsg.FetchRequest {
	p.Partition = metadataPartition
	return &kmsg.FetchRequest{
		Version:   fetchVersion,
		ClusterID: kmsg.StringPtr(clusterID),
		ReplicaID: replicaID,
		Topics:    []kmsg.FetchRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.FetchRequestTopicPartition{p}}},
	}
}

func newFetchResponse(p kmsg.FetchResponseTopicPartition) *kmsg.FetchResponse {
	p.Partition = metadataPartition
	p.LastStableOffset = p.HighWatermark
	p.PreferredReadReplica = NoNode
	if p.SnapshotID.EndOffset <= 0 {
		// Kafka's "no snapshot" is -1, -1; a snapshot never ends at 0.
		p.SnapshotID = kmsg.FetchResponseTopicPartitionSnapshotID{EndOffset: -1, Epoch: -1}
	}
	return &kmsg.FetchResponse{
		Version: fetchVersion,
		Topics:  []kmsg.FetchResponseTopic{{Topic: MetadataTopic, Partitions: []kmsg.FetchResponseTopicPartition{p}}},
	}
}

// fetchError builds the answer to a Fetch that cannot be served, naming the
// leader this node knows so that the follower can go to it.
func fetchError(err *kerr.Error, leaderID, epoch int32) *kmsg.FetchResponse {
	return newFetchResponse(kmsg.FetchResponseTopicPartition{
		ErrorCode:     err.Code,
		HighWatermark: -1,
		DivergingEpoch: kmsg.FetchResponseTopicPartitionDivergingEpoch{
			Epoch: -1, EndOffset: -1,
		},
		CurrentLeader: kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: leaderID, LeaderEpoch: epoch},
	})
}

// encodeEntries appends each entry as a Kafka v2 record batch of one record,
// whose base offset is the entry's offset and whose partition leader epoch is
// the entry's epoch: the same bytes KRaft keeps in its metadata log.
func encodeEntries(dst []byte, entries []Entry) []byte {
	for _, e := range entries {
		spec := record.NewBatchSpec(record.CodecNone)
		spec.BaseOffset = e.Offset
		spec.PartitionLeaderEpoch = e.Epoch
		var err error
		dst, err = record.AppendBatch(dst, spec, []record.Record{{Value: e.Data}})
		assertf(err == nil, "encoding entry %d: %v", e.Offset, err)
	}
	return dst
}

// decodeEntries reverses encodeEntries. Bytes that are not valid batches of
// one record each are an error, never a panic: they come from the network.
func decodeEntries(batches []byte) ([]Entry, error) {
	var entries []Entry
	for len(batches) > 0 {
		size, err := record.BatchSize(batches)
		if err != nil || size > len(batches) {
			return nil, fmt.Errorf("raft: fetched bytes hold a truncated batch: %w", record.ErrTruncated)
		}
		header, records, err := record.DecodeRecords(batches[:size])
		if err != nil {
			return nil, fmt.Errorf("raft: fetched batch: %w", err)
		}
		if len(records) != 1 {
			return nil, fmt.Errorf("raft: fetched batch at offset %d holds %d records, want 1", header.BaseOffset, len(records))
		}
		entries = append(entries, Entry{Offset: header.BaseOffset, Epoch: header.PartitionLeaderEpoch, Data: records[0].Value})
		batches = batches[size:]
	}
	return entries, nil
}

func newFetchSnapshotResponse(p kmsg.FetchSnapshotResponseTopicPartition) *kmsg.FetchSnapshotResponse {
	p.Partition = metadataPartition
	return &kmsg.FetchSnapshotResponse{
		Version: fetchSnapshotVersion,
		Topics:  []kmsg.FetchSnapshotResponseTopic{{Topic: MetadataTopic, Partitions: []kmsg.FetchSnapshotResponseTopicPartition{p}}},
	}
}

// fetchSnapshotError builds the answer to a FetchSnapshot that cannot be
// served, naming the leader this node knows.
func fetchSnapshotError(err *kerr.Error, leaderID, epoch int32) *kmsg.FetchSnapshotResponse {
	return newFetchSnapshotResponse(kmsg.FetchSnapshotResponseTopicPartition{
		ErrorCode:     err.Code,
		SnapshotID:    kmsg.FetchSnapshotResponseTopicPartitionSnapshotID{EndOffset: -1, Epoch: -1},
		CurrentLeader: kmsg.FetchSnapshotResponseTopicPartitionCurrentLeader{LeaderID: leaderID, LeaderEpoch: epoch},
		Size:          -1,
		Position:      -1,
	})
}

func fetchSnapshotRequestPartition(r *kmsg.FetchSnapshotRequest) (kmsg.FetchSnapshotRequestTopicPartition, bool) {
	if len(r.Topics) != 1 || r.Topics[0].Topic != MetadataTopic || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Partition != metadataPartition {
		return kmsg.FetchSnapshotRequestTopicPartition{}, false
	}
	return r.Topics[0].Partitions[0], true
}

func fetchSnapshotResponsePartition(r *kmsg.FetchSnapshotResponse) (kmsg.FetchSnapshotResponseTopicPartition, bool) {
	if len(r.Topics) != 1 || r.Topics[0].Topic != MetadataTopic || len(r.Topics[0].Partitions) != 1 {
		return kmsg.FetchSnapshotResponseTopicPartition{}, false
	}
	return r.Topics[0].Partitions[0], true
}
