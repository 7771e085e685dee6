package client

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Admin is a minimal admin client: topics and offsets.
type Admin struct {
	cluster *Cluster
	// Timeout is sent as the CreateTopics and DeleteTopics timeout.
	Timeout time.Duration
}

// NewAdmin returns an admin client using cluster.
func NewAdmin(cluster *Cluster) *Admin {
	return &Admin{cluster: cluster, Timeout: 30 * time.Second}
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Topic             string
	Partitions        int32
	ReplicationFactor int16
	// Configs are topic configs by Kafka name (e.g. "min.insync.replicas").
	Configs map[string]string
}

// TopicError is the per-topic answer of CreateTopics and DeleteTopics.
type TopicError struct {
	Topic string
	Err   error
}

// controllerRequest sends req to the controller, or any broker before the
// controller is known.
func (a *Admin) controllerRequest(req kmsg.Request, done func(kmsg.Response, error)) {
	if _, ok := a.cluster.brokers[a.cluster.controller]; ok {
		a.cluster.requestNode(a.cluster.controller, req, a.Timeout+a.cluster.cfg.RequestTimeout, done)
		return
	}
	a.cluster.requestAny(req, a.Timeout+a.cluster.cfg.RequestTimeout, done)
}

// CreateTopics creates topics; done gets one TopicError per topic in the
// order given (Err nil on success, kerr.TopicAlreadyExists if it exists), or
// a request error.
func (a *Admin) CreateTopics(topics []TopicSpec, done func([]TopicError, error)) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(a.Timeout.Milliseconds())
	for _, spec := range topics {
		if spec.Topic == "" || spec.Partitions <= 0 || spec.Partitions > partitionsPerTopicMax || spec.ReplicationFactor <= 0 {
			err := fmt.Errorf("%w: topic spec %+v", ErrInvalidConfig, spec)
			a.cluster.env.Clock.AfterFunc(0, func() { done(nil, err) })
			return
		}
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = spec.Topic, spec.Partitions, spec.ReplicationFactor
		keys := make([]string, 0, len(spec.Configs))
		for k := range spec.Configs { // order-independent: sorted below
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, kmsg.StringPtr(spec.Configs[k])
			t.Configs = append(t.Configs, cfg)
		}
		req.Topics = append(req.Topics, t)
	}
	a.controllerRequest(req, func(r kmsg.Response, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		byName := make(map[string]error)
		for _, t := range r.(*kmsg.CreateTopicsResponse).Topics {
			byName[t.Topic] = kafkaError(t.ErrorCode)
		}
		done(topicErrors(topics, byName, func(s TopicSpec) string { return s.Topic }), nil)
	})
}

// topicErrors orders per-topic results as the request listed them.
func topicErrors[T any](items []T, byName map[string]error, name func(T) string) []TopicError {
	out := make([]TopicError, 0, len(items))
	for _, it := range items {
		err, ok := byName[name(it)]
		if !ok {
			err = fmt.Errorf("%w: no result for topic %q", ErrProtocol, name(it))
		}
		out = append(out, TopicError{Topic: name(it), Err: err})
	}
	return out
}

// DeleteTopics deletes topics by name; done gets one TopicError per topic.
func (a *Admin) DeleteTopics(topics []string, done func([]TopicError, error)) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = int32(a.Timeout.Milliseconds())
	req.TopicNames = slices.Clone(topics)
	for _, t := range topics {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	a.controllerRequest(req, func(r kmsg.Response, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		byName := make(map[string]error)
		for _, t := range r.(*kmsg.DeleteTopicsResponse).Topics {
			if t.Topic != nil {
				byName[*t.Topic] = kafkaError(t.ErrorCode)
			}
		}
		done(topicErrors(topics, byName, func(s string) string { return s }), nil)
	})
}

// ListTopics fetches metadata for every topic; done gets them sorted by
// name. It also refreshes the cluster's view.
func (a *Admin) ListTopics(done func([]TopicMetadata, error)) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // All topics.
	a.cluster.requestAny(req, 0, func(r kmsg.Response, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		resp := r.(*kmsg.MetadataResponse)
		if err := a.cluster.applyMetadata(resp, true); err != nil {
			done(nil, err)
			return
		}
		var out []TopicMetadata
		for _, t := range resp.Topics {
			if t.Topic == nil {
				continue
			}
			if md, ok := a.cluster.Topic(*t.Topic); ok {
				out = append(out, md)
			}
		}
		slices.SortFunc(out, func(x, y TopicMetadata) int { return compareStrings(x.Topic, y.Topic) })
		done(out, nil)
	})
}

// ListOffsets asks each partition's leader for the offset at timestamp
// (OffsetLatest, OffsetEarliest, or a time in milliseconds). done gets a
// result per partition; partitions without a known leader get ErrNoBroker.
func (a *Admin) ListOffsets(tps []TopicPartition, timestamp int64, done func(map[TopicPartition]OffsetResult)) {
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.Topic) && a.cluster.addInterest(tp.Topic) == nil {
			topics = append(topics, tp.Topic)
		}
	}
	a.cluster.RefreshMetadata(func(error) {
		for _, t := range topics {
			a.cluster.removeInterest(t)
		}
		a.listOffsets(tps, timestamp, done)
	})
}

func (a *Admin) listOffsets(tps []TopicPartition, timestamp int64, done func(map[TopicPartition]OffsetResult)) {
	perNode := make(map[int32][]TopicPartition)
	var nodes []int32
	out := make(map[TopicPartition]OffsetResult, len(tps))
	for _, tp := range tps {
		node, _, ok := a.cluster.leader(tp.Topic, tp.Partition)
		if !ok {
			out[tp] = OffsetResult{Offset: -1, Err: a.cluster.noLeaderError(tp)}
			continue
		}
		if _, seen := perNode[node]; !seen {
			nodes = append(nodes, node)
		}
		perNode[node] = append(perNode[node], tp)
	}
	slices.Sort(nodes)
	pending := len(nodes)
	if pending == 0 {
		a.cluster.env.Clock.AfterFunc(0, func() { done(out) })
		return
	}
	for _, node := range nodes {
		asked := perNode[node]
		slices.SortFunc(asked, compareTopicPartition)
		req := listOffsetsRequest(asked, timestamp, -1, false)
		a.cluster.requestNode(node, req, 0, func(r kmsg.Response, err error) {
			var got map[TopicPartition]OffsetResult
			if err == nil {
				got, err = listOffsetsResult(r.(*kmsg.ListOffsetsResponse), timestamp)
			}
			for _, tp := range asked {
				res, ok := got[tp]
				switch {
				case err != nil:
					res = OffsetResult{Offset: -1, Err: err}
				case !ok:
					res = OffsetResult{Offset: -1, Err: fmt.Errorf("%w: no result for %v", ErrProtocol, tp)}
				}
				out[tp] = res
			}
			if pending--; pending == 0 {
				done(out)
			}
		})
	}
}
