package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterOnlyAPIs are the client APIs a standalone broker, which runs no
// controller quorum, neither serves nor advertises: DescribeQuorum (55)
// and ElectLeaders (43).
var clusterOnlyAPIs = map[int16]bool{43: true, 55: true}

// handleDescribeCluster answers DescribeCluster (key 60), versions 0-2:
// the registered brokers (from v2, fenced ones too when asked, flagged),
// the controller (the active one when it is also a broker, else this
// broker, which forwards) and the cluster id. A standalone broker is the
// whole cluster and its own controller.
func handleDescribeCluster(n *Node, r *request, req kmsg.Request) {
	dr := req.(*kmsg.DescribeClusterRequest)
	resp := dr.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = n.cfg.ClusterID
	resp.ControllerID = n.cfg.NodeID
	resp.ClusterAuthorizedOperations = -2147483648
	if dr.EndpointType != 0 && dr.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		r.respond(resp)
		return
	}
	if n.cluster == nil {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID = n.cfg.NodeID
		b.Host, b.Port = splitHostPort(n.advertisedAddrs()[0])
		resp.Brokers = append(resp.Brokers, b)
		r.respond(resp)
		return
	}
	c := n.cluster
	if leader := c.activeController(); leader >= 0 {
		if _, isBroker := c.image.Broker(leader); isBroker {
			resp.ControllerID = leader
		}
		// Otherwise the active controller is a controller-only node,
		// which clients cannot reach on a broker listener; as Kafka's
		// brokers do, name a broker (this one) that forwards. The quorum's
		// leader is DescribeQuorum's answer.
	}
	for _, broker := range c.image.Brokers() {
		if broker.Fenced && !dr.IncludeFencedBrokers {
			continue
		}
		host, port, ok := c.brokerEndpoint(broker.ID)
		if !ok {
			continue
		}
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.IsFenced = broker.ID, host, port, broker.Fenced
		resp.Brokers = append(resp.Brokers, b)
	}
	r.respond(resp)
}

// handleDescribeQuorum answers DescribeQuorum (key 55) in cluster mode with
// the quorum leader's own answer: this node's Raft if it leads, else the
// leader's over its controller listener.
func handleDescribeQuorum(n *Node, r *request, req kmsg.Request) {
	if n.cluster == nil {
		r.respond(controllerErrorResponse(req, kerr.InvalidRequest))
		return
	}
	c := n.cluster
	leader := c.activeController()
	switch ch, ok := c.channels[leader]; {
	case leader == n.cfg.NodeID:
		c.host.HandleRequest(req, r.respond)
	case ok:
		ch.Send(req, func(resp kmsg.Response, err error) {
			if err != nil {
				resp = controllerErrorResponse(req, kerr.RequestTimedOut)
			}
			r.respond(resp)
		})
	default:
		r.respond(controllerErrorResponse(req, kerr.NotLeaderForPartition))
	}
}

// handleElectLeaders answers ElectLeaders (key 43) in cluster mode with the
// active controller's answer.
func handleElectLeaders(n *Node, r *request, req kmsg.Request) {
	if n.cluster == nil {
		r.respond(controllerErrorResponse(req, kerr.InvalidRequest))
		return
	}
	n.forwardToController(r, req, time.Duration(req.(*kmsg.ElectLeadersRequest).TimeoutMillis)*time.Millisecond)
}
