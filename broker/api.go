package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one Kafka API the broker implements.
type api struct {
	versions versionRange
	// handle answers req through r.respond, exactly once, now or later.
	handle func(n *Node, r *request, req kmsg.Request)
}

// apis maps API keys to their handlers; see the api_*.go files, one per API.
// ApiVersions advertises exactly these keys and ranges.
var apis map[int16]api

func init() {
	apis = map[int16]api{
		0:  {versionRange{0, 11}, handleProduce},
		1:  {versionRange{4, 15}, handleFetch},
		2:  {versionRange{0, 6}, handleListOffsets},
		3:  {versionRange{0, 12}, handleMetadata},
		18: {versionRange{0, 3}, handleAPIVersions},
		19: {versionRange{0, 7}, handleCreateTopics},
		20: {versionRange{0, 6}, handleDeleteTopics},
		22: {versionRange{0, 4}, handleInitProducerID},
		23: {versionRange{0, 4}, handleOffsetForLeaderEpoch},
		32: {versionRange{0, 4}, handleDescribeConfigs},
		37: {versionRange{0, 3}, handleCreatePartitions},
		44: {versionRange{0, 1}, handleIncrementalAlterConfigs},
		43: {versionRange{0, 2}, handleElectLeaders},
		55: {versionRange{0, 0}, handleDescribeQuorum},
		60: {versionRange{0, 2}, handleDescribeCluster},
	}
	registerGroupAPIs(apis)
}

func supportedVersions(apiKey int16) (versionRange, bool) {
	a, ok := apis[apiKey]
	return a.versions, ok
}

// apiVersionsKeys is the ApiVersions response body, sorted by key.
func apiVersionsKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for key, a := range apis { // order-independent: sorted below
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, a.versions.min, a.versions.max
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

// handleAPIVersions answers ApiVersions (key 18): the keys and versions we
// implement, no features.
func handleAPIVersions(n *Node, r *request, req kmsg.Request) {
	resp := req.(*kmsg.ApiVersionsRequest).ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, k := range apiVersionsKeys() {
		if n.cluster == nil && clusterOnlyAPIs[k.ApiKey] {
			continue
		}
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	r.respond(resp)
}

// apiVersionsDowngrade is the answer to an ApiVersions request of a version
// we do not speak (KIP-511): a v0 response with UNSUPPORTED_VERSION and our
// ApiVersions range, after which the client retries at our maximum.
func apiVersionsDowngrade() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey = apiKeyAPIVersions
	k.MinVersion, k.MaxVersion = apis[apiKeyAPIVersions].versions.min, apis[apiKeyAPIVersions].versions.max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

// errorCode returns the Kafka error code an error wraps (kerr), or
// UNKNOWN_SERVER_ERROR for anything else; nil is 0.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	if ke, ok := asKafkaError(err); ok {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
