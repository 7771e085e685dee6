package client

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// notAppendedCodes are the Produce error codes with which a broker rejects a
// batch before appending it: the attempt that got one certainly wrote
// nothing. Every other code, and every failure after a request was sent, may
// hide an append (for example NOT_LEADER_OR_FOLLOWER can answer an acks=all
// write that the old leader had already appended).
var notAppendedCodes = map[int16]bool{
	kerr.CorruptMessage.Code:                     true,
	kerr.UnknownTopicOrPartition.Code:            true,
	kerr.LeaderNotAvailable.Code:                 true,
	kerr.MessageTooLarge.Code:                    true,
	kerr.InvalidTopicException.Code:              true,
	kerr.RecordListTooLarge.Code:                 true,
	kerr.NotEnoughReplicas.Code:                  true,
	kerr.InvalidRequiredAcks.Code:                true,
	kerr.TopicAuthorizationFailed.Code:           true,
	kerr.ClusterAuthorizationFailed.Code:         true,
	kerr.InvalidTimestamp.Code:                   true,
	kerr.UnsupportedVersion.Code:                 true,
	kerr.UnsupportedForMessageFormat.Code:        true,
	kerr.PolicyViolation.Code:                    true,
	kerr.OutOfOrderSequenceNumber.Code:           true,
	kerr.InvalidProducerEpoch.Code:               true,
	kerr.InvalidTxnState.Code:                    true,
	kerr.InvalidProducerIDMapping.Code:           true,
	kerr.TransactionalIDAuthorizationFailed.Code: true,
	kerr.UnknownProducerID.Code:                  true,
	kerr.UnsupportedCompressionType.Code:         true,
	kerr.InvalidRecord.Code:                      true,
	kerr.ProducerFenced.Code:                     true,
}

// attemptMaybeWrote reports whether a failed produce attempt may have
// appended its batch.
func attemptMaybeWrote(err error) bool {
	var re *requestError
	if errors.As(err, &re) {
		return re.sent
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return !notAppendedCodes[ke.Code]
	}
	return true
}

// sequenceError reports the errors that say the broker's idempotence state
// for this producer does not match ours.
func sequenceError(err error) bool {
	return errors.Is(err, kerr.OutOfOrderSequenceNumber) ||
		errors.Is(err, kerr.UnknownProducerID) ||
		errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.ProducerFenced)
}

// staleMetadata reports errors after which the partition's leader should be
// looked up again.
func staleMetadata(err error) bool {
	var re *requestError
	if errors.As(err, &re) {
		return true
	}
	return errors.Is(err, kerr.NotLeaderForPartition) ||
		errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.FencedLeaderEpoch) ||
		errors.Is(err, kerr.UnknownLeaderEpoch) ||
		errors.Is(err, kerr.KafkaStorageError) ||
		errors.Is(err, kerr.NotCoordinator) ||
		errors.Is(err, kerr.CoordinatorNotAvailable)
}

// produceRetriable reports whether a produce attempt that failed with err
// may be retried.
func produceRetriable(err error) bool {
	if errors.Is(err, kerr.NotEnoughReplicasAfterAppend) || errors.Is(err, kerr.RequestTimedOut) {
		return true
	}
	return retriable(err)
}
