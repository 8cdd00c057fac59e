// Command corpus generates a labelled log corpus for measuring tokenwatch's
// scanner and evaluates the scanner's recall and precision on it.
//
//	go run ./bench/corpus gen  -o DIR [-lines N | -bytes N] [-seed S] [-mode quality|bench]
//	go run ./bench/corpus eval [-findings FILE] [-v] DIR
//	go run ./bench/corpus indexpass FILE
//
// gen writes DIR/corpus.log (the log lines), DIR/labels.jsonl (one JSON object
// per planted credential: line, start, end, kind, ctx), DIR/negatives.jsonl (the
// planted look-alikes that must not be reported) and DIR/meta.json. The output is
// a pure function of the flags: the same seed gives the same bytes.
//
// eval scans DIR/corpus.log with package detect in process (or reads the
// findings of `tokenwatch scan --format json` from -findings FILE), matches
// findings to labels, prints recall and precision per kind and overall, and
// exits 1 if a target is missed (recall >= 99% on jwt, jwe and bearer,
// >= 97% overall, precision >= 99%).
//
// Matching rule: a finding is a true positive when it is on the same line as an
// unmatched label, its byte span overlaps the label's span, and its kind belongs
// to the label's kind family (or to one of the label's Alt kinds' families); see
// family. Each label matches at most one finding; a second finding on the same
// label is a false positive (a duplicate). Findings matching no label are false
// positives; labels matched by no finding are misses.
//
// indexpass is the speed baseline of bench/scan.sh: it reads FILE in 1 MiB
// chunks and counts "eyJ" with bytes.Index, the cheapest pass a scanner could
// make, and prints the bytes, the count and MB/s.
//
// The corpus holds only fake credentials made from a seeded random generator;
// none of them was ever valid anywhere. The package must not be imported.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: corpus gen|eval [flags]  (corpus <cmd> -h for flags)")
		return 2
	}
	switch args[0] {
	case "gen":
		return runGen(args[1:], stdout, stderr)
	case "eval":
		return runEval(ctx, args[1:], stdout, stderr)
	case "indexpass":
		return runIndexPass(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "usage: corpus gen|eval|indexpass [flags]  (corpus <cmd> -h for flags)")
		return 0
	}
	fmt.Fprintf(stderr, "corpus: unknown command %q (want gen or eval)\n", args[0])
	return 2
}

// Corpus file names inside DIR.
const (
	corpusFile    = "corpus.log"
	labelsFile    = "labels.jsonl"
	negativesFile = "negatives.jsonl"
	metaFile      = "meta.json"
)

func runGen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("corpus gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output directory (created)")
	lines := fs.Int64("lines", 0, "number of lines (quality mode default 20000)")
	size := fs.Int64("bytes", 0, "generate until this many bytes instead of -lines (bench mode)")
	seed := fs.Uint64("seed", 1, "random seed")
	mode := fs.String("mode", "quality", "quality: dense credentials, hard negatives, multi-MB lines, CRLF; bench: clean-heavy, one credential per ~1000 lines")
	long := fs.Int("long", -1, "number of multi-MB lines (default: 2 in quality mode, 0 in bench mode)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "corpus gen: -o DIR is required and no arguments are allowed")
		return 2
	}
	cfg, err := genConfigFor(*mode, *lines, *size, *seed, *long)
	if err != nil {
		fmt.Fprintf(stderr, "corpus gen: %v\n", err)
		return 2
	}
	meta, err := generate(*out, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "corpus gen: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "corpus: %d lines, %d bytes, %d labelled credentials, %d hard negatives in %s\n",
		meta.Lines, meta.Bytes, meta.Labels, meta.Negatives, *out)
	return 0
}

func genConfigFor(mode string, lines, size int64, seed uint64, long int) (genConfig, error) {
	cfg := genConfig{Mode: mode, Seed: seed, Lines: lines, Bytes: size}
	switch mode {
	case "quality":
		cfg.PosEvery, cfg.NegEvery, cfg.CRLFPercent, cfg.LongLines = 3, 3, 10, 2
		if cfg.Lines == 0 && cfg.Bytes == 0 {
			cfg.Lines = 20000
		}
	case "bench":
		cfg.PosEvery, cfg.NegEvery, cfg.CRLFPercent = 1000, 1000, 2
	default:
		return cfg, fmt.Errorf("-mode %q: want quality or bench", mode)
	}
	if long >= 0 {
		cfg.LongLines = long
	}
	if cfg.Lines == 0 && cfg.Bytes <= 0 {
		return cfg, fmt.Errorf("give -lines N or -bytes N")
	}
	if cfg.Lines == 0 {
		cfg.LongLines = 0 // long lines are placed by line number
	}
	return cfg, nil
}

// generate writes a corpus into dir.
func generate(dir string, cfg genConfig) (Meta, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Meta{}, fmt.Errorf("create %s: %w", dir, err)
	}
	files := make([]*os.File, 3)
	for i, name := range []string{corpusFile, labelsFile, negativesFile} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return Meta{}, fmt.Errorf("create corpus file: %w", err)
		}
		defer f.Close()
		files[i] = f
	}
	meta, err := newGenerator(cfg).run(files[0], files[1], files[2])
	if err != nil {
		return meta, err
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			return meta, fmt.Errorf("close %s: %w", f.Name(), err)
		}
	}
	mb, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, metaFile), append(mb, '\n'), 0o644); err != nil {
		return meta, fmt.Errorf("write meta: %w", err)
	}
	return meta, nil
}

func runIndexPass(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: corpus indexpass FILE")
		return 2
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "corpus indexpass: %v\n", err)
		return 2
	}
	defer f.Close()
	start := time.Now()
	n, count, err := indexPass(f, []byte("eyJ"))
	if err != nil {
		fmt.Fprintf(stderr, "corpus indexpass: %v\n", err)
		return 2
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "indexpass: %d bytes, %d matches, %.3fs, %.0f MB/s\n", n, count, el.Seconds(), float64(n)/1e6/el.Seconds())
	return 0
}

// indexPass counts occurrences of pat in r with bytes.Index over 1 MiB reads
// (a match split across two reads is not counted: this is a speed baseline).
func indexPass(r io.Reader, pat []byte) (n int64, count int, err error) {
	buf := make([]byte, 1<<20)
	for {
		k, rerr := io.ReadFull(r, buf)
		n += int64(k)
		b := buf[:k]
		for {
			i := bytes.Index(b, pat)
			if i < 0 {
				break
			}
			count++
			b = b[i+len(pat):]
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				return n, count, nil
			}
			return n, count, rerr
		}
	}
}
