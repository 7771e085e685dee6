package broker

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core"
)

const (
	// catalogFileName holds the durable list of topics in the log dir.
	catalogFileName = "topics.json"
	catalogBytesMax = 64 << 20
	catalogVersion  = 1
	// topicsMax bounds how many topics one broker holds.
	topicsMax = 10_000
	// topicNameBytesMax is Kafka's limit on topic names.
	topicNameBytesMax = 249
	// offsetsTopic is the internal topic holding committed offsets.
	offsetsTopic = "__consumer_offsets"
)

// topic is one topic and its partitions.
type topic struct {
	name       string
	id         [16]byte
	overrides  map[string]string
	config     topicConfig
	partitions []*partition
	internal   bool
	// growth is a CreatePartitions under way (catalog_chunk.go), or nil.
	growth *growth
}

// catalog owns the topics. Its durable form is catalogFileName, replaced
// atomically on every change; partition directories on disk that it does not
// name are leftovers of an interrupted create or delete and are removed at
// startup.
//
// Ordering rules that keep a crash harmless: a topic's partition logs are
// created before the catalog names it, and the catalog forgets a topic
// before its files are removed.
type catalog struct {
	node   *Node
	topics map[string]*topic
	byID   map[[16]byte]*topic
	// deleting are topics being deleted: gone for clients, but still
	// written to the catalog file (flagged) until their files are removed.
	deleting []catalogTopic
	// creating are topics being created across loop turns
	// (catalog_chunk.go): invisible to clients, their names and ids taken.
	creating []*creation
	// retentionWalking and syncWalking are set while a walk over every
	// partition (retention, flush) is under way across loop turns, so that
	// a timer never starts a second one beside it.
	retentionWalking, syncWalking bool
	// checkpointWalking is set while the recovery point checkpoint's walk
	// (durability.go) is going.
	checkpointWalking bool
	// openedAtStart counts the partitions New opened; the rest load after
	// Start (startup.go).
	openedAtStart int
}

type catalogFile struct {
	Version int            `json:"version"`
	Topics  []catalogTopic `json:"topics"`
}

type catalogTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	// Deleting marks a topic whose deletion was decided but whose files may
	// not all be gone yet; startup finishes the deletion.
	Deleting bool `json:"deleting,omitempty"`
	// Creating marks a topic whose creation was under way across loop
	// turns: it was never shown to clients, and startup removes its files
	// as it finishes a deletion.
	Creating bool `json:"creating,omitempty"`
}

func openCatalog(n *Node) (*catalog, error) {
	c := &catalog{node: n, topics: make(map[string]*topic), byID: make(map[[16]byte]*topic)}
	entries, err := c.readFile()
	if err != nil {
		return nil, err
	}
	for _, entry := range entries {
		if entry.Deleting || entry.Creating {
			entry.Deleting, entry.Creating = true, false
			c.deleting = append(c.deleting, entry)
			continue
		}
		if err := c.load(entry); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := c.finishDeletions(); err != nil {
		c.close()
		return nil, err
	}
	if err := c.removeLeftovers(); err != nil {
		c.close()
		return nil, err
	}
	if _, ok := c.topics[offsetsTopic]; !ok && !n.cfg.ClusterMode() {
		// In cluster mode the controller creates it, like every topic.
		if _, err := c.create(offsetsTopic, n.cfg.OffsetsTopicPartitions, nil); err != nil {
			c.close()
			return nil, fmt.Errorf("broker: create %s: %w", offsetsTopic, err)
		}
	}
	return c, nil
}

func (c *catalog) readFile() ([]catalogTopic, error) {
	fsys, dir := c.node.env.FS, c.node.cfg.LogDir
	data, err := core.ReadFileChecked(fsys, path.Join(dir, catalogFileName), catalogBytesMax)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: read topic catalog: %w", err)
	}
	var file catalogFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("broker: topic catalog %s is corrupt: %w", catalogFileName, err)
	}
	if file.Version != catalogVersion {
		return nil, fmt.Errorf("broker: topic catalog version %d, want %d", file.Version, catalogVersion)
	}
	return file.Topics, nil
}

