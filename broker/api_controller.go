package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/controller"
)

// controllerAPIs are the APIs a controller listener serves: the metadata
// quorum's RPCs, at the versions broker/raft speaks, and the active
// controller's requests. Kafka's controllers serve much the same set on
// the listeners named by controller.listener.names.
var controllerAPIs map[int16]api

func init() {
	controllerAPIs = map[int16]api{
		18: {versionRange{0, 3}, handleControllerAPIVersions},
		52: {versionRange{2, 2}, handleQuorumRequest},   // Vote, with KIP-996's PreVote
		53: {versionRange{0, 0}, handleQuorumRequest},   // BeginQuorumEpoch
		54: {versionRange{0, 0}, handleQuorumRequest},   // EndQuorumEpoch
		55: {versionRange{0, 0}, handleQuorumRequest},   // DescribeQuorum
		1:  {versionRange{12, 12}, handleQuorumRequest}, // Fetch of the metadata log
		59: {versionRange{0, 0}, handleQuorumRequest},   // FetchSnapshot
		62: {versionRange{0, 4}, handleControllerRequest},
		63: {versionRange{0, 2}, handleControllerRequest},
		19: {versionRange{2, 7}, handleControllerRequest},
		20: {versionRange{1, 6}, handleControllerRequest},
		37: {versionRange{0, 3}, handleControllerRequest},
		43: {versionRange{0, 2}, handleControllerRequest},
		44: {versionRange{0, 1}, handleControllerRequest},
		67: {versionRange{0, 0}, handleControllerRequest}, // AllocateProducerIds
		56: {versionRange{0, 3}, handleControllerRequest}, // AlterPartition
	}
}

func controllerSupportedVersions(apiKey int16) (versionRange, bool) {
	a, ok := controllerAPIs[apiKey]
	return a.versions, ok
}

// handleControllerAPIVersions answers ApiVersions on a controller listener
// with the controller's APIs.
func handleControllerAPIVersions(_ *Node, r *request, req kmsg.Request) {
	resp := req.(*kmsg.ApiVersionsRequest).ResponseKind().(*kmsg.ApiVersionsResponse)
	for key, a := range controllerAPIs { // order-independent: sorted below
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, a.versions.min, a.versions.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	sort.Slice(resp.ApiKeys, func(i, j int) bool { return resp.ApiKeys[i].ApiKey < resp.ApiKeys[j].ApiKey })
	r.respond(resp)
}

// handleQuorumRequest passes a quorum RPC to the metadata quorum's host,
// which answers once Raft has (after its state is durable).
func handleQuorumRequest(n *Node, r *request, req kmsg.Request) {
	if n.cluster == nil {
		r.respond(controllerErrorResponse(req, kerr.NotController))
		return
	}
	n.cluster.host.HandleRequest(req, r.respond)
}

// handleControllerRequest passes a request to this node's controller,
// which answers NOT_CONTROLLER unless it is the active one.
func handleControllerRequest(n *Node, r *request, req kmsg.Request) {
	if n.cluster == nil || n.cluster.controller == nil || !controller.Serves(req.Key()) {
		r.respond(notControllerResponse(req))
		return
	}
	n.cluster.controller.Handle(n.cluster.elapsed(), req, r.respond)
}

// notControllerResponse is NOT_CONTROLLER for every item of req.
func notControllerResponse(req kmsg.Request) kmsg.Response {
	return controllerErrorResponse(req, kerr.NotController)
}
