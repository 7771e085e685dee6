package broker

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func supportAll(apiKey int16) (versionRange, bool) {
	if kmsg.RequestForKey(apiKey) == nil {
		return versionRange{}, false
	}
	return versionRange{0, kmsg.RequestForKey(apiKey).MaxVersion()}, true
}

// encodeRequest builds a frame the way a client does, with kmsg's own
// request formatter, so that decodeRequest is checked against an independent
// encoder.
func encodeRequest(req kmsg.Request, correlationID int32) []byte {
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test-client"))
	frame := formatter.AppendRequest(nil, req, correlationID)
	return frame[4:] // drop the size prefix, which the network strips
}

// TestDecodeRequestRoundTrip checks that requests encoded by kmsg's client
// side decode to the same header and body, for a flexible and a non-flexible
// version.
func TestDecodeRequestRoundTrip(t *testing.T) {
	for _, version := range []int16{4, 9, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(version)
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr("orders")
		req.Topics = append(req.Topics, topic)
		h, got, err := decodeRequest(encodeRequest(req, 77), supportAll)
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if h.apiKey != 3 || h.apiVersion != version || h.correlationID != 77 || h.clientID != "test-client" {
			t.Fatalf("v%d: header %+v", version, h)
		}
		md := got.(*kmsg.MetadataRequest)
		if len(md.Topics) != 1 || *md.Topics[0].Topic != "orders" {
			t.Fatalf("v%d: topics %+v", version, md.Topics)
		}
	}
}

// TestDecodeRequestRejectsBadFrames checks that short, truncated and
// unsupported frames give the right error class and never panic.
func TestDecodeRequestRejectsBadFrames(t *testing.T) {
	good := encodeRequest(kmsg.NewPtrApiVersionsRequest(), 1)
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, errMalformedRequest},
		{"short header", good[:5], errMalformedRequest},
		{"client id cut", append([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 9}, 'a'), errMalformedRequest},
		{"unknown key", append([]byte{0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, good[10:]...), errUnsupportedVersion},
		{"version too high", func() []byte {
			b := append([]byte(nil), good...)
			binary.BigEndian.PutUint16(b[2:], 999)
			return b
		}(), errUnsupportedVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decodeRequest(c.frame, supportAll)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestAppendResponseHeader checks the response header rules: flexible
// responses carry an empty tag section after the correlation id, except
// ApiVersions, whose header is always v0.
func TestAppendResponseHeader(t *testing.T) {
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(12) // flexible
	frame := appendResponse(nil, 5, md)
	if binary.BigEndian.Uint32(frame) != 5 || frame[4] != 0 {
		t.Fatalf("flexible header: % x", frame[:5])
	}
	back := kmsg.NewPtrMetadataResponse()
	back.SetVersion(12)
	if err := back.ReadFrom(frame[5:]); err != nil {
		t.Fatalf("body does not parse: %v", err)
	}

	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3) // flexible, but the header stays v0
	frame = appendResponse(nil, 6, av)
	parsed := kmsg.NewPtrApiVersionsResponse()
	parsed.SetVersion(3)
	if err := parsed.ReadFrom(frame[4:]); err != nil {
		t.Fatalf("ApiVersions body must follow the correlation id directly: %v", err)
	}
}