func (c *catalog) load(entry catalogTopic) error {
	id, err := hex.DecodeString(entry.ID)
	if err != nil || len(id) != 16 {
		return fmt.Errorf("broker: topic %q has a corrupt id %q", entry.Name, entry.ID)
	}
	config, err := resolveTopicConfig(c.node.cfg, entry.Configs)
	if err != nil {
		return fmt.Errorf("broker: topic %q: %w", entry.Name, err)
	}
	config = internalTopicConfig(entry.Name, config)
	t := &topic{name: entry.Name, overrides: entry.Configs, config: config, internal: isInternalTopic(entry.Name)}
	copy(t.id[:], id)
	for i := range entry.Partitions {
		if !t.internal && c.openedAtStart >= c.node.startupPartitionsMax {
			// Opened after Start, a chunk per loop turn (startup.go).
			t.partitions = append(t.partitions, newLoadingPartition(c.node, t, i))
			continue
		}
		p, err := openPartition(c.node, t, i)
		if err != nil {
			closePartitions(t.partitions)
			return err
		}
		if !t.internal {
			c.openedAtStart++
		}
		t.partitions = append(t.partitions, p)
	}
	c.topics[t.name] = t
	c.byID[t.id] = t
	return nil
}

// Suffixes of partition directories that no topic owns (catalog_names.go
// has the whole names). A deleted topic's directories are renamed to end
// in deletedSuffix before they are removed, so a
// removal a crash interrupted is finished at startup. A directory the
// catalog does not name (a topic creation a crash interrupted) is renamed
// with orphanedSuffix and kept: the broker never destroys data that its
// metadata cannot explain.
const (
	deletedSuffix  = ".deleted"
	orphanedSuffix = ".orphaned"
)

// removeLeftovers finishes interrupted deletions and sets aside partition
// directories the catalog does not name.
func (c *catalog) removeLeftovers() error {
	fsys, dir := c.node.env.FS, c.node.cfg.LogDir
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("broker: list %s: %w", dir, err)
	}
	changed := false
	for _, entry := range entries {
		// A name ending in deletedSuffix is removed even when it also
		// contains orphanedSuffix: a topic may be called "x.orphaned".
		switch {
		case !entry.IsDir || c.namesPartitionDir(entry.Name) || entry.Name == metadataLogDirName:
			// The metadata log's directory belongs to the quorum
			// (broker/quorum), never to a topic: setting it aside
			// would forget the node's votes and its log.
			continue
		case strings.HasSuffix(entry.Name, deletedSuffix):
			err = fsys.RemoveAll(path.Join(dir, entry.Name))
		case strings.Contains(entry.Name, orphanedSuffix):
			continue
		default:
			c.node.log.Warn("setting aside a partition directory that no topic names", slog.String("dir", entry.Name))
			err = c.setAside(entry.Name, entries)
		}
		if err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return fsys.SyncDir(dir)
	}
	return nil
}

// setAside renames an unexplained directory to a free name ending in
// orphanedSuffix (see orphanedDirName), short enough for any file system.
func (c *catalog) setAside(name string, entries []core.DirEntry) error {
	taken := func(candidate string) bool {
		for _, e := range entries {
			if e.Name == candidate {
				return true
			}
		}
		return false
	}
	target := orphanedDirName(name, 1)
	for attempt := 2; taken(target); attempt++ {
		target = orphanedDirName(name, attempt)
	}
	dir := c.node.cfg.LogDir
	return c.node.env.FS.Rename(path.Join(dir, name), path.Join(dir, target))
}

func (c *catalog) namesPartitionDir(name string) bool {
	cut := strings.LastIndexByte(name, '-')
	if cut < 0 {
		return false
	}
	index, err := strconv.ParseInt(name[cut+1:], 10, 32)
	t, ok := c.topics[name[:cut]]
	return err == nil && ok && index >= 0 && index < int64(len(t.partitions))
}

