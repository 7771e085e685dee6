package client

// apiRange is the range of versions of one API that this client can speak.
// The upper ends stop before versions whose semantics we do not implement
// (for example Fetch v13 and Produce v13, which name topics by id).
type apiRange struct {
	min, max int16
}

// apiKeysMax bounds the API keys we track; it exceeds every key we use.
const apiKeysMax = 100

// Kafka API keys used by this client.
const (
	keyProduce         int16 = 0
	keyFetch           int16 = 1
	keyListOffsets     int16 = 2
	keyMetadata        int16 = 3
	keyOffsetCommit    int16 = 8
	keyOffsetFetch     int16 = 9
	keyFindCoordinator int16 = 10
	keyJoinGroup       int16 = 11
	keyHeartbeat       int16 = 12
	keyLeaveGroup      int16 = 13
	keySyncGroup       int16 = 14
	keyApiVersions     int16 = 18
	keyCreateTopics    int16 = 19
	keyDeleteTopics    int16 = 20
	keyInitProducerID  int16 = 22
)

// clientVersions lists what this client speaks. Minimums are where the
// semantics we rely on begin: Produce v3 and Fetch v4 carry v2 record
// batches (and Fetch v4 the isolation level), Metadata v1 distinguishes "no
// topics" from "all topics", ListOffsets v1 returns one offset.
var clientVersions = map[int16]apiRange{
	keyProduce:         {3, 12},
	keyFetch:           {4, 12},
	keyListOffsets:     {1, 8},
	keyMetadata:        {1, 12},
	keyOffsetCommit:    {2, 8},
	keyOffsetFetch:     {1, 7},
	keyFindCoordinator: {0, 3},
	keyJoinGroup:       {0, 9},
	keyHeartbeat:       {0, 4},
	keyLeaveGroup:      {0, 5},
	keySyncGroup:       {0, 5},
	keyApiVersions:     {0, 3},
	keyCreateTopics:    {0, 7},
	keyDeleteTopics:    {0, 5},
	keyInitProducerID:  {0, 4},
}

// brokerVersions is what one broker advertised: for each key the highest
// version usable with this client, or -1.
type brokerVersions [apiKeysMax]int16

// newBrokerVersions returns a table where nothing is usable.
func newBrokerVersions() brokerVersions {
	var v brokerVersions
	for i := range v {
		v[i] = -1
	}
	return v
}

// accept records that the broker supports versions [min, max] of key, and
// keeps the highest version both sides support.
func (v *brokerVersions) accept(key, brokerMin, brokerMax int16) {
	ours, ok := clientVersions[key]
	if !ok || key < 0 || int(key) >= apiKeysMax {
		return
	}
	high := min(ours.max, brokerMax)
	low := max(ours.min, brokerMin)
	if high < low {
		return
	}
	v[key] = high
}

// usable returns the version to use for key, or false.
func (v *brokerVersions) usable(key int16) (int16, bool) {
	if key < 0 || int(key) >= apiKeysMax || v[key] < 0 {
		return 0, false
	}
	return v[key], true
}
