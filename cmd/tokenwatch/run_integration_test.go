//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// buildBinary builds tokenwatch into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tokenwatch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

func produceLines(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	tr := &kafka.Transport{MetadataTTL: 200 * time.Millisecond}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchSize: 1000, BatchBytes: 4 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	msgs := make([]kafka.Message, 0, 5000)
	for i := range n {
		msgs = append(msgs, kafka.Message{Value: []byte(accessLine(strconv.Itoa(i)))})
		if len(msgs) == cap(msgs) || i == n-1 {
			for attempt := 0; ; attempt++ {
				err := w.WriteMessages(ctx, msgs...)
				if err == nil {
					break
				}
				if !errors.Is(err, kafka.UnknownTopicOrPartition) || attempt == 200 { // 20 s: past the writer's 6 s metadata refresh
					t.Fatalf("produce: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			msgs = msgs[:0]
		}
	}
}

type partOffset struct {
	partition int32
	offset    int64
}

// findingOffsets reads the findings file: the Kafka records processed, with how
// often each was seen. Lines cut by kill -9 (not JSON) are counted apart.
func findingOffsets(t *testing.T, path string) (seen map[partOffset]int, cut int) {
	t.Helper()
	seen = map[partOffset]int{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return seen, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l findingOut
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Partition == nil || l.Offset == nil {
			cut++
			continue
		}
		seen[partOffset{*l.Partition, *l.Offset}]++
	}
	return seen, cut
}

func lineCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func groupOffsets(t *testing.T, brokers []string, group, topic string, parts int) map[int]int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	ps := make([]int, parts)
	for i := range ps {
		ps[i] = i
	}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset // -1: nothing committed
	}
	return out
}

func endOffsets(t *testing.T, brokers []string, topic string) map[int]int64 {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range parts {
		lc, err := kafka.DialLeader(context.Background(), "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := lc.ReadLastOffset()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[p.ID] = last
	}
	return out
}

// checkCommittedProcessed asserts that every offset below a committed offset
// appears in the findings: nothing was committed ahead of processing.
func checkCommittedProcessed(t *testing.T, committed map[int]int64, seen map[partOffset]int) int64 {
	t.Helper()
	var total int64
	for p, c := range committed {
		for o := int64(0); o < c; o++ {
			if seen[partOffset{int32(p), o}] == 0 {
				t.Fatalf("partition %d: offset %d committed (group at %d) but never processed", p, o, c)
			}
		}
		total += max(c, 0)
	}
	return total
}

// kill -9 the consumer mid-stream, restart it: every record is processed at
// least once, and no committed offset was ever ahead of the processed records.
func TestRunKill9AtLeastOnce(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const parts, n = 4, 100_000
	topic := testenv.CreateTopic(t, "tw-run-kill9", parts)
	produceLines(t, brokers, topic, n)

	// The ends, not n: a produce retried after a partial failure may have
	// written some messages twice.
	end := endOffsets(t, brokers, topic)
	var total int
	for _, e := range end {
		total += int(e)
	}
	if total < n {
		t.Fatalf("topic holds %d messages, produced %d", total, n)
	}

	bin := buildBinary(t)
	dir := t.TempDir()
	findings := filepath.Join(dir, "findings.jsonl")
	group := "tw-kill9-" + topic
	cfg := writeConfig(t, fmt.Sprintf(`ingest:
  kafka:
    brokers: [%q]
    group_id: %s
    topics: [{name: %s, kind: auth}]
    batch_size: 200
    flush_interval: 20ms
    session_timeout: 6s
    heartbeat_interval: 500ms
output:
  findings_file: %s
`, brokers[0], group, topic, findings))
	type proc struct {
		cmd    *exec.Cmd
		exited chan error // receives Wait's result once the process ends
	}
	logs := func() string {
		var out string
		files, _ := filepath.Glob(filepath.Join(dir, "run-*.log"))
		for _, l := range files {
			b, _ := os.ReadFile(l)
			out += l + ":\n" + string(b)
		}
		return out
	}
	start := func() *proc {
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stdout = os.Stdout
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("run-%d.log", time.Now().UnixNano())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logf.Close() })
		cmd.Stderr = logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd: cmd, exited: make(chan error, 1)}
		go func() { p.exited <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		return p
	}
	// alive fails the test if the process ended by itself.
	alive := func(p *proc) {
		select {
		case err := <-p.exited:
			t.Fatalf("tokenwatch run exited by itself (%v); logs:\n%s", err, logs())
		default:
		}
	}

	// First run: kill -9 once a good share, but not all, is processed.
	p := start()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		// Count lines rather than parse them: the poll must not slow the
		// consumer down (2 cores).
		if lineCount(t, findings) >= n/5 {
			break
		}
		alive(p)
		if time.Now().After(deadline) {
			t.Fatalf("only %d records processed after 2 minutes; logs:\n%s", lineCount(t, findings), logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	seen, cut := findingOffsets(t, findings)
	committed := groupOffsets(t, brokers, group, topic, parts)
	done := checkCommittedProcessed(t, committed, seen)
	t.Logf("killed with SIGKILL: %d records processed, %d committed (per partition %v), %d cut lines", len(seen), done, committed, cut)
	if len(seen) >= n {
		t.Logf("note: every record was processed before the kill")
	}

	// Second run: picks up from the committed offsets, reaches the end, and
	// stops cleanly on SIGTERM with everything committed.
	p = start()
	deadline = time.Now().Add(90 * time.Second)
	for {
		if lineCount(t, findings) >= total {
			if seen, _ = findingOffsets(t, findings); len(seen) >= total {
				break
			}
		}
		alive(p)
		if time.Now().After(deadline) {
			seen, _ = findingOffsets(t, findings)
			for part := range parts {
				missing, first := 0, int64(-1)
				for o := int64(0); o < end[part]; o++ {
					if seen[partOffset{int32(part), o}] == 0 {
						if first < 0 {
							first = o
						}
						missing++
					}
				}
				t.Logf("partition %d: end %d, %d missing from offset %d", part, end[part], missing, first)
			}
			t.Logf("committed %v; logs:\n%s", groupOffsets(t, brokers, group, topic, parts), logs())
			t.Fatalf("after restart only %d of %d records processed", len(seen), total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.exited; err != nil {
		t.Fatalf("tokenwatch run after SIGTERM: %v (want exit 0); logs:\n%s", err, logs())
	}
	seen, cut = findingOffsets(t, findings)
	for p := range parts {
		for o := int64(0); o < end[p]; o++ {
			if seen[partOffset{int32(p), o}] == 0 {
				t.Fatalf("partition %d offset %d never processed", p, o)
			}
		}
	}
	committed = groupOffsets(t, brokers, group, topic, parts)
	for p := range parts {
		if committed[p] != end[p] {
			t.Errorf("partition %d: committed %d after a clean stop, end %d", p, committed[p], end[p])
		}
	}
	checkCommittedProcessed(t, committed, seen)
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("after restart: all %d records processed; %d processed twice (at-least-once), %d cut lines; committed %v", total, dups, cut, committed)
}