// finishDeletions removes the files of topics whose deletion a crash
// interrupted, then forgets them.
func (c *catalog) finishDeletions() error {
	if len(c.deleting) == 0 {
		return nil
	}
	fsys, dir := c.node.env.FS, c.node.cfg.LogDir
	for _, entry := range c.deleting {
		for i := range entry.Partitions {
			for _, name := range doomedDirNames(entry, i) {
				if err := fsys.RemoveAll(path.Join(dir, name)); err != nil {
					return fmt.Errorf("broker: finish deleting topic %q: %w", entry.Name, err)
				}
			}
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return err
	}
	c.deleting = nil
	return c.save()
}

// doomedDirNames are the directory names partition index of a topic being
// deleted may have: live, renamed for deletion, and renamed for deletion by
// an older version (<live name>.deleted, only when that name can exist).
func doomedDirNames(entry catalogTopic, index int32) []string {
	live := partitionDirName(entry.Name, index)
	names := []string{live}
	if id, err := hex.DecodeString(entry.ID); err == nil && len(id) == 16 {
		names = append(names, deletedDirName(entry.Name, [16]byte(id), index))
	}
	if legacy := live + deletedSuffix; len(legacy) <= fileNameBytesMax {
		names = append(names, legacy)
	}
	return names
}

// save makes the current topic set durable.
func (c *catalog) save() error {
	file := catalogFile{Version: catalogVersion}
	for _, t := range c.sorted() {
		file.Topics = append(file.Topics, t.entry())
	}
	file.Topics = append(file.Topics, c.deleting...)
	file.Topics = append(file.Topics, c.creationIntents()...)
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	return core.WriteFileChecked(c.node.env.FS, c.node.cfg.LogDir, catalogFileName, data)
}

// entry is the catalog file's record of t.
func (t *topic) entry() catalogTopic {
	return catalogTopic{
		Name: t.name, ID: hex.EncodeToString(t.id[:]),
		Partitions: int32(len(t.partitions)), Configs: t.overrides,
	}
}

// sorted returns the topics ordered by name.
func (c *catalog) sorted() []*topic {
	topics := make([]*topic, 0, len(c.topics))
	for _, t := range c.topics { // order-independent: sorted below
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i].name < topics[j].name })
	return topics
}

// validateTopicName applies Kafka's rules for topic names.
func validateTopicName(name string) error {
	switch {
	case name == "" || name == "." || name == ".." || name == raft.MetadataTopic:
		return fmt.Errorf("%w: topic name %q is not allowed", kerr.InvalidTopicException, name)
	case len(name) > topicNameBytesMax:
		return fmt.Errorf("%w: topic name is %d bytes, limit %d", kerr.InvalidTopicException, len(name), topicNameBytesMax)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: topic name %q may contain only ASCII letters, digits, '.', '_' and '-'", kerr.InvalidTopicException, name)
		}
	}
	return nil
}

func isInternalTopic(name string) bool { return name == offsetsTopic }

// internalTopicConfig keeps retention away from internal topics: deleting
// old __consumer_offsets segments would forget committed offsets. Kafka
// compacts the topic instead; until compaction exists it keeps everything.
// Found by the simulator ('retention' fault): after a restart, groups
// resumed from offsets older than their last commits.
func internalTopicConfig(name string, c topicConfig) topicConfig {
	if isInternalTopic(name) {
		c.retentionBytes, c.retentionMs = -1, -1
	}
	return c
}

// create makes a new topic durable and returns it. Errors wrap Kafka error
// codes (kerr) for the response.
func (c *catalog) create(name string, partitions int32, overrides map[string]string) (*topic, error) {
	return c.createWithID(name, [16]byte{}, partitions, overrides)
}

