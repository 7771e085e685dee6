package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator types of FindCoordinator.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func registerGroupAPIs(table map[int16]api) {
	table[10] = api{versionRange{0, 4}, handleFindCoordinator}
}

// handleFindCoordinator answers FindCoordinator (key 10), versions 0-4. This
// broker coordinates every group; transaction coordinators do not exist yet
// (COORDINATOR_NOT_AVAILABLE).
func handleFindCoordinator(n *Node, r *request, req kmsg.Request) {
	fr := req.(*kmsg.FindCoordinatorRequest)
	resp := fr.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := splitHostPort(n.advertisedAddrs()[0])
	answer := func(key string) (int32, string, int32, error) {
		switch {
		case fr.CoordinatorType == coordinatorTransaction:
			return -1, "", -1, fmt.Errorf("%w: transactions are not supported yet", kerr.CoordinatorNotAvailable)
		case fr.CoordinatorType != coordinatorGroup:
			return -1, "", -1, fmt.Errorf("%w: coordinator type %d", kerr.InvalidRequest, fr.CoordinatorType)
		case key == "":
			return -1, "", -1, fmt.Errorf("%w: empty group id", kerr.InvalidGroupID)
		}
		return n.cfg.NodeID, host, port, nil
	}
	if fr.Version < 4 {
		var err error
		resp.NodeID, resp.Host, resp.Port, err = answer(fr.CoordinatorKey)
		setError(&resp.ErrorCode, &resp.ErrorMessage, err)
		r.respond(resp)
		return
	}
	for _, key := range fr.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		var err error
		c.NodeID, c.Host, c.Port, err = answer(key)
		setError(&c.ErrorCode, &c.ErrorMessage, err)
		resp.Coordinators = append(resp.Coordinators, c)
	}
	r.respond(resp)
}
