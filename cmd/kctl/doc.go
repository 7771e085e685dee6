// Command kctl is the admin and console tool for kafkasim, in the spirit of
// Kafka's kafka-topics.sh and Redpanda's rpk. It speaks the Kafka protocol
// through franz-go (kgo for producing and consuming, kadm for admin
// requests), so it works against any Kafka-compatible broker.
//
// Commands:
//
//	kctl topic create NAME... [-p partitions] [-r replication-factor] [-c key=value ...]
//	kctl topic list [--internal]
//	kctl topic describe NAME...
//	kctl topic delete NAME...
//	kctl topic add-partitions NAME... -n COUNT
//	kctl produce TOPIC [-k key-separator] [-z codec] [--acks all|1|0] [-p partition]
//	kctl consume TOPIC [-g group] [-o start|end|OFFSET|-N] [-n count] [-e] [-f format]
//	kctl group list
//	kctl group describe GROUP...
//	kctl group delete GROUP...
//
// Global flags, accepted before or after the command: -b/--brokers
// (default 127.0.0.1:9092, or the KCTL_BROKERS environment variable) and
// --timeout (default 5s), which bounds connecting and every admin request.
//
// Exit status: 0 on success, 1 when a request fails or no broker answers,
// 2 for bad flags or arguments. Errors are one line each on stderr; Kafka
// error codes are printed with their names and descriptions.
//
// The command logic lives in run, which takes its arguments and streams as
// parameters so that tests drive it in-process against a real broker node.
// See docs/cli.md for examples.
package main
