package alerts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Item is one message read from the outbox or the dead-letter queue.
type Item struct {
	Value []byte
	// Key is the Kafka message key (the fingerprint), "" for files.
	Key       string
	Partition int
	// Offset is the Kafka offset, or for files the byte offset just past the line.
	Offset int64
	msg    kafka.Message
	done   bool
}

// Source is what the dispatcher reads: the outbox (unbounded) or a dead-letter
// queue (bounded, for replay).
//
// Fetch returns the next message, io.EOF when a bounded source is exhausted.
// Commit marks it and every earlier message of its partition as processed, so a
// restart resumes after it.
type Source interface {
	Fetch(ctx context.Context) (*Item, error)
	Commit(ctx context.Context, it *Item) error
	Close() error
}

// KafkaSource reads a topic with a consumer group and commits synchronously.
type KafkaSource struct {
	r *kafka.Reader
	// end holds, for bounded sources, the high-water mark per partition at start;
	// messages at or past it are not returned.
	end       map[int]int64
	remaining map[int]bool
}

// NewKafkaSource returns an unbounded source on topic for group. After a crash,
// the partitions of the dead member are reassigned once its session times out
// (sessionTimeout; 0 means kafka-go's default of 30 s).
func NewKafkaSource(brokers []string, topic, group string, sessionTimeout time.Duration) *KafkaSource {
	return &KafkaSource{r: newGroupReader(brokers, topic, group, sessionTimeout)}
}

func newGroupReader(brokers []string, topic, group string, sessionTimeout time.Duration) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		SessionTimeout:        sessionTimeout,
		HeartbeatInterval:     max(sessionTimeout/10, 100*time.Millisecond),
		Brokers:               brokers,
		GroupID:               group,
		Topic:                 topic,
		MinBytes:              1,
		MaxBytes:              16 << 20,
		MaxWait:               250 * time.Millisecond,
		ReadBackoffMin:        10 * time.Millisecond,
		ReadBackoffMax:        250 * time.Millisecond,
		StartOffset:           kafka.FirstOffset,
		CommitInterval:        0, // synchronous commits, driven by the dispatcher
		WatchPartitionChanges: true,
	})
}

// NewBoundedKafkaSource returns a source on topic for group that stops (io.EOF)
// once it has returned every message that was in the topic when it started and
// that group had not committed yet.
func NewBoundedKafkaSource(ctx context.Context, brokers []string, topic, group string) (*KafkaSource, error) {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of topic %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s: not found (%v)", topic, topicErr(md))
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of topic %s: %w", topic, err)
	}
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w", group, topic, err)
	}
	committed := map[int]int64{}
	for _, p := range of.Topics[topic] {
		committed[p.Partition] = p.CommittedOffset
	}
	s := &KafkaSource{end: map[int]int64{}, remaining: map[int]bool{}}
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		s.end[p.Partition] = p.LastOffset
		start := p.FirstOffset
		if c, ok := committed[p.Partition]; ok && c > start {
			start = c
		}
		if start < p.LastOffset {
			s.remaining[p.Partition] = true
		}
	}
	if len(s.remaining) > 0 {
		s.r = newGroupReader(brokers, topic, group, 0)
	}
	return s, nil
}

func topicErr(md *kafka.MetadataResponse) error {
	if len(md.Topics) > 0 {
		return md.Topics[0].Error
	}
	return errors.New("no metadata")
}

// Fetch implements Source.
func (s *KafkaSource) Fetch(ctx context.Context) (*Item, error) {
	for {
		if s.end != nil && len(s.remaining) == 0 {
			return nil, io.EOF
		}
		m, err := s.r.FetchMessage(ctx)
		if err != nil {
			return nil, err
		}
		if s.end != nil {
			end, ok := s.end[m.Partition]
			if !ok || m.Offset >= end {
				// Written after the start (or a new partition): not ours this run.
				delete(s.remaining, m.Partition)
				continue
			}
			if m.Offset == end-1 {
				delete(s.remaining, m.Partition)
			}
		}
		return &Item{Value: m.Value, Key: string(m.Key), Partition: m.Partition, Offset: m.Offset, msg: m}, nil
	}
}

// Commit implements Source.
func (s *KafkaSource) Commit(ctx context.Context, it *Item) error {
	if err := s.r.CommitMessages(ctx, it.msg); err != nil {
		return fmt.Errorf("commit %s/%d@%d: %w", it.msg.Topic, it.Partition, it.Offset, err)
	}
	return nil
}

// Close implements Source.
func (s *KafkaSource) Close() error {
	if s.r == nil {
		return nil
	}
	return s.r.Close()
}

// FileSource reads a JSON-lines queue file from a cursor kept in a side file
// (written atomically on Commit). Unbounded sources follow the file as it grows;
// bounded ones stop at its size at open.
type FileSource struct {
	f      *os.File
	br     *bufio.Reader
	cursor string
	pos    int64
	limit  int64 // -1: follow
	poll   time.Duration
	// partial is a line read without its newline yet.
	partial []byte
	done    atomic.Int64 // pos, for caughtUp (read by another goroutine)
}

// NewFileSource opens path from the position stored in cursorPath (0 when none).
func NewFileSource(path, cursorPath string, bounded bool) (*FileSource, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open alerts queue file %s: %w", path, err)
	}
	s := &FileSource{f: f, cursor: cursorPath, limit: -1, poll: 20 * time.Millisecond}
	if b, err := os.ReadFile(cursorPath); err == nil {
		n, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil || n < 0 {
			f.Close()
			return nil, fmt.Errorf("cursor file %s does not hold a byte offset; delete it to start from the beginning", cursorPath)
		}
		s.pos = n
		s.done.Store(n)
	} else if !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, fmt.Errorf("read cursor file %s: %w", cursorPath, err)
	}
	if bounded {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("stat %s: %w", path, err)
		}
		s.limit = st.Size()
	}
	if _, err := f.Seek(s.pos, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek %s: %w", path, err)
	}
	s.br = bufio.NewReaderSize(f, 64<<10)
	return s, nil
}

// Fetch implements Source. A partial last line (a writer mid-append) is kept
// and completed on a later call.
func (s *FileSource) Fetch(ctx context.Context) (*Item, error) {
	for {
		if s.limit >= 0 && s.pos >= s.limit {
			return nil, io.EOF
		}
		chunk, err := s.br.ReadBytes('\n')
		s.partial = append(s.partial, chunk...)
		if err == nil || (err == io.EOF && s.limit >= 0 && s.pos+int64(len(s.partial)) >= s.limit) {
			// A whole line, or the rest of a bounded file.
			s.pos += int64(len(s.partial))
			s.done.Store(s.pos)
			v := bytes.TrimSpace(s.partial)
			s.partial = nil
			if len(v) == 0 {
				continue
			}
			return &Item{Value: v, Offset: s.pos}, nil
		}
		if err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", s.f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.poll):
		}
	}
}

// Commit implements Source.
func (s *FileSource) Commit(_ context.Context, it *Item) error {
	return writeFileAtomic(s.cursor, []byte(strconv.FormatInt(it.Offset, 10)+"\n"))
}

// Close implements Source.
func (s *FileSource) Close() error { return s.f.Close() }

// caughtUp is called from another goroutine than Fetch (the in-process
// dispatcher's drain loop), so it reads only the atomic copy of the position
// of the last whole line handed out.
func (s *FileSource) caughtUp() bool {
	st, err := s.f.Stat()
	return err == nil && s.done.Load() >= st.Size()
}

func (s *KafkaSource) caughtUp() bool { return s.r == nil || s.r.Lag() <= 0 }
