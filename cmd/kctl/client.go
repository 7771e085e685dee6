package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// connect builds a client on the global options and checks that a broker
// answers within --timeout, so that an unreachable cluster is one readable
// line rather than a client retrying forever. The caller closes the client.
func (inv *invocation) connect(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := inv.global.seeds()
	if err != nil {
		return nil, err
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("kctl"),
		kgo.DialTimeout(inv.global.timeout),
		kgo.RetryTimeout(inv.global.timeout),
	}
	client, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("-b %s: %w", inv.global.brokers, err)
	}
	ctx, cancel := context.WithTimeout(inv.ctx, inv.global.timeout)
	defer cancel()
	if err := client.Ping(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("cannot reach any broker at %s: %s", strings.Join(seeds, ","), reachCause(err, inv))
	}
	return client, nil
}

// connectAdmin is connect for admin commands.
func (inv *invocation) connectAdmin() (*kadm.Client, func(), error) {
	client, err := inv.connect()
	if err != nil {
		return nil, nil, err
	}
	admin := kadm.NewClient(client)
	// The broker is asked to answer within most of --timeout, so that a
	// slow operation (a creation of thousands of partitions goes on after
	// the request's timeout) comes back as REQUEST_TIMED_OUT, which the
	// command can wait out, rather than as the client giving up.
	admin.SetTimeoutMillis(int32(max(inv.global.timeout.Milliseconds()*4/5, 1)))
	return admin, client.Close, nil
}

// withAdmin connects, runs f with an admin client and a context bounded by
// --timeout, and closes the connection: the frame of every admin command.
func (inv *invocation) withAdmin(f func(ctx context.Context, admin *kadm.Client) error) error {
	admin, closeAdmin, err := inv.connectAdmin()
	if err != nil {
		return err
	}
	defer closeAdmin()
	ctx, cancel := inv.requestContext()
	defer cancel()
	return f(ctx, admin)
}

// requestContext bounds one admin command's requests by --timeout.
func (inv *invocation) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(inv.ctx, inv.global.timeout)
}

// reachCause names why no broker answered in the fewest words: the errno of
// a failed dial ("connection refused"), a DNS failure, or the timeout.
func reachCause(err error, inv *invocation) string {
	var errno syscall.Errno
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %v (--timeout)", inv.global.timeout)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &dnsErr):
		return dnsErr.Error()
	}
	return oneLine(err.Error())
}

// kafkaError describes a failed request: the Kafka error name and
// description (kerr prints both) plus the broker's own message, if any.
func kafkaError(err error, brokerMessage string) string {
	text := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		text = fmt.Sprintf("%s (code %d): %s", ke.Message, ke.Code, ke.Description)
		// Brokers often repeat the code's name and description before their
		// own words; print those once.
		brokerMessage = strings.TrimPrefix(brokerMessage, ke.Error())
		brokerMessage = strings.TrimSpace(strings.TrimLeft(brokerMessage, ":"))
	}
	if brokerMessage != "" && !strings.Contains(text, brokerMessage) {
		text += " [broker: " + brokerMessage + "]"
	}
	return oneLine(text)
}

// brokerTooOld is how kgo reports a request the broker's ApiVersions does
// not list; kgo does not export the error value.
const brokerTooOld = "broker is too old"

// requestError wraps an error of a whole request (not of one topic or
// group) with what was asked, for the one-line report.
func requestError(what string, err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return fmt.Errorf("%s: %s", what, kafkaError(err, ""))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within --timeout: %w", what, err)
	}
	if strings.Contains(err.Error(), brokerTooOld) {
		return fmt.Errorf("%s: the broker does not implement this request (its ApiVersions does not list it)", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// reportf prints one failure line for one item of a multi-item command.
func (inv *invocation) reportf(format string, args ...any) {
	fmt.Fprintf(inv.stderr, "kctl: %s\n", oneLine(fmt.Sprintf(format, args...)))
}

// kafkaErrorName is the short name of an error for a table cell: the Kafka
// error code's name, or the whole text of any other error.
func kafkaErrorName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return oneLine(err.Error())
}

// topicIDText prints a topic id as Kafka's tools do (URL-safe base64
// without padding).
func topicIDText(id kadm.TopicID) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}
