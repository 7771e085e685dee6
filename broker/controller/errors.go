package controller

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrorResponse answers a request the controller serves (Serves) with one
// error everywhere its response has an error code: the top level, or every
// topic and partition it named. It is the answer when the controller is
// inactive, loses leadership, or cannot propose, and the broker's when no
// controller answers a request it forwards or sends.
func ErrorResponse(request kmsg.Request, err *kerr.Error) kmsg.Response {
	message := err.Message
	switch request := request.(type) {
	case *kmsg.BrokerRegistrationRequest:
		response := kmsg.NewPtrBrokerRegistrationResponse()
		response.Version, response.ErrorCode = request.Version, err.Code
		return response
	case *kmsg.BrokerHeartbeatRequest:
		response := kmsg.NewPtrBrokerHeartbeatResponse()
		response.Version, response.ErrorCode = request.Version, err.Code
		response.IsFenced = true
		return response
	case *kmsg.CreateTopicsRequest:
		response := kmsg.NewPtrCreateTopicsResponse()
		response.Version = request.Version
		for _, topic := range request.Topics {
			answer := kmsg.NewCreateTopicsResponseTopic()
			answer.Topic, answer.ErrorCode, answer.ErrorMessage = topic.Topic, err.Code, &message
			answer.NumPartitions, answer.ReplicationFactor = -1, -1
			response.Topics = append(response.Topics, answer)
		}
		return response
	case *kmsg.DeleteTopicsRequest:
		response := kmsg.NewPtrDeleteTopicsResponse()
		response.Version = request.Version
		for _, topic := range deleteTargets(request) {
			answer := kmsg.NewDeleteTopicsResponseTopic()
			answer.Topic, answer.TopicID, answer.ErrorCode, answer.ErrorMessage = topic.Topic, topic.TopicID, err.Code, &message
			response.Topics = append(response.Topics, answer)
		}
		return response
	case *kmsg.CreatePartitionsRequest:
		response := kmsg.NewPtrCreatePartitionsResponse()
		response.Version = request.Version
		for _, topic := range request.Topics {
			answer := kmsg.NewCreatePartitionsResponseTopic()
			answer.Topic, answer.ErrorCode, answer.ErrorMessage = topic.Topic, err.Code, &message
			response.Topics = append(response.Topics, answer)
		}
		return response
	case *kmsg.ElectLeadersRequest:
		return electLeadersError(request, err)
	case *kmsg.IncrementalAlterConfigsRequest:
		return alterConfigsError(request, err)
	case *kmsg.AlterPartitionRequest:
		response := kmsg.NewPtrAlterPartitionResponse()
		response.Version, response.ErrorCode = request.Version, err.Code
		return response
	case *kmsg.AllocateProducerIDsRequest:
		response := kmsg.NewPtrAllocateProducerIDsResponse()
		response.Version, response.ErrorCode = request.Version, err.Code
		response.ProducerIDStart = -1
		return response
	}
	panic("controller: no error response for an unserved request")
}

// electLeadersError sets the top-level code (version 1+) and, for version
// 0, which has none, every listed partition's.
func electLeadersError(request *kmsg.ElectLeadersRequest, err *kerr.Error) kmsg.Response {
	message := err.Message
	response := kmsg.NewPtrElectLeadersResponse()
	response.Version, response.ErrorCode = request.Version, err.Code
	for _, topic := range request.Topics {
		answer := kmsg.NewElectLeadersResponseTopic()
		answer.Topic = topic.Topic
		for _, partition := range topic.Partitions {
			result := kmsg.NewElectLeadersResponseTopicPartition()
			result.Partition, result.ErrorCode, result.ErrorMessage = partition, err.Code, &message
			answer.Partitions = append(answer.Partitions, result)
		}
		response.Topics = append(response.Topics, answer)
	}
	return response
}
