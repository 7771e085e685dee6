package controller

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/metadata"
)

// ProducerIDBlockSize is how many producer ids one AllocateProducerIds
// hands a broker, as Kafka's controller does (KIP-730).
const ProducerIDBlockSize = 1000

// allocateProducerIDs answers AllocateProducerIds: the next block of
// producer ids, recorded before the answer leaves, so that no two brokers
// (and no two incarnations of one) ever hand out the same id. The broker
// must be registered at the epoch it names (STALE_BROKER_EPOCH otherwise,
// BROKER_ID_NOT_REGISTERED for an unknown broker) and not fenced.
func (c *Controller) allocateProducerIDs(request *kmsg.AllocateProducerIDsRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrAllocateProducerIDsResponse()
	response.Version = request.Version
	response.ProducerIDStart, response.ProducerIDLen = -1, 0
	broker, ok := c.working.Broker(request.BrokerID)
	switch {
	case !ok:
		response.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return response, nil
	case broker.Epoch != request.BrokerEpoch || broker.Fenced:
		response.ErrorCode = kerr.StaleBrokerEpoch.Code
		return response, nil
	}
	start := c.working.NextProducerID()
	response.ProducerIDStart, response.ProducerIDLen = start, ProducerIDBlockSize
	return response, []metadata.Record{&metadata.ProducerIdsRecord{
		BrokerID: request.BrokerID, BrokerEpoch: request.BrokerEpoch, NextProducerID: start + ProducerIDBlockSize,
	}}
}
