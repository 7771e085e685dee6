package broker

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleMetadata answers Metadata (key 3), versions 0-12.
//
// Topics are named (or, from v10, identified by topic id); an empty list in
// v0, or a null list from v1, means every topic. An unknown named topic is
// created with num.partitions when auto.create.topics.enable is set and the
// request allows it (always before v4). This broker is every partition's
// leader and whole ISR, and the controller.
func handleMetadata(n *Node, r *request, req kmsg.Request) {
	mr := req.(*kmsg.MetadataRequest)
	if n.cluster != nil {
		n.cluster.handleMetadata(r, mr)
		return
	}
	resp := mr.ResponseKind().(*kmsg.MetadataResponse)
	for _, addr := range n.advertisedAddrs() {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID = n.cfg.NodeID
		b.Host, b.Port = splitHostPort(addr)
		resp.Brokers = append(resp.Brokers, b)
		break // one node, one broker entry: the first advertised address
	}
	resp.ClusterID = &n.cfg.ClusterID
	resp.ControllerID = n.cfg.NodeID
	allTopics := mr.Topics == nil || (mr.Version == 0 && len(mr.Topics) == 0)
	if allTopics {
		for _, t := range n.catalog.sorted() {
			resp.Topics = append(resp.Topics, n.metadataTopic(t))
		}
	}
	for _, rt := range mr.Topics {
		resp.Topics = append(resp.Topics, n.metadataRequestedTopic(mr, rt))
	}
	r.respond(resp)
}

func (n *Node) metadataRequestedTopic(mr *kmsg.MetadataRequest, rt kmsg.MetadataRequestTopic) kmsg.MetadataResponseTopic {
	if rt.Topic == nil {
		if t := n.catalog.byID[rt.TopicID]; t != nil {
			return n.metadataTopic(t)
		}
		st := kmsg.NewMetadataResponseTopic()
		st.TopicID = rt.TopicID
		st.ErrorCode = kerr.UnknownTopicID.Code
		return st
	}
	name := *rt.Topic
	if t := n.catalog.topics[name]; t != nil {
		return n.metadataTopic(t)
	}
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = rt.Topic
	st.ErrorCode = kerr.UnknownTopicOrPartition.Code
	if n.cfg.AutoCreateTopics && (mr.Version < 4 || mr.AllowAutoTopicCreation) {
		t, err := n.catalog.create(name, n.cfg.NumPartitions, nil)
		if err != nil {
			st.ErrorCode = errorCode(err)
			return st
		}
		return n.metadataTopic(t)
	}
	return st
}

func (n *Node) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.name
	st.Topic = &name
	st.TopicID = t.id
	st.IsInternal = t.internal
	for _, p := range t.partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.index
		sp.Leader = n.cfg.NodeID
		sp.LeaderEpoch = p.leaderEpoch
		sp.Replicas = []int32{n.cfg.NodeID}
		sp.ISR = []int32{n.cfg.NodeID}
		sp.OfflineReplicas = []int32{}
		if p.offline != nil || p.loading {
			// The only replica's data is corrupt, or not opened yet: no
			// leader, as Kafka reports a partition whose replicas are all
			// offline or whose leader is not ready.
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
			sp.Leader = -1
			sp.ISR = []int32{}
			sp.OfflineReplicas = []int32{n.cfg.NodeID}
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}

// advertisedAddrs returns the addresses clients should connect to: the
// configured advertised listeners, else the bound listener addresses (which
// resolves port 0), with a wildcard host replaced by loopback.
func (n *Node) advertisedAddrs() []string {
	if len(n.cfg.AdvertisedListeners) > 0 {
		return n.cfg.AdvertisedListeners
	}
	addrs := n.Addrs()
	if len(addrs) == 0 {
		addrs = n.cfg.Listeners
	}
	out := make([]string, len(addrs))
	for i, addr := range addrs {
		host, port := splitHostPort(addr)
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		out[i] = host + ":" + strconv.Itoa(int(port))
	}
	return out
}

// splitHostPort splits "host:port"; addresses were validated when parsed.
func splitHostPort(addr string) (string, int32) {
	cut := strings.LastIndexByte(addr, ':')
	if cut < 0 {
		panic(fmt.Sprintf("broker: address %q has no port", addr))
	}
	port, err := strconv.Atoi(addr[cut+1:])
	if err != nil {
		panic(fmt.Sprintf("broker: address %q has a bad port", addr))
	}
	return strings.Trim(addr[:cut], "[]"), int32(port)
}
