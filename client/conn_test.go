package client

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// heldRequest is a request the fake broker has not answered yet.
type heldRequest struct {
	c    *fakeConn
	corr int32
	req  kmsg.Request
}

// TestConnPipeliningAndCorrelation holds every Metadata request at the fake
// broker: with 8 issued, exactly inflightRequestsMax reach the broker before
// any answer; answering them in order completes the callbacks in issue order
// and lets the rest through.
func TestConnPipeliningAndCorrelation(t *testing.T) {
	tc := newTestCluster(t, 1)
	var held []heldRequest
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		held = append(held, heldRequest{c, corr, req})
		return nil, true
	})
	var order []int
	for i := range 8 {
		tc.cluster.requestAny(kmsg.NewPtrMetadataRequest(), 0, func(_ kmsg.Response, err error) {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			order = append(order, i)
		})
	}
	tc.clock.run(100 * time.Millisecond)
	if len(held) != inflightRequestsMax {
		t.Fatalf("%d requests reached the broker, want %d in flight", len(held), inflightRequestsMax)
	}
	for answered := 0; answered < 8; answered++ {
		tc.clock.runUntil(t, time.Second, func() bool { return len(held) > answered })
		h := held[answered]
		tc.brokers[0].reply(h.c, h.corr, h.req, h.req.ResponseKind())
		tc.clock.run(10 * time.Millisecond)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("completion order %v, want issue order", order)
		}
	}
	if len(order) != 8 {
		t.Fatalf("%d of 8 requests completed", len(order))
	}
}

// TestConnResetFailsInflightAsSent breaks the connection while requests are
// in flight: each fails with ErrConnectionLost marked as sent (the broker may
// have executed it), and a later request redials and succeeds.
func TestConnResetFailsInflightAsSent(t *testing.T) {
	tc := newTestCluster(t, 1)
	hold := true
	tc.chain(tc.brokers[0], func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool) {
		if hold {
			return nil, true
		}
		return nil, false
	})
	var errs []error
	for range 3 {
		tc.cluster.requestAny(kmsg.NewPtrMetadataRequest(), 0, func(_ kmsg.Response, err error) { errs = append(errs, err) })
	}
	tc.clock.run(50 * time.Millisecond)
	tc.brokers[0].conns[0].reset()
	tc.clock.runUntil(t, time.Second, func() bool { return len(errs) == 3 })
	for _, err := range errs {
		if !errors.Is(err, ErrConnectionLost) || !requestMaybeExecuted(err) {
			t.Fatalf("in-flight request failed with %v, want sent ErrConnectionLost", err)
		}
	}
	hold = false
	var last error = errors.New("pending")
	tc.cluster.requestAny(kmsg.NewPtrMetadataRequest(), 0, func(_ kmsg.Response, err error) { last = err })
	tc.clock.runUntil(t, 5*time.Second, func() bool { return last == nil || last.Error() != "pending" })
	if last != nil || tc.net.dials != 2 {
		t.Fatalf("after reset: err %v, %d dials; want success on a second dial", last, tc.net.dials)
	}
}

// TestConnSetupTimeoutRedials leaves the first handshake unanswered, as a
// network that went silent after the connection opened would: the
// connection is given up after the setup timeout, the request queued
// behind the handshake fails as not sent (so its caller may retry at once)
// rather than waiting out its own minute-long timeout, and the next request
// redials and is answered (sim seed 1401422: a consumer's JoinGroup never
// left its queue after the heal, and every retry queued behind the same
// dead handshake).
func TestConnSetupTimeoutRedials(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.brokers[0].silentHandshakes = 1
	var errs []error
	request := func() {
		tc.cluster.requestAny(kmsg.NewPtrMetadataRequest(), time.Minute, func(_ kmsg.Response, err error) {
			errs = append(errs, err)
		})
	}
	request()
	tc.clock.run(connectionSetupTimeoutDefault - time.Millisecond)
	if len(errs) != 0 {
		t.Fatalf("before the setup timeout the request ended with %v", errs[0])
	}
	tc.clock.run(time.Millisecond)
	if len(errs) != 1 || !errors.Is(errs[0], ErrConnectionSetupTimeout) || requestMaybeExecuted(errs[0]) {
		t.Fatalf("at the setup timeout: %v, want one unsent ErrConnectionSetupTimeout", errs)
	}
	request()
	tc.clock.runUntil(t, 2*time.Second, func() bool { return len(errs) == 2 })
	if errs[1] != nil {
		t.Fatalf("the request after the timeout failed with %v, want an answer on a new connection", errs[1])
	}
	if tc.net.dials != 2 {
		t.Fatalf("%d dials, want 2", tc.net.dials)
	}
}
