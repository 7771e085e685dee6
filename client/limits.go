package client

import "time"

// Limits of this package. Every queue and retry loop is bounded by one of
// these; the names carry their unit last.
const (
	// inflightRequestsMax bounds the requests awaiting a response on one
	// connection (Kafka's max.in.flight.requests.per.connection ceiling).
	inflightRequestsMax = 5
	// queuedRequestsMax bounds the requests waiting on one connection for the
	// handshake or a free in-flight slot.
	queuedRequestsMax = 4096
	// apiVersionsAttemptsMax bounds how often the handshake is retried at a
	// lower ApiVersions version on one connection.
	apiVersionsAttemptsMax = 3
	// backoffShiftMax bounds the exponent of the reconnect backoff.
	backoffShiftMax = 16
	// topicsMax bounds the topics a cluster tracks metadata for.
	topicsMax = 10_000
	// partitionsPerTopicMax bounds the partitions accepted per topic, so that
	// a corrupt Metadata response cannot make us allocate without limit.
	partitionsPerTopicMax = 100_000
	// metadataWaitersMax bounds the callbacks waiting on one metadata refresh.
	metadataWaitersMax = 100_000
	// producerBufferedRecordsMax is the hard ceiling on
	// ProducerConfig.BufferedRecordsMax.
	producerBufferedRecordsMax = 10_000_000
	// requestBytesMax bounds a Produce request (Kafka's max.request.size
	// ceiling; the broker's socket.request.max.bytes default is 100 MiB).
	requestBytesMax = 100 << 20
	// consumerBufferedRecordsMax is the hard ceiling on
	// ConsumerConfig.BufferedRecordsMax.
	consumerBufferedRecordsMax = 10_000_000
	// groupMembersMax bounds the members a group leader assigns.
	groupMembersMax = 10_000
	// pollRecordsMax bounds the records handed to one Poll callback.
	pollRecordsMax = 100_000
	// sequenceMax is the largest producer sequence number; sequences wrap to
	// zero after it, as in Kafka.
	sequenceMax = 1<<31 - 1
)

// Defaults shared by the configurations, named after the Kafka settings they
// mirror.
const (
	requestTimeoutDefault         = 30 * time.Second
	metadataMaxAgeDefault         = 5 * time.Minute
	reconnectBackoffDefault       = 50 * time.Millisecond
	reconnectBackoffMaxDefault    = 1 * time.Second
	connectionSetupTimeoutDefault = 10 * time.Second
	retryBackoffDefault           = 100 * time.Millisecond
)