// createWithID is create with the topic id given, as the metadata log
// names it in cluster mode; a zero id draws a fresh one.
func (c *catalog) createWithID(name string, id [16]byte, partitions int32, overrides map[string]string) (*topic, error) {
	if err := c.validateCreate(name, partitions, overrides); err != nil {
		return nil, err
	}
	t := c.newTopic(name, overrides)
	if id != ([16]byte{}) {
		t.id = id
	}
	if err := c.grow(t, partitions); err != nil {
		return nil, err
	}
	c.topics[name] = t
	c.byID[t.id] = t
	if err := c.save(); err != nil {
		delete(c.topics, name)
		delete(c.byID, t.id)
		c.discardPartitions(t, 0)
		return nil, fmt.Errorf("%w: saving the topic catalog: %v", kerr.KafkaStorageError, err)
	}
	c.node.log.Info("created topic", slog.String("topic", name), slog.Int("partitions", int(partitions)))
	return t, nil
}

// newTopic returns a topic without partitions and with a fresh id, for
// validated arguments.
func (c *catalog) newTopic(name string, overrides map[string]string) *topic {
	config, err := resolveTopicConfig(c.node.cfg, overrides)
	if err != nil {
		panic("broker: validated topic config does not resolve: " + err.Error())
	}
	config = internalTopicConfig(name, config)
	t := &topic{name: name, overrides: overrides, config: config, internal: isInternalTopic(name)}
	c.node.env.Rand.Fill(t.id[:])
	for c.idTaken(t.id) || t.id == ([16]byte{}) {
		c.node.env.Rand.Fill(t.id[:])
	}
	return t
}

// validateCreate checks everything create checks, without creating.
func (c *catalog) validateCreate(name string, partitions int32, overrides map[string]string) error {
	if err := validateTopicName(name); err != nil {
		return err
	}
	if err := checkTopicAbsent(c, name); err != nil {
		return err
	}
	if len(c.topics)+len(c.creating) >= topicsMax {
		return fmt.Errorf("%w: the broker already holds %d topics", kerr.PolicyViolation, topicsMax)
	}
	if partitions < 1 || partitions > partitionsPerTopicMax {
		return fmt.Errorf("%w: %d partitions, must be in [1, %d]", kerr.InvalidPartitions, partitions, partitionsPerTopicMax)
	}
	if _, err := resolveTopicConfig(c.node.cfg, overrides); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return nil
}

