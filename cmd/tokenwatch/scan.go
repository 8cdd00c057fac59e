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
	"os"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect"
)

func init() {
	register(&command{name: "scan", summary: "find credentials in files, directories, gzip files or stdin", run: runScan})
}

const scanUsage = `usage: tokenwatch scan [flags] [PATH...|-]

Finds bearer credentials (JWTs, Authorization headers, OAuth parameters,
cookies, prefixed API tokens) in log files, directories (recursive; binary files
and .git are skipped), gzip files (detected by their magic bytes) and stdin
("-", or no PATH when stdin is not a terminal).

Output (--format):
  text   path:line:col kind rule redacted fingerprint [alg=none] [expired]
         (col: 1-based byte column of the value)
  json   one JSON object per finding per line (DESIGN.md contract): source, line,
         start, end (0-based byte offsets of the value in the line, end exclusive),
         kind, rule, fingerprint, redacted, and jwt{...} for JWTs
  sarif  SARIF 2.1.0 for code-scanning UIs (columns in Unicode code points)

A line excludes its "\n" and a "\r" before it. The raw credential is never
printed: only its redacted preview and keyed fingerprint.

Fingerprint key, first found wins: --fingerprint-key, the environment variable
TOKENWATCH_FINGERPRINT_KEY, the key file (--key-file, default
$XDG_STATE_HOME/tokenwatch/fingerprint.key or
~/.local/state/tokenwatch/fingerprint.key, created with a random key if missing).
Key syntax: "hex:<hex>", "base64:<base64>" or a raw string of 16+ bytes.

--baseline FILE suppresses findings whose fingerprint is listed in FILE: either
a previous "tokenwatch scan --format json" output, or one 32-hex-digit
fingerprint per line ('#' comments and blank lines are ignored).

Exit status: 0 no findings, 1 findings, 2 usage or I/O error. An I/O error on
one input (unreadable file) is reported on stderr, the other inputs are still
scanned, and the exit status is 2 even if there were findings.

Flags:
`

// scanFlags are the parsed options shared by scan and redact.
type keyFlags struct {
	key     string
	keyFile string
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.key, "fingerprint-key", "", "fingerprint HMAC key (\"hex:…\", \"base64:…\" or 16+ raw bytes); overrides TOKENWATCH_FINGERPRINT_KEY and the key file")
	fs.StringVar(&k.keyFile, "key-file", "", "key file used when no key is given (created if missing; default $XDG_STATE_HOME/tokenwatch/fingerprint.key)")
}

// load resolves the key: flag, then environment, then key file (detect.LoadKey).
func (k *keyFlags) load(env *cliEnv, cmd string) ([]byte, error) {
	if k.key != "" {
		key, err := detect.ParseKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("%w: --fingerprint-key: %v", errUsage, err)
		}
		return key, nil
	}
	key, from, err := detect.LoadKey("", k.keyFile, env.getenv)
	if err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	if strings.HasPrefix(from, "generated ") {
		fmt.Fprintf(env.stderr, "tokenwatch %s: created fingerprint key file %s\n", cmd, strings.TrimPrefix(from, "generated "))
	}
	return key, nil
}

// stdinIsTerminal reports whether env.stdin is an interactive terminal.
func stdinIsTerminal(env *cliEnv) bool {
	f, ok := env.stdin.(*os.File)
	return ok && isTerminal(f)
}

