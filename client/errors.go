package client

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors reported by this package. Match them with errors.Is; broker error
// codes are reported as *kerr.Error values (match with errors.Is against the
// kerr variables, e.g. kerr.NotLeaderForPartition).
var (
	// ErrClosed reports an operation on, or cut short by, a closed client.
	ErrClosed = errors.New("client: closed")
	// ErrRequestTimeout reports that no response arrived within the request
	// timeout (request.timeout.ms).
	ErrRequestTimeout = errors.New("client: request timed out")
	// ErrConnectionSetupTimeout reports that a connection was not open and
	// through its handshake within the connection setup timeout
	// (socket.connection.setup.timeout.ms).
	ErrConnectionSetupTimeout = errors.New("client: connection setup timed out")
	// ErrConnectionLost reports that the connection broke before the
	// response arrived.
	ErrConnectionLost = errors.New("client: connection lost")
	// ErrTooManyRequests reports that a connection's request queue is full.
	ErrTooManyRequests = errors.New("client: too many queued requests")
	// ErrUnsupportedVersion reports that the broker supports no version of an
	// API that this client can speak.
	ErrUnsupportedVersion = errors.New("client: broker does not support a usable version of the API")
	// ErrProtocol reports a response that could not be parsed or did not
	// match its request.
	ErrProtocol = errors.New("client: protocol error")
	// ErrNoBroker reports that no broker address is known for a request.
	ErrNoBroker = errors.New("client: no broker known")
	// ErrDeliveryTimeout reports that a record was not acknowledged within
	// delivery.timeout.ms.
	ErrDeliveryTimeout = errors.New("client: delivery timeout expired")
	// ErrBufferFull reports that the producer already buffers its maximum
	// number of records.
	ErrBufferFull = errors.New("client: producer buffer full")
	// ErrCorruptFetch reports fetched data that failed the consumer's
	// validation (a CRC mismatch, a malformed batch): Kafka's
	// CORRUPT_MESSAGE, found by the client.
	ErrCorruptFetch = errors.New("client: fetched data failed validation")
	// ErrRecordTooLarge reports a record larger than max.request.size.
	ErrRecordTooLarge = errors.New("client: record too large")
	// ErrInvalidRecord reports a record the producer cannot send (e.g. an
	// empty topic name or a partition out of range).
	ErrInvalidRecord = errors.New("client: invalid record")
	// ErrInvalidConfig reports a bad configuration.
	ErrInvalidConfig = errors.New("client: invalid configuration")
	// ErrProducerReset reports that the idempotent producer had to take a new
	// producer id or epoch, which ends every batch numbered under the old one.
	ErrProducerReset = errors.New("client: idempotent producer identity reset")
	// ErrNotAssigned reports an operation on a partition the consumer does
	// not own.
	ErrNotAssigned = errors.New("client: partition not assigned")
	// ErrRebalance reports that a group operation was cut short by a
	// rebalance.
	ErrRebalance = errors.New("client: group rebalance in progress")
)

// requestError is a failure of one request before a response was parsed. It
// records whether the request's bytes had been handed to the network: if so,
// the broker may have executed it.
type requestError struct {
	err  error
	sent bool
}

func (e *requestError) Error() string {
	if e.sent {
		return fmt.Sprintf("%v (after the request was sent)", e.err)
	}
	return fmt.Sprintf("%v (request not sent)", e.err)
}

func (e *requestError) Unwrap() error { return e.err }

// errNotSent and errSent wrap err as a request failure.
func errNotSent(err error) error { return &requestError{err: err, sent: false} }
func errSent(err error) error    { return &requestError{err: err, sent: true} }

// requestMaybeExecuted reports whether a failed request may have been executed
// by the broker: it was sent and no response said otherwise.
func requestMaybeExecuted(err error) bool {
	var re *requestError
	if errors.As(err, &re) {
		return re.sent
	}
	return false
}

// kafkaError returns the error for a Kafka error code, nil for 0.
func kafkaError(code int16) error {
	return kerr.ErrorForCode(code)
}

// retriable reports whether a request failure is worth retrying: transport
// failures and Kafka's retriable error codes.
func retriable(err error) bool {
	var re *requestError
	if errors.As(err, &re) {
		return !errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnsupportedVersion)
	}
	return kerr.IsRetriable(err)
}