// grow opens partitions [len(t.partitions), count) of t.
func (c *catalog) grow(t *topic, count int32) error {
	from := int32(len(t.partitions))
	for i := from; i < count; i++ {
		p, err := openPartition(c.node, t, i)
		if err != nil {
			c.discardPartitions(t, from)
			return fmt.Errorf("%w: creating partition %d: %v", kerr.KafkaStorageError, i, err)
		}
		t.partitions = append(t.partitions, p)
	}
	// The partition directories must be durable before the catalog names
	// them; otherwise a crash could leave a named partition without files.
	if err := c.node.env.FS.SyncDir(c.node.cfg.LogDir); err != nil {
		c.discardPartitions(t, from)
		return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	return nil
}

// discardPartitions closes and removes partitions from index from on: each
// directory is first renamed to its deletedDirName, so that a removal a crash
// interrupts is finished at the next start rather than mistaken for data.
func (c *catalog) discardPartitions(t *topic, from int32) {
	c.discard(t, t.partitions[from:])
	t.partitions = t.partitions[:from]
}

// discard closes and removes partitions of t, as discardPartitions does.
func (c *catalog) discard(t *topic, partitions []*partition) {
	fsys := c.node.env.FS
	for _, p := range partitions {
		p.close()
		doomed := path.Join(c.node.cfg.LogDir, deletedDirName(t.name, t.id, p.index))
		if err := fsys.Rename(p.dir, doomed); err != nil {
			c.node.log.Warn("cannot mark partition directory deleted", slog.String("dir", p.dir), slog.Any("err", err))
			continue
		}
		if err := fsys.RemoveAll(doomed); err != nil {
			c.node.log.Warn("cannot remove partition directory", slog.String("dir", doomed), slog.Any("err", err))
		}
	}
}

// remove deletes a topic: first from the durable catalog, then its files.
func (c *catalog) remove(t *topic) error {
	if t.internal {
		return fmt.Errorf("%w: %s is internal", kerr.TopicAuthorizationFailed, t.name)
	}
	// The deletion is first made durable as an intent, so that a crash at
	// any later point finishes it at startup instead of leaving files that
	// no topic explains.
	entry := t.entry()
	entry.Deleting = true
	if t.growth != nil {
		c.abandonGrowth(t.growth, fmt.Errorf("%w: topic %q was deleted", kerr.UnknownTopicOrPartition, t.name))
	}
	delete(c.topics, t.name)
	delete(c.byID, t.id)
	c.deleting = append(c.deleting, entry)
	if err := c.save(); err != nil {
		c.topics[t.name] = t
		c.byID[t.id] = t
		c.deleting = c.deleting[:len(c.deleting)-1]
		return fmt.Errorf("%w: saving the topic catalog: %v", kerr.KafkaStorageError, err)
	}
	c.discardPartitions(t, 0)
	if err := c.finishDeletions(); err != nil {
		// The intent is durable; the next start completes the deletion.
		c.node.log.Warn("cannot finish deleting a topic", slog.String("topic", t.name), slog.Any("err", err))
	}
	c.node.log.Info("deleted topic", slog.String("topic", t.name))
	return nil
}

// partition returns a partition, or nil. A partition that recovery found
// corrupt, and so has no log, is nil to the handlers (Metadata reports it
// with LEADER_NOT_AVAILABLE); one that went offline while running answers
// KAFKA_STORAGE_ERROR from its own methods.
func (c *catalog) partition(name string, index int32) *partition {
	t := c.topics[name]
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return nil
	}
	if cl := c.node.cluster; cl != nil && !cl.leads(t, index) {
		// In cluster mode a local replica serves only while this broker
		// leads it in the metadata image.
		return nil
	}
	if p := t.partitions[index]; p.log != nil {
		return p
	}
	return nil
}

// enforceRetention applies retention to every partition, a chunk per loop
// turn (catalog_chunk.go); a call while the last walk is still under way
// does nothing.
func (c *catalog) enforceRetention(now time.Time) {
	if c.retentionWalking {
		return
	}
	c.retentionWalking = true
	c.eachPartitionInChunks(func(p *partition) { p.enforceRetention(now) }, func() { c.retentionWalking = false })
}

// syncAll flushes every partition (log.flush.interval.ms), a chunk per
// loop turn; a call while the last walk is still under way does nothing.
func (c *catalog) syncAll() {
	if c.syncWalking {
		return
	}
	c.syncWalking = true
	c.eachPartitionInChunks(func(p *partition) { p.sync() }, func() { c.syncWalking = false })
}

// close syncs and closes every partition; it returns the first error.
func (c *catalog) close() error {
	c.closeCreations()
	var first error
	for _, t := range c.sorted() {
		if t.growth != nil {
			c.abandonGrowth(t.growth, fmt.Errorf("%w: the broker is shutting down", kerr.RequestTimedOut))
		}
		if err := closePartitions(t.partitions); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func closePartitions(partitions []*partition) error {
	var first error
	for _, p := range partitions {
		if err := p.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// storageErrorCode maps a storage failure to the Kafka error a client sees.
func storageErrorCode(err error) error {
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	case errors.Is(err, storage.ErrCorruptBatch):
		return kerr.CorruptMessage
	case errors.Is(err, storage.ErrBatchTooLarge):
		return kerr.RecordListTooLarge
	case errors.Is(err, storage.ErrCorruptLog):
		// A read that came back inconsistent; the client retries, and the
		// next read usually succeeds (a transient flip on read).
		return kerr.KafkaStorageError
	}
	return kerr.KafkaStorageError
}
