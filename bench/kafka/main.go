// Command kafka measures how fast `tokenwatch run` consumes a Kafka topic
// compared with a bare kafka-go consumer on the same topic, in the same run.
//
//	go run ./bench/kafka -corpus FILE [-brokers 127.0.0.1:19092] [-partitions 4] [-rounds 2]
//
// It produces every line of FILE (see bench/corpus gen -mode bench: realistic
// log lines, about one credential per 1000) as one message to a new topic, then
// consumes the whole topic, alternately:
//
//   - bare: a kafka-go Reader in a consumer group, FetchMessage in batches of
//     the same size as tokenwatch's, CommitMessages after each batch (the
//     cheapest at-least-once consumer one can write with kafka-go);
//   - tokenwatch: ingest.KafkaSource + pipeline.Run with the scan (detect) and
//     parse stages and a null sink, i.e. `tokenwatch run` without output.
//
// Each consumer uses a fresh group and reads from the earliest offset. Timing
// starts at the first message and ends when the last one is committed, so group
// join time is not counted for either. A warm-up round of each comes first,
// unmeasured. It prints records/s and MB/s of each and
// the ratio tokenwatch/bare (target >= 0.7).
//
// bench/kafka.sh runs it against the test Kafka with a generated corpus.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
	"github.com/tokenwatch/tokenwatch/pipeline"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/kafka:", err)
		os.Exit(1)
	}
}

