package quorum

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/raft"
)

// peer is the host's line to one other voter's controller listener. It
// carries this node's requests out and their answers back; requests from
// the peer arrive on the node's own listener instead (HandleRequest), as
// between Kafka controllers. A request that gets no answer is simply lost:
// Raft sends it again after its request timeout.
type peer struct {
	host    *Host
	id      int32
	channel *Channel
}

// send writes a Raft request; its answer steps Raft with the request's
// correlation id, so that Raft can drop answers it no longer waits for.
func (p *peer) send(correlationID int32, req kmsg.Request) {
	p.channel.Send(req, func(resp kmsg.Response, err error) {
		if err != nil {
			return
		}
		body, ok := resp.(raft.Body)
		if !ok {
			return
		}
		p.host.step(raft.Message{From: p.id, To: p.host.cfg.NodeID, CorrelationID: correlationID, Body: body})
	})
}

// close drops the connection for good.
func (p *peer) close() { p.channel.Close() }

// clientID names this node in the request headers it sends.
func (h *Host) clientID() string {
	return "raft-node-" + strconv.Itoa(int(h.cfg.NodeID))
}