func runScan(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "scan", scanUsage)
	format := fs.String("format", "text", "output format: text, json or sarif")
	baseline := fs.String("baseline", "", "suppress findings whose fingerprint is in this file (scan --format json output, or one fingerprint per line)")
	jobs := fs.Int("jobs", 0, "scanning goroutines (default: number of CPUs)")
	listRules := fs.Bool("list-rules", false, "print the detection rules (kind, rule, description) and exit; --format json for JSON lines")
	var kf keyFlags
	kf.register(fs)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	switch *format {
	case "text", "json", "sarif":
	default:
		return fail(env, "scan", fmt.Errorf("--format %q: want text, json or sarif", *format))
	}
	if *listRules {
		return printRules(env, *format)
	}
	if *jobs < 0 {
		return fail(env, "scan", fmt.Errorf("--jobs %d: want 0 (all CPUs) or more", *jobs))
	}
	paths := fs.Args()
	if len(paths) == 0 {
		if stdinIsTerminal(env) {
			fmt.Fprintln(env.stderr, "tokenwatch scan: no PATH given and stdin is a terminal; give files, directories or - (see tokenwatch scan --help)")
			return exitUsage
		}
		paths = []string{"-"}
	}
	if err := checkStdinOnce(paths); err != nil {
		return fail(env, "scan", err)
	}
	key, err := kf.load(env, "scan")
	if err != nil {
		return fail(env, "scan", err)
	}
	var suppress map[tokenwatch.Fingerprint]struct{}
	if *baseline != "" {
		if suppress, err = loadBaseline(*baseline); err != nil {
			return fail(env, "scan", err)
		}
	}
	sc, err := detect.New(detect.WithKey(key), detect.WithMaxTokenLen(maxTokenLen))
	if err != nil {
		return fail(env, "scan", err)
	}
	inputs, ioErrs := collectInputs(env, "scan", paths)

	cfg := defaultEngine
	cfg.workers = *jobs
	eng := newEngine(env, "scan", cfg, sc, maxTokenLen)
	out := &scanOutput{w: bufio.NewWriterSize(env.stdout, 64<<10), format: *format, suppress: suppress, eng: eng}
	if *format == "sarif" {
		out.ruleIndex = map[string]int{}
		rules := detect.Rules()
		for i, r := range rules {
			out.ruleIndex[r.Rule] = i
		}
		out.buf = appendSARIFHeader(out.buf[:0], rules)
		out.first = true
	}
	stop := eng.progress(ctx)
	runErr := eng.run(ctx, inputs, out)
	stop()
	if runErr == nil && *format == "sarif" {
		out.buf = appendSARIFFooter(out.buf)
	}
	if runErr == nil {
		runErr = out.flush()
	}
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) {
			fmt.Fprintln(env.stderr, "tokenwatch scan: interrupted")
		} else {
			fmt.Fprintf(env.stderr, "tokenwatch scan: %v\n", runErr)
		}
		return exitUsage
	}
	if ioErrs > 0 || eng.ioErrors.Load() > 0 {
		return exitUsage
	}
	if out.reported > 0 {
		return exitFindings
	}
	return exitOK
}

// scanOutput formats findings in input order.
type scanOutput struct {
	w        *bufio.Writer
	format   string
	suppress map[tokenwatch.Fingerprint]struct{}
	eng      *engine
	buf      []byte

	reported, suppressed int64
	// SARIF state.
	ruleIndex map[string]int
	first     bool
	uri       string
	uriFor    *input
	// Code points of the current long line before the current window.
	winLine  int64
	winRunes int
}

