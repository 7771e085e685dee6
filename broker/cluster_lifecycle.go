package broker

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
)

// lifecycle is the broker's side of KIP-631's broker lifecycle: it
// registers with the active controller (a new broker epoch for each
// registration), then heartbeats every broker.heartbeat.interval.ms with
// how far it has applied the metadata log. The controller unfences it once
// it has applied its own registration, and fences it when heartbeats stop
// for broker.session.timeout.ms.
//
// States: unregistered (no broker epoch; the next request is a
// registration) and registered (heartbeats carry the epoch). A heartbeat
// answered STALE_BROKER_EPOCH or refused for an unknown broker sends the
// broker back to unregistered: the controller forgot or fenced this
// incarnation, and only a new registration brings it back. At most one
// request is in flight.
type lifecycle struct {
	cluster       *cluster
	incarnationID [16]byte
	// brokerEpoch is the epoch of the current registration, or -1.
	brokerEpoch int64
	// fenced is what the last heartbeat answer said.
	fenced   bool
	inflight bool
	timer    core.Timer
	stopped  bool
	// shuttingDown is set by a controlled shutdown (KIP-841): heartbeats
	// ask to shut down until the controller has moved every leadership
	// away and answers ShouldShutdown, or its timeout passes; then
	// shutdownDone runs once.
	shuttingDown bool
	shutdownDone func()
}

// init draws the incarnation id, fresh for each process life.
func (l *lifecycle) init(c *cluster) {
	l.cluster = c
	l.brokerEpoch = -1
	l.fenced = true
	c.node.env.Rand.Fill(l.incarnationID[:])
}

// start registers a broker; a controller-only node never registers.
func (l *lifecycle) start() {
	if l.cluster.node.cfg.IsBroker() {
		l.send()
	}
}

func (l *lifecycle) stop() {
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
	}
}

// Fenced reports whether the controller last said this broker is fenced.
func (l *lifecycle) Fenced() bool { return l.fenced }

// metadataApplied sends a heartbeat at once while the broker waits to be
// unfenced, so that catching up is reported without waiting a whole
// interval.
func (l *lifecycle) metadataApplied() {
	if l.brokerEpoch >= 0 && l.fenced && !l.inflight {
		l.send()
	}
}

