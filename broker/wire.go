package broker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiKeyAPIVersions is the one API whose response header never carries
// tagged fields, so that a client can parse it before it knows our versions.
const apiKeyAPIVersions = 18

// requestHeaderBytesMin is the size of the smallest valid request header:
// api key, api version, correlation id and a null client id.
const requestHeaderBytesMin = 2 + 2 + 4 + 2

// Errors from decoding a request frame.
var (
	// errMalformedRequest means the frame could not be parsed. The Kafka
	// broker closes the connection, and so do we: the stream can no longer
	// be trusted to be in sync.
	errMalformedRequest = errors.New("malformed request")
	// errUnsupportedVersion means the API key is unknown to us or its
	// version is outside what we advertise.
	errUnsupportedVersion = errors.New("unsupported request version")
)

// requestHeader is the header that precedes every request body (request
// header v1, or v2 with tagged fields for flexible versions).
type requestHeader struct {
	apiKey        int16
	apiVersion    int16
	correlationID int32
	// clientID is empty when the client sent a null client id, as in Kafka.
	clientID string
}

// versionRange is the range of versions we implement for one API.
type versionRange struct {
	min, max int16
}

// decodeRequest parses one request frame (without its 4-byte size prefix).
// supported tells which versions of an API are implemented. On
// errUnsupportedVersion the header is valid and the request is nil; the
// caller answers ApiVersions with a downgrade hint and closes the connection
// for anything else, as Kafka does.
func decodeRequest(frame []byte, supported func(apiKey int16) (versionRange, bool)) (requestHeader, kmsg.Request, error) {
	var h requestHeader
	if len(frame) < requestHeaderBytesMin {
		return h, nil, fmt.Errorf("%w: %d byte frame is shorter than a request header", errMalformedRequest, len(frame))
	}
	reader := kbin.Reader{Src: frame}
	h.apiKey = reader.Int16()
	h.apiVersion = reader.Int16()
	h.correlationID = reader.Int32()
	if clientID := reader.NullableString(); clientID != nil {
		h.clientID = *clientID
	}
	if err := reader.Complete(); err != nil {
		return h, nil, fmt.Errorf("%w: header: %v", errMalformedRequest, err)
	}
	versions, ok := supported(h.apiKey)
	if !ok || h.apiVersion < versions.min || h.apiVersion > versions.max {
		return h, nil, fmt.Errorf("%w: %s (key %d) v%d", errUnsupportedVersion, kmsg.NameForKey(h.apiKey), h.apiKey, h.apiVersion)
	}
	req := kmsg.RequestForKey(h.apiKey)
	if req == nil {
		return h, nil, fmt.Errorf("%w: unknown api key %d", errUnsupportedVersion, h.apiKey)
	}
	req.SetVersion(h.apiVersion)
	if req.IsFlexible() {
		kmsg.SkipTags(&reader)
		if err := reader.Complete(); err != nil {
			return h, nil, fmt.Errorf("%w: header tags: %v", errMalformedRequest, err)
		}
	}
	if err := req.ReadFrom(reader.Src); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d body: %v", errMalformedRequest, kmsg.NameForKey(h.apiKey), h.apiVersion, err)
	}
	return h, req, nil
}

// appendResponse appends a response frame (without its 4-byte size prefix,
// which the network adds): the correlation id, the response header's tagged
// fields for flexible versions (never for ApiVersions), then the body.
func appendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != apiKeyAPIVersions {
		dst = append(dst, 0) // no tagged fields
	}
	return resp.AppendTo(dst)
}
