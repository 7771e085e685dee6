// Command kctl is the admin and console tool for kafkasim, in the spirit of
// Kafka's kafka-topics.sh and Redpanda's rpk. It speaks the Kafka protocol
// through franz-go (kgo for producing and consuming, kadm for admin
// requests), so it works against any Kafka-compatible broker.
//
// Commands (kctl --help lists them; kctl COMMAND --help describes each
// with its flags and examples):
//
//	kctl topic create NAME... [-p partitions] [-r replication-factor] [-c key=value ...]
//	kctl topic list [--internal]
//	kctl topic describe NAME...
//	kctl topic config NAME [--set key=value ...] [--delete key ...]
//	kctl topic delete NAME...
//	kctl topic add-partitions NAME... -n COUNT
//	kctl produce TOPIC [-k key-separator] [-z codec] [--acks all|1|0] [-p partition]
//	kctl consume TOPIC [-g group] [-o start|end|OFFSET|-N] [-n count] [-e] [-f format]
//	kctl cluster
//	kctl group list
//	kctl group describe GROUP...
//	kctl group delete GROUP...
//	kctl group reset-offsets GROUP --topic TOPIC[:PARTITIONS]... MODE [--execute]
//	kctl perf produce TOPIC [-n records] [-s record-bytes] [--acks ...] [-z codec] ...
//	kctl perf consume TOPIC [-n records] [-g group]
//
// Global flags, accepted before or after the command: -b/--brokers
// (default 127.0.0.1:9092, or the KCTL_BROKERS environment variable) and
// --timeout (default 5s), which bounds connecting, every admin request and
// the delivery of each produced record.
//
// Exit status: 0 on success (and for --help), 1 when a request fails or no
// broker answers, 2 for bad flags or arguments. An argument error is one
// line naming the problem and the --help to read; Kafka error codes are
// printed with their names and descriptions; many records failing for one
// cause are one line with their count. Long runs draw a progress line only
// when stderr is a terminal.
//
// The command logic lives in run, which takes its arguments and streams as
// parameters so that tests drive it in-process against a real broker node.
// See docs/cli.md for examples.
package main
