package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/controller"
)

// controllerRequestWithOneItem returns the request of an API key with one
// item in each list an error answer repeats, so that an error answer has
// somewhere to carry its code.
func controllerRequestWithOneItem(t *testing.T, key int16) kmsg.Request {
	t.Helper()
	req := kmsg.RequestForKey(key)
	if req == nil {
		t.Fatalf("kmsg knows no request of key %d", key)
	}
	switch q := req.(type) {
	case *kmsg.CreateTopicsRequest:
		q.Topics = append(q.Topics, kmsg.CreateTopicsRequestTopic{Topic: "t"})
	case *kmsg.DeleteTopicsRequest:
		q.TopicNames = append(q.TopicNames, "t")
	case *kmsg.CreatePartitionsRequest:
		q.Topics = append(q.Topics, kmsg.CreatePartitionsRequestTopic{Topic: "t"})
	case *kmsg.IncrementalAlterConfigsRequest:
		q.Resources = append(q.Resources, kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t"})
	}
	return req
}

// TestNotControllerAnswersAreRecognised: for every request the controller
// serves, the NOT_CONTROLLER answer a node without an active controller
// gives is one that sendToController recognises and sends on to the next
// controller. An AllocateProducerIds answered NOT_CONTROLLER was once taken
// as final, and its answer, built without an error code, as an empty block.
func TestNotControllerAnswersAreRecognised(t *testing.T) {
	served := 0
	for key := int16(0); key < 100; key++ {
		if !controller.Serves(key) {
			continue
		}
		served++
		req := controllerRequestWithOneItem(t, key)
		resp := notControllerResponse(req)
		if !notController(resp) {
			t.Errorf("%s: the NOT_CONTROLLER answer %+v is not recognised", kmsg.NameForKey(key), resp)
		}
		if resp.Key() != key {
			t.Errorf("%s: answered with key %d", kmsg.NameForKey(key), resp.Key())
		}
		timedOut := controllerErrorResponse(req, kerr.RequestTimedOut)
		if notController(timedOut) {
			t.Errorf("%s: a REQUEST_TIMED_OUT answer is taken for NOT_CONTROLLER", kmsg.NameForKey(key))
		}
	}
	if served < 9 {
		t.Errorf("the controller serves %d keys, want at least 9", served)
	}
}
