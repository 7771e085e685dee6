package controller

// BrokerRegistration (API key 62, versions 0-4) and BrokerHeartbeat (63,
// versions 0-1), after KIP-631 and KIP-841, as Kafka's ClusterControlManager
// and BrokerHeartbeatManager answer them.

import (
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// register registers a new incarnation of a broker. Its broker epoch is the
// offset of the entry that registers it, as in Kafka, so epochs grow across
// controllers without any state of their own; and a broker is caught up
// (may be unfenced) once it has replayed the log up to its own epoch. A
// broker already registered is first evacuated (its leaderships move and it
// leaves the ISRs) in the same entry, since it registers fenced and a
// fenced broker may lead nothing.
func (c *Controller) register(now time.Duration, request *kmsg.BrokerRegistrationRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrBrokerRegistrationResponse()
	response.Version = request.Version
	if request.ClusterID != c.config.ClusterID {
		response.ErrorCode = kerr.InconsistentClusterID.Code
		return response, nil
	}
	listeners, ok := registeredListeners(request.Listeners)
	if request.BrokerID < 0 || !ok {
		response.ErrorCode = kerr.InvalidRequest.Code
		return response, nil
	}
	var records []metadata.Record
	if existing, ok := c.working.Broker(request.BrokerID); ok {
		// A live session with another incarnation is a second process
		// claiming the ID (or a restart quicker than the session timeout,
		// which retries until the old session expires), as in Kafka.
		if c.sessionLive(now, request.BrokerID) && existing.IncarnationID != request.IncarnationID {
			response.ErrorCode = kerr.DuplicateBrokerRegistration.Code
			return response, nil
		}
		records = metadata.EvacuateBrokerRecords(c.working, request.BrokerID, c.uncleanFor)
	}
	epoch := c.working.AppliedOffset() + 1
	records = append(records, &metadata.RegisterBrokerRecord{
		BrokerID: request.BrokerID, BrokerEpoch: epoch, IncarnationID: request.IncarnationID, Fenced: true,
		Listeners: listeners,
	})
	c.sessions[request.BrokerID] = now
	response.BrokerEpoch = epoch
	return response, records
}

// registeredListeners converts the endpoints a broker advertised, or
// reports that a record could not hold them.
func registeredListeners(listeners []kmsg.BrokerRegistrationRequestListener) ([]metadata.Listener, bool) {
	if len(listeners) > metadata.ListenersMax {
		return nil, false
	}
	var kept []metadata.Listener
	for _, l := range listeners {
		if len(l.Name) > metadata.ListenerBytesMax || len(l.Host) > metadata.ListenerBytesMax {
			return nil, false
		}
		kept = append(kept, metadata.Listener{Name: l.Name, Host: l.Host, Port: l.Port})
	}
	return kept, true
}

func (c *Controller) sessionLive(now time.Duration, brokerID int32) bool {
	last, ok := c.sessions[brokerID]
	return ok && now-last < c.config.SessionTimeout
}

// heartbeat renews a broker's session and moves it through Kafka's broker
// states: fenced, unfenced, in controlled shutdown, shut down.
//
//   - A fenced broker is unfenced once it is caught up (its metadata offset
//     has reached its registration) unless it wants to stay fenced or shut
//     down; one that wants to shut down may do so at once.
//   - An unfenced broker that wants to be fenced is (KIP-631).
//   - An unfenced broker that wants to shut down and leads nothing is
//     fenced and told to shut down; one that leads starts a controlled
//     shutdown (KIP-841): its leaderships move away and it leaves the ISRs,
//     and it is told to shut down by a later heartbeat, once it leads
//     nothing, with its fence.
//   - An unfenced broker that reports offline log directories has those
//     replicas taken out of service: out of the ISR and the ELR, and their
//     leaderships moved (metadata.OfflineReplicaRecords).
func (c *Controller) heartbeat(now time.Duration, request *kmsg.BrokerHeartbeatRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrBrokerHeartbeatResponse()
	response.Version = request.Version
	broker, ok := c.working.Broker(request.BrokerID)
	if !ok {
		response.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return response, nil
	}
	if request.BrokerEpoch != broker.Epoch {
		response.ErrorCode = kerr.StaleBrokerEpoch.Code
		return response, nil
	}
	c.sessions[broker.ID] = now
	// kmsg's default for IsFenced is true, as in Kafka's schema; every
	// branch below states it.
	response.IsFenced = broker.Fenced
	response.IsCaughtUp = request.CurrentMetadataOffset >= broker.Epoch
	switch {
	case broker.Fenced:
		return c.heartbeatFenced(request, response, broker)
	case request.WantFence:
		response.IsFenced, response.ShouldShutdown = true, request.WantShutdown
		return response, c.fenceRecords(broker.ID)
	case request.WantShutdown || broker.InControlledShutdown:
		return c.heartbeatShuttingDown(response, broker)
	case len(request.OfflineLogDirs) > 0:
		// Replicas that lost stored data leave service (KIP-858's offline
		// log directories, one per replica: metadata.ReplicaDirectoryID).
		return response, metadata.OfflineReplicaRecords(c.working, broker.ID, request.OfflineLogDirs, c.uncleanFor)
	}
	return response, nil
}

func (c *Controller) heartbeatFenced(request *kmsg.BrokerHeartbeatRequest, response *kmsg.BrokerHeartbeatResponse, broker metadata.Broker) (kmsg.Response, []metadata.Record) {
	response.IsFenced = true
	if request.WantShutdown {
		response.ShouldShutdown = true
		return response, nil
	}
	if request.WantFence || !response.IsCaughtUp {
		return response, nil
	}
	response.IsFenced = false
	unfence := &metadata.UnfenceBrokerRecord{BrokerID: broker.ID, BrokerEpoch: broker.Epoch}
	return response, append([]metadata.Record{unfence}, c.electWithReturningBroker(unfence)...)
}

// electWithReturningBroker elects leaders, in the entry that unfences a
// broker, for the leaderless partitions it can lead: those whose ISR or ELR
// it is in (or any it replicates, where unclean election is enabled), as
// Kafka's controller does when a broker comes back. Without this a
// partition whose last ISR member restarted would stay leaderless until a
// preferred-leader rebalance.
func (c *Controller) electWithReturningBroker(unfence *metadata.UnfenceBrokerRecord) []metadata.Record {
	after := c.working.Clone()
	err := after.ApplyRecord(after.AppliedOffset()+1, c.epoch, unfence)
	assert(err == nil, "unfencing a caught-up fenced broker was refused")
	var records []metadata.Record
	for _, name := range after.TopicNames() {
		topic, _ := after.TopicByName(name)
		for _, partition := range topic.Partitions {
			if partition.Leader != metadata.NoLeader || !slices.Contains(partition.Replicas, unfence.BrokerID) {
				continue
			}
			change, ok := metadata.ElectLeader(partition, after, c.uncleanFor(name))
			if ok && change.Leader != metadata.NoLeader {
				records = append(records, &change)
			}
		}
	}
	return records
}

func (c *Controller) heartbeatShuttingDown(response *kmsg.BrokerHeartbeatResponse, broker metadata.Broker) (kmsg.Response, []metadata.Record) {
	if !c.working.Leads(broker.ID) {
		response.IsFenced, response.ShouldShutdown = true, true
		return response, c.fenceRecords(broker.ID)
	}
	if broker.InControlledShutdown {
		// A broker in controlled shutdown is not live, so no election
		// chooses it; it can lead only what it led before, which the
		// shutdown's own entry moved away.
		panic("controller: invariant violated: a broker in controlled shutdown leads")
	}
	records, err := metadata.ControlledShutdownRecords(c.working, broker.ID, c.uncleanFor)
	assert(err == nil, "a controlled shutdown of an unfenced broker was refused")
	return response, records
}

func (c *Controller) fenceRecords(brokerID int32) []metadata.Record {
	records, err := metadata.FenceBrokerRecords(c.working, brokerID, c.uncleanFor)
	assert(err == nil, "fencing an unfenced broker was refused")
	return records
}
