package controller

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/metadata"
)

// TopicConfigs computes a topic's configuration overrides after a list of
// changes (SET, DELETE, APPEND, SUBTRACT), or says why the changes are
// refused, wrapping a *kerr.Error (INVALID_REQUEST, INVALID_CONFIG). The
// broker supplies it: the controller knows no setting by itself, and the
// brokers must accept every configuration it commits.
type TopicConfigs func(current map[string]string, changes []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error)

// topicOverrides returns a topic's committed (or proposed) overrides in
// image.
func topicOverrides(image *metadata.Image, topic string) map[string]string {
	entries := image.Configs(metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: topic})
	overrides := make(map[string]string, len(entries))
	for _, e := range entries {
		overrides[e.Name] = e.Value
	}
	return overrides
}

// configRecords returns the ConfigRecords that turn before into after:
// each changed or new setting set, each removed one deleted, by name.
func configRecords(topic string, before, after map[string]string) []metadata.Record {
	resource := metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: topic}
	var records []metadata.Record
	names := slices.Sorted(maps.Keys(before))
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		old, had := before[name]
		now, has := after[name]
		switch {
		case has && (!had || old != now):
			value := now
			records = append(records, &metadata.ConfigRecord{Resource: resource, Name: name, Value: &value})
		case had && !has:
			records = append(records, &metadata.ConfigRecord{Resource: resource, Name: name})
		}
	}
	return records
}

// alterConfigs decides IncrementalAlterConfigs for topics, as Kafka's
// ConfigurationControlManager does: each resource named once (else every
// copy is INVALID_REQUEST), the topic must exist
// (UNKNOWN_TOPIC_OR_PARTITION), the changes must give a configuration the
// brokers accept (TopicConfigs), and the result is committed as
// ConfigRecords of the settings that changed, one entry for the request.
// Broker settings are static (INVALID_REQUEST). ValidateOnly decides and
// commits nothing.
func (c *Controller) alterConfigs(request *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrIncrementalAlterConfigsResponse()
	response.Version = request.Version
	d := c.newDecision()
	for i, resource := range request.Resources {
		answer := kmsg.NewIncrementalAlterConfigsResponseResource()
		answer.ResourceType, answer.ResourceName = resource.ResourceType, resource.ResourceName
		err := c.alterResource(d, request.Resources, i)
		answer.ErrorCode, answer.ErrorMessage = codeAndMessage(err)
		response.Resources = append(response.Resources, answer)
	}
	if request.ValidateOnly {
		return response, nil
	}
	return response, d.records
}

// alterResource decides one resource's changes into d.
func (c *Controller) alterResource(d *decision, resources []kmsg.IncrementalAlterConfigsRequestResource, index int) error {
	resource := resources[index]
	for i, other := range resources {
		if i != index && other.ResourceType == resource.ResourceType && other.ResourceName == resource.ResourceName {
			return fmt.Errorf("%w: each resource must appear at most once", kerr.InvalidRequest)
		}
	}
	switch resource.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return fmt.Errorf("%w: broker settings are static; change server.properties and restart", kerr.InvalidRequest)
	default:
		return fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, resource.ResourceType)
	}
	if c.config.TopicConfigs == nil {
		return fmt.Errorf("%w: this controller validates no topic configuration", kerr.InvalidRequest)
	}
	// A missing topic's changes are still validated first, as Kafka's
	// are, with nil as its current configuration (a new topic's).
	_, exists := d.scratch.TopicByName(resource.ResourceName)
	var before map[string]string
	if exists {
		before = topicOverrides(d.scratch, resource.ResourceName)
	}
	after, err := c.config.TopicConfigs(before, resource.Configs)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, resource.ResourceName)
	}
	if records := configRecords(resource.ResourceName, before, after); len(records) > 0 {
		return d.add(records)
	}
	return nil
}

// alterConfigsError is err for every resource of request.
func alterConfigsError(request *kmsg.IncrementalAlterConfigsRequest, err *kerr.Error) kmsg.Response {
	message := err.Message
	response := kmsg.NewPtrIncrementalAlterConfigsResponse()
	response.Version = request.Version
	for _, resource := range request.Resources {
		answer := kmsg.NewIncrementalAlterConfigsResponseResource()
		answer.ResourceType, answer.ResourceName = resource.ResourceType, resource.ResourceName
		answer.ErrorCode, answer.ErrorMessage = err.Code, &message
		response.Resources = append(response.Resources, answer)
	}
	return response
}
