package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tokenwatch/tokenwatch/detect"
)

func init() {
	register(&command{name: "redact", summary: "copy a log with every credential replaced by a redaction marker", run: runRedact})
}

const redactUsage = `usage: tokenwatch redact [flags] [PATH|-]

Copies PATH (or stdin: "-", or no PATH when stdin is not a terminal) to stdout,
-o FILE, or back over PATH (--in-place), with every credential value replaced by

    [REDACTED:<kind>:<first 8 hex digits of its fingerprint>]

Every other byte is unchanged: line endings (LF or CRLF), a missing final
newline, invalid UTF-8 and binary bytes are copied as they are. Only the value is
replaced ("Authorization: Bearer [REDACTED:jwt:1a2b3c4d]"), so the marker's
fingerprint prefix still correlates with "tokenwatch scan" output under the same
key. A gzip input (detected by its magic bytes) is decompressed: the output is
plain text, and --in-place refuses gzip files.

It streams with constant memory whatever the input size or line length.

Fingerprint key: as for "tokenwatch scan" (--fingerprint-key, then
TOKENWATCH_FINGERPRINT_KEY, then the key file).

Exit status: 0 done (whether or not something was redacted), 2 usage or I/O
error (with --in-place the original is then left untouched).

Flags:
`

func runRedact(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "redact", redactUsage)
	outPath := fs.String("o", "", "write to this file instead of stdout (replaced atomically)")
	inPlace := fs.Bool("in-place", false, "replace PATH with its redacted copy (atomically, keeping its mode)")
	jobs := fs.Int("jobs", 0, "scanning goroutines (default: number of CPUs)")
	var kf keyFlags
	kf.register(fs)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	paths := fs.Args()
	switch {
	case len(paths) > 1:
		return fail(env, "redact", fmt.Errorf("%w: one PATH at most (got %d)", errUsage, len(paths)))
	case len(paths) == 0:
		if stdinIsTerminal(env) {
			fmt.Fprintln(env.stderr, "tokenwatch redact: no PATH given and stdin is a terminal; give a file or - (see tokenwatch redact --help)")
			return exitUsage
		}
		paths = []string{"-"}
	}
	src := paths[0]
	if *inPlace && *outPath != "" {
		return fail(env, "redact", fmt.Errorf("%w: --in-place and -o exclude each other", errUsage))
	}
	if *inPlace && src == "-" {
		return fail(env, "redact", fmt.Errorf("%w: --in-place needs a file, not stdin", errUsage))
	}
	if *jobs < 0 {
		return fail(env, "redact", fmt.Errorf("%w: --jobs %d: want 0 (all CPUs) or more", errUsage, *jobs))
	}
	in := &input{name: "-", stream: true, explicit: true}
	if src != "-" {
		st, err := os.Stat(src)
		if err != nil {
			return fail(env, "redact", err)
		}
		if st.IsDir() {
			return fail(env, "redact", fmt.Errorf("%w: %s is a directory; redact takes one file", errUsage, src))
		}
		in = &input{name: src, path: src, explicit: true}
		if *inPlace {
			if gz, err := isGzipFile(src); err != nil {
				return fail(env, "redact", err)
			} else if gz {
				return fail(env, "redact", fmt.Errorf("%w: %s is gzip-compressed; --in-place would replace it with plain text: use -o", errUsage, src))
			}
		}
	}
	key, err := kf.load(env, "redact")
	if err != nil {
		return fail(env, "redact", err)
	}
	sc, err := detect.New(detect.WithKey(key), detect.WithMaxTokenLen(maxTokenLen))
	if err != nil {
		return fail(env, "redact", err)
	}

	// Destination.
	var (
		w      io.Writer = env.stdout
		tmp    *os.File
		target string
	)
	switch {
	case *inPlace:
		target = src
	case *outPath != "" && *outPath != "-":
		target = *outPath
	}
	if target != "" {
		if tmp, err = os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tokenwatch-*"); err != nil {
			return fail(env, "redact", fmt.Errorf("create output: %w", err))
		}
		defer os.Remove(tmp.Name()) // no-op after the rename
		w = tmp
	}

	cfg := defaultEngine
	cfg.workers = *jobs
	cfg.keepBinary = true
	eng := newEngine(env, "redact", cfg, sc, maxTokenLen)
	out := &redactOutput{w: bufio.NewWriterSize(w, 256<<10), margin: cfg.margin}
	stop := eng.progress(ctx)
	runErr := eng.run(ctx, []*input{in}, out)
	stop()
	if runErr == nil {
		if err := out.w.Flush(); err != nil {
			runErr = fmt.Errorf("write output: %w", err)
		}
	}
	if runErr == nil && eng.ioErrors.Load() > 0 {
		runErr = errors.New("input not fully read; output incomplete")
	}
	if tmp != nil {
		if runErr == nil {
			runErr = finishOutput(tmp, target, src, *inPlace)
		} else {
			tmp.Close()
		}
	}
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) {
			runErr = errors.New("interrupted")
		}
		fmt.Fprintf(env.stderr, "tokenwatch redact: %v\n", runErr)
		return exitUsage
	}
	if target != "" {
		fmt.Fprintf(env.stderr, "tokenwatch redact: %d credentials redacted, written to %s\n", out.count, target)
	}
	return exitOK
}

