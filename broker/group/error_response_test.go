package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestErrorResponseCoversEveryGroupAPI checks that every API the
// coordinator serves, at every version it serves, gets an error answer that
// encodes and carries the error.
func TestErrorResponseCoversEveryGroupAPI(t *testing.T) {
	for _, v := range SupportedVersions() {
		for version := v.Min; version <= v.Max; version++ {
			req := kmsg.RequestForKey(v.Key)
			req.SetVersion(version)
			resp := ErrorResponse(req, kerr.CoordinatorLoadInProgress)
			if resp == nil {
				t.Fatalf("%s v%d: no error response", kmsg.NameForKey(v.Key), version)
			}
			if resp.GetVersion() != version {
				t.Errorf("%s v%d: response at version %d", kmsg.NameForKey(v.Key), version, resp.GetVersion())
			}
			decoded := req.ResponseKind()
			decoded.SetVersion(version)
			if err := decoded.ReadFrom(resp.AppendTo(nil)); err != nil {
				t.Errorf("%s v%d: the error response does not decode: %v", kmsg.NameForKey(v.Key), version, err)
			}
		}
	}
	if ErrorResponse(kmsg.NewPtrProduceRequest(), kerr.CoordinatorLoadInProgress) != nil {
		t.Error("a non-group request got a group error response")
	}
}