type result struct {
	Name      string  `json:"name"`
	Round     int     `json:"round"`
	Records   int     `json:"records"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	RecPerSec float64 `json:"records_per_second"`
	MBPerSec  float64 `json:"mb_per_second"`
	Findings  int64   `json:"findings,omitempty"`
	// CPUSeconds is the user+system CPU time this process spent in the round
	// (the broker's is not counted).
	CPUSeconds float64 `json:"cpu_seconds"`
}

func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func run() error {
	brokersFlag := flag.String("brokers", envOr("TOKENWATCH_TEST_KAFKA", "127.0.0.1:19092"), "Kafka bootstrap broker")
	corpus := flag.String("corpus", "", "log file to produce, one message per line (required)")
	partitions := flag.Int("partitions", 4, "partitions of the benchmark topic")
	rounds := flag.Int("rounds", 3, "measured consume rounds per consumer (alternating bare, tokenwatch)")
	warmup := flag.Int("warmup", 1, "unmeasured rounds per consumer first (heap growth, page cache, scanner tables)")
	batch := flag.Int("batch", 4096, "records per batch (both consumers)")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	flag.IntVar(&scanWorkers, "scan-workers", 1, "goroutines scanning one batch (pipeline.Parallel)")
	flag.BoolVar(&sourceOnly, "source-only", false, "tokenwatch rounds without the scan and parse stages (to isolate the source)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the tokenwatch rounds to this file")
	flag.Parse()
	if *corpus == "" {
		return errors.New("-corpus is required")
	}
	brokers := []string{*brokersFlag}

	lines, nbytes, err := readLines(*corpus)
	if err != nil {
		return err
	}
	n := len(lines)
	topic := fmt.Sprintf("tw-bench-%d", time.Now().UnixNano())
	fmt.Printf("corpus %s: %d lines, %.1f MB; topic %s, %d partitions, broker %s; %d cores, %s\n",
		*corpus, n, float64(nbytes)/1e6, topic, *partitions, brokers[0], runtime.NumCPU(), runtime.Version())
	if err := createTopic(brokers[0], topic, *partitions); err != nil {
		return err
	}
	t0 := time.Now()
	if err := produce(brokers, topic, lines); err != nil {
		return err
	}
	fmt.Printf("produced in %.1fs\n", time.Since(t0).Seconds())
	lines = nil // give the corpus back to the GC before measuring
	runtime.GC()

	var results []result
	sum := map[string]float64{}
	for r := 1 - *warmup; r <= *rounds; r++ {
		for _, name := range []string{"bare", "tokenwatch"} {
			group := fmt.Sprintf("%s-%s-%d", topic, name, r)
			var res result
			var err error
			cpu0 := cpuTime()
			if name == "bare" {
				res, err = consumeBare(brokers, topic, group, *batch, n)
			} else {
				if *cpuProfile != "" {
					f, err := os.Create(*cpuProfile)
					if err != nil {
						return err
					}
					if err := pprof.StartCPUProfile(f); err != nil {
						return err
					}
				}
				res, err = consumeTokenwatch(brokers, topic, group, *batch, n)
				if *cpuProfile != "" {
					pprof.StopCPUProfile()
				}
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %w", name, r, err)
			}
			if r < 1 {
				fmt.Printf("warm-up    %-10s %9d records in %6.2fs\n", name, res.Records, res.Seconds)
				continue
			}
			res.Name, res.Round = name, r
			res.CPUSeconds = cpuTime() - cpu0
			res.RecPerSec = float64(res.Records) / res.Seconds
			res.MBPerSec = float64(res.Bytes) / 1e6 / res.Seconds
			results = append(results, res)
			sum[name] += res.RecPerSec
			extra := ""
			if res.Findings > 0 {
				extra = fmt.Sprintf(", %d findings", res.Findings)
			}
			fmt.Printf("round %d %-10s %9d records in %6.2fs: %10.0f records/s %7.1f MB/s, %.2f CPU s%s\n",
				r, name, res.Records, res.Seconds, res.RecPerSec, res.MBPerSec, res.CPUSeconds, extra)
		}
	}
	ratio := sum["tokenwatch"] / sum["bare"]
	fmt.Printf("ratio tokenwatch/bare (mean of %d rounds): %.2f (target >= 0.70)\n", *rounds, ratio)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"topic": topic, "records": n, "bytes": nbytes, "results": results, "ratio": ratio, "cores": runtime.NumCPU()}, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

var (
	sourceOnly  bool
	scanWorkers int
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func readLines(path string) ([][]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("read corpus: %w", err)
	}
	var lines [][]byte
	var n int64
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		lines = append(lines, l)
		n += int64(len(l))
	}
	return lines, n, nil
}

func createTopic(broker, topic string, partitions int) error {
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		return fmt.Errorf("dial %s: %w", broker, err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller: %w", err)
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	return nil
}

func produce(brokers []string, topic string, lines [][]byte) error {
	tr := &kafka.Transport{MetadataTTL: time.Second}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{},
		BatchSize: 10000, BatchBytes: 16 << 20, BatchTimeout: 10 * time.Millisecond,
		RequiredAcks: kafka.RequireOne, Transport: tr,
	}
	defer w.Close()
	ctx := context.Background()
	msgs := make([]kafka.Message, 0, 20000)
	for i, l := range lines {
		msgs = append(msgs, kafka.Message{Value: l})
		if len(msgs) < cap(msgs) && i < len(lines)-1 {
			continue
		}
		for attempt := 0; ; attempt++ {
			err := w.WriteMessages(ctx, msgs...)
			if err == nil {
				break
			}
			if !errors.Is(err, kafka.UnknownTopicOrPartition) || attempt == 100 {
				return fmt.Errorf("produce: %w", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		msgs = msgs[:0]
	}
	return nil
}

// consumeBare is the baseline: a consumer-group Reader, FetchMessage in
// batches (flushed after 200ms like tokenwatch's), a commit of the batch's
// messages after each batch.
func consumeBare(brokers []string, topic, group string, batch, n int) (result, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, GroupTopics: []string{topic},
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
		QueueCapacity: 8192, HeartbeatInterval: 3 * time.Second, SessionTimeout: 30 * time.Second,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var res result
	var start time.Time
	msgs := make([]kafka.Message, 0, batch)
	for res.Records < n {
		msgs = msgs[:0]
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return res, err
		}
		msgs = append(msgs, m)
		fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		for len(msgs) < batch && res.Records+len(msgs) < n {
			m, err := r.FetchMessage(fctx)
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		fcancel()
		if start.IsZero() {
			start = time.Now() // like tokenwatch: from the first complete batch
		}
		for i := range msgs {
			res.Bytes += int64(len(msgs[i].Value))
		}
		if err := r.CommitMessages(ctx, msgs...); err != nil {
			return res, fmt.Errorf("commit: %w", err)
		}
		res.Records += len(msgs)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// counter is the null sink: it counts records and findings and cancels the run
// once every record went through.
type counter struct {
	n, want  int
	bytes    int64
	findings int64
	start    time.Time
	cancel   context.CancelFunc
}

func (c *counter) Process(_ context.Context, b *tokenwatch.Batch) error {
	if c.start.IsZero() {
		panic("BUG: counter saw a batch before the first record was timed")
	}
	c.n += len(b.Records)
	c.bytes += int64(b.Bytes())
	for i := range b.Records {
		c.findings += int64(len(b.Records[i].Findings))
	}
	if c.n >= c.want {
		c.cancel()
	}
	return nil
}

// startTimer is the first stage: it notes when the first batch arrived.
type startTimer struct{ c *counter }

func (s startTimer) Process(context.Context, *tokenwatch.Batch) error {
	if s.c.start.IsZero() {
		s.c.start = time.Now()
	}
	return nil
}

// consumeTokenwatch runs what `tokenwatch run` runs: the Kafka source, scan and
// parse, with a null sink, committing after every batch.
func consumeTokenwatch(brokers []string, topic, group string, batch, n int) (result, error) {
	cfg := ingest.DefaultConfig().Kafka
	cfg.Brokers, cfg.GroupID = brokers, group
	cfg.Topics = []ingest.TopicConfig{{Name: topic, Kind: "auth"}}
	cfg.BatchSize = batch
	src, err := ingest.NewKafkaSource(cfg, ingest.DefaultConfig().MaxRecordBytes)
	if err != nil {
		return result{}, err
	}
	defer src.Close()
	scanner, err := detect.New(detect.WithKey([]byte("tokenwatch-bench-fingerprint-key")))
	if err != nil {
		return result{}, err
	}
	parser, err := parse.New(parse.DefaultConfig(), parse.WithFingerprinter(scanner))
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := &counter{want: n, cancel: cancel}
	stages := []tokenwatch.Stage{startTimer{c}, pipeline.Parallel(scanner, scanWorkers, 512), parser, c}
	if sourceOnly {
		stages = []tokenwatch.Stage{startTimer{c}, c}
	}
	if err := pipeline.Run(ctx, src, stages); err != nil {
		return result{}, err
	}
	// Run returned after committing the batches in flight.
	elapsed := time.Since(c.start)
	if c.n < n {
		return result{}, fmt.Errorf("consumed %d of %d records before the timeout", c.n, n)
	}
	return result{Records: c.n, Bytes: c.bytes, Seconds: elapsed.Seconds(), Findings: c.findings}, nil
}