// finishOutput syncs tmp and renames it over target; for --in-place the
// original file's mode is kept.
func finishOutput(tmp *os.File, target, src string, inPlace bool) error {
	mode := os.FileMode(0o644)
	if inPlace {
		st, err := os.Stat(src)
		if err != nil {
			tmp.Close()
			return fmt.Errorf("stat %s: %w", src, err)
		}
		mode = st.Mode().Perm()
	} else if st, err := os.Stat(target); err == nil {
		mode = st.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod output: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("replace %s: %w", target, err)
	}
	return nil
}

func isGzipFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var m [2]byte
	n, _ := io.ReadFull(f, m[:])
	return n == 2 && m[0] == 0x1f && m[1] == 0x8b, nil
}

// redactMarker appends "[REDACTED:<kind>:<8 hex>]".
func appendRedactMarker(dst []byte, kind string, fp []byte) []byte {
	dst = append(dst, "[REDACTED:"...)
	dst = append(dst, kind...)
	dst = append(dst, ':')
	for _, b := range fp[:4] {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return append(dst, ']')
}

// redactOutput writes each job's bytes with the findings replaced.
type redactOutput struct {
	w      *bufio.Writer
	margin int
	count  int64
	marker []byte
	// skipTo is, inside a windowed long line, the line offset up to which the
	// bytes were already written or replaced.
	skipTo int64
}

func (o *redactOutput) replace(kind string, fp []byte) error {
	o.marker = appendRedactMarker(o.marker[:0], kind, fp)
	o.count++
	_, err := o.w.Write(o.marker)
	return err
}

func (o *redactOutput) consume(j *job) error {
	if err := o.write(j); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if j.in.stream {
		return o.w.Flush()
	}
	return nil
}

func (o *redactOutput) write(j *job) error {
	if !j.window {
		pos := 0
		for i := range j.hits {
			h := &j.hits[i]
			s, e := h.lineOff+h.f.Start, h.lineOff+h.f.End
			if s < pos { // overlapping findings: the union is replaced
				pos = max(pos, e)
				continue
			}
			if _, err := o.w.Write(j.data[pos:s]); err != nil {
				return err
			}
			if err := o.replace(h.f.Kind, h.f.Fingerprint[:]); err != nil {
				return err
			}
			pos = e
		}
		_, err := o.w.Write(j.data[pos:])
		return err
	}
	// A window of a long line: write the bytes it owns, [ownLo, ownHi) in
	// window coordinates (the first window from 0, the last to its end), minus
	// what a replacement in the previous window already covered.
	if j.base == 0 {
		o.skipTo = 0
	}
	emitLo, emitHi := j.ownLo, j.ownHi
	if j.base == 0 {
		emitLo = 0
	}
	if j.last {
		emitHi = len(j.data)
	}
	pos := max(emitLo, int(o.skipTo-j.base))
	for i := range j.hits {
		h := &j.hits[i]
		s, e := h.f.Start-int(j.base), h.f.End-int(j.base)
		if s < pos {
			pos = max(pos, e)
			continue
		}
		if _, err := o.w.Write(j.data[pos:s]); err != nil {
			return err
		}
		if err := o.replace(h.f.Kind, h.f.Fingerprint[:]); err != nil {
			return err
		}
		pos = e
	}
	if pos < emitHi {
		if _, err := o.w.Write(j.data[pos:emitHi]); err != nil {
			return err
		}
		pos = emitHi
	}
	o.skipTo = j.base + int64(pos)
	return nil
}