// schedule sends the next request after d.
func (l *lifecycle) schedule(d time.Duration) {
	if l.stopped {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	l.timer = l.cluster.node.env.Clock.AfterFunc(d, func() {
		l.timer = nil
		l.send()
	})
}

func (l *lifecycle) interval() time.Duration {
	return time.Duration(l.cluster.node.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
}

// send sends a registration or a heartbeat, whichever is due.
func (l *lifecycle) send() {
	if l.stopped || l.inflight {
		return
	}
	l.inflight = true
	if l.brokerEpoch < 0 {
		l.cluster.sendToController(l.registration(), l.interval(), l.onRegistered)
		return
	}
	l.cluster.sendToController(l.heartbeat(), l.interval(), l.onHeartbeat)
}

func (l *lifecycle) registration() *kmsg.BrokerRegistrationRequest {
	n := l.cluster.node
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version = 3
	req.BrokerID = n.cfg.NodeID
	req.ClusterID = n.cfg.ClusterID
	req.IncarnationID = l.incarnationID
	for i, addr := range n.advertisedAddrs() {
		listener := kmsg.NewBrokerRegistrationRequestListener()
		listener.Name = "PLAINTEXT"
		if i > 0 {
			break
		}
		host, port := splitHostPort(addr)
		listener.Host, listener.Port = host, uint16(port)
		req.Listeners = append(req.Listeners, listener)
	}
	feature := kmsg.NewBrokerRegistrationRequestFeature()
	feature.Name, feature.MinSupportedVersion, feature.MaxSupportedVersion = "metadata.version", 1, 1
	req.Features = append(req.Features, feature)
	return req
}

func (l *lifecycle) heartbeat() *kmsg.BrokerHeartbeatRequest {
	c := l.cluster
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.Version = 1
	req.BrokerID = c.node.cfg.NodeID
	req.BrokerEpoch = l.brokerEpoch
	req.CurrentMetadataOffset = c.image.AppliedOffset()
	req.WantShutdown = l.shuttingDown
	req.OfflineLogDirs = c.offlineReplicaDirectories()
	return req
}

// controlledShutdownPollInterval is how often a broker in controlled
// shutdown asks again whether it may go.
const controlledShutdownPollInterval = 100 * time.Millisecond

// beginShutdown starts a controlled shutdown: done runs once the
// controller lets the broker go, or after timeout, or at once when the broker
// is not registered and unfenced (it leads nothing then).
func (l *lifecycle) beginShutdown(timeout time.Duration, done func()) {
	if l.shuttingDown {
		return
	}
	l.shuttingDown, l.shutdownDone = true, done
	if l.brokerEpoch < 0 || l.fenced {
		l.finishShutdown("not registered or fenced")
		return
	}
	l.cluster.node.log.Info("controlled shutdown: asking the controller to move this broker's leaderships")
	if !l.inflight {
		l.send()
	}
	l.cluster.node.env.Clock.AfterFunc(timeout, func() {
		l.finishShutdown("the controller did not answer in time")
	})
}

// finishShutdown runs the shutdown's continuation once.
func (l *lifecycle) finishShutdown(why string) {
	if l.shutdownDone == nil {
		return
	}
	done := l.shutdownDone
	l.shutdownDone = nil
	l.cluster.node.log.Info("controlled shutdown done", slog.String("why", why))
	done()
}

func (l *lifecycle) onRegistered(resp kmsg.Response, err error) {
	l.inflight = false
	if l.stopped {
		return
	}
	n := l.cluster.node
	if err != nil {
		l.schedule(controllerRetryBackoff)
		return
	}
	r := resp.(*kmsg.BrokerRegistrationResponse)
	if r.ErrorCode != 0 {
		n.log.Warn("broker registration refused", slog.String("err", kerr.ErrorForCode(r.ErrorCode).Error()))
		l.schedule(l.interval())
		return
	}
	l.brokerEpoch = r.BrokerEpoch
	l.fenced = true
	l.cluster.applyRoles()
	n.log.Info("registered with the controller", slog.Int64("broker_epoch", r.BrokerEpoch))
	l.send()
}

func (l *lifecycle) onHeartbeat(resp kmsg.Response, err error) {
	l.inflight = false
	if l.stopped {
		return
	}
	n := l.cluster.node
	if err != nil {
		l.schedule(controllerRetryBackoff)
		return
	}
	r := resp.(*kmsg.BrokerHeartbeatResponse)
	switch r.ErrorCode {
	case 0:
	case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
		if l.shuttingDown {
			l.finishShutdown("the controller no longer knows this registration")
			return
		}
		n.log.Warn("the controller no longer knows this registration; registering again",
			slog.Int64("broker_epoch", l.brokerEpoch), slog.String("err", kerr.ErrorForCode(r.ErrorCode).Error()))
		l.brokerEpoch, l.fenced = -1, true
		l.cluster.applyRoles()
		l.send()
		return
	default:
		l.schedule(controllerRetryBackoff)
		return
	}
	if l.fenced != r.IsFenced {
		n.log.Info("broker fencing changed", slog.Bool("fenced", r.IsFenced), slog.Int64("broker_epoch", l.brokerEpoch))
		l.fenced = r.IsFenced
		// What this broker may lead changed with it.
		l.cluster.applyRoles()
	}
	if l.shuttingDown {
		if r.ShouldShutdown {
			l.finishShutdown("the controller moved every leadership away")
			return
		}
		l.schedule(controlledShutdownPollInterval)
		return
	}
	l.schedule(l.interval())
}