func (o *scanOutput) flush() error {
	if len(o.buf) > 0 {
		if _, err := o.w.Write(o.buf); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		o.buf = o.buf[:0]
	}
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (o *scanOutput) consume(j *job) error {
	if o.format == "sarif" && j.window && j.base == 0 {
		o.winLine, o.winRunes = j.firstLine, 0
	}
	for i := range j.hits {
		h := &j.hits[i]
		if _, ok := o.suppress[h.f.Fingerprint]; ok {
			o.suppressed++
			continue
		}
		o.reported++
		switch o.format {
		case "json":
			o.buf = AppendFindingJSON(o.buf, j.in.name, h.line, &h.f)
			o.buf = append(o.buf, '\n')
		case "text":
			o.buf = appendFindingText(o.buf, j.in.name, h.line, &h.f)
		case "sarif":
			if o.uriFor != j.in {
				o.uri, o.uriFor = sarifURI(j.in.name), j.in
			}
			// Code point columns: count from the line's start in data, or
			// for a window, from the window's start plus what came before.
			var prefix []byte
			runesBefore := 0
			if j.window {
				prefix = j.data[:h.f.Start-int(j.base)]
				runesBefore = o.winRunes
			} else {
				prefix = j.data[h.lineOff : h.lineOff+h.f.Start]
			}
			col := 1 + runesBefore + utf8.RuneCount(prefix)
			endCol := col + utf8.RuneCount(j.data[h.lineOff+h.f.Start:h.lineOff+h.f.End])
			idx, ok := o.ruleIndex[h.f.Rule]
			if !ok {
				idx = -1
			}
			o.buf = appendSARIFResult(o.buf, o.first, idx, o.uri, h.line, col, endCol, &h.f)
			o.first = false
		}
	}
	if o.format == "sarif" && j.window && !j.last {
		// The next window starts at the cut (ownHi - margin).
		o.winRunes += utf8.RuneCount(j.data[:j.ownHi-o.eng.cfg.margin])
	}
	o.eng.findings.Add(int64(len(j.hits)))
	if len(o.buf) >= 32<<10 {
		if _, err := o.w.Write(o.buf); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		o.buf = o.buf[:0]
	}
	// Streams: flush as soon as findings are written so `tail -f | scan` shows them.
	if j.in.stream && len(j.hits) > 0 && o.format != "sarif" {
		return o.flush()
	}
	return nil
}

// loadBaseline reads fingerprints to suppress: JSON lines from scan --format
// json (the "fingerprint" field), or bare 32-hex-digit fingerprints, one per
// line; blank lines and lines starting with '#' are ignored.
func loadBaseline(path string) (map[tokenwatch.Fingerprint]struct{}, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer f.Close()
	set := map[tokenwatch.Fingerprint]struct{}{}
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("baseline %s: %w", path, err)
		}
		t := bytes.TrimSpace(line)
		switch {
		case len(t) == 0 || t[0] == '#':
		case t[0] == '{':
			var v struct {
				Fingerprint string `json:"fingerprint"`
			}
			if jerr := json.Unmarshal(t, &v); jerr != nil {
				return nil, fmt.Errorf("%w: baseline %s line %d: not a JSON finding: %v", errUsage, path, n, jerr)
			}
			fp, perr := tokenwatch.ParseFingerprint(v.Fingerprint)
			if perr != nil {
				return nil, fmt.Errorf("%w: baseline %s line %d: \"fingerprint\": %v", errUsage, path, n, perr)
			}
			set[fp] = struct{}{}
		default:
			fp, perr := tokenwatch.ParseFingerprint(string(t))
			if perr != nil {
				return nil, fmt.Errorf("%w: baseline %s line %d: want a JSON finding or a fingerprint: %v", errUsage, path, n, perr)
			}
			set[fp] = struct{}{}
		}
		if errors.Is(err, io.EOF) {
			return set, nil
		}
	}
}

// checkStdinOnce rejects "-" given more than once.
func checkStdinOnce(paths []string) error {
	n := 0
	for _, p := range paths {
		if p == "-" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w: stdin (-) given more than once", errUsage)
	}
	return nil
}

// printRules writes detect.Rules(): an aligned table, or JSON lines.
func printRules(env *cliEnv, format string) int {
	rules := detect.Rules()
	if format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetEscapeHTML(false)
		for _, r := range rules {
			if err := enc.Encode(r); err != nil {
				return fail(env, "scan", fmt.Errorf("write output: %w", err))
			}
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tKIND\tDESCRIPTION")
	for _, r := range rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Rule, r.Kind, r.Description)
	}
	if err := tw.Flush(); err != nil {
		return fail(env, "scan", fmt.Errorf("write output: %w", err))
	}
	return exitOK
}
