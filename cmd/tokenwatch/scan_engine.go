package main

// The engine behind `tokenwatch scan` and `tokenwatch redact`: it reads inputs in
// large chunks of whole lines, scans the chunks on all cores, and hands the
// results to one consumer in input order.
//
// Lines. A line is the bytes between two '\n'; it excludes the '\n' and a '\r'
// right before it. Line numbers are 1-based, offsets are 0-based bytes within the
// line. Offsets stay exact across read boundaries because a chunk always ends at
// a '\n' (the partial last line is carried to the next chunk).
//
// Long lines. A line longer than maxLine is never held whole: it is scanned in
// windows of maxLine bytes that overlap by overlap = maxTokenLen + 2*margin bytes.
// Window k owns the findings that start in [lo_k, lo_{k+1}) where lo_k is margin
// bytes after the window's start (0 for the first window); the owned ranges tile
// the line, so each credential is reported exactly once, and a credential owned
// by a window lies wholly inside it with at least margin bytes of context on both
// sides (enough for "Authorization: Bearer " and the like). Memory is bounded by
// (in-flight jobs) × maxLine whatever the input.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect"
)

// engineConfig sizes the engine. Tests shrink it to hit boundaries cheaply.
type engineConfig struct {
	chunkSize int // bytes read per chunk (lines are never split below maxLine)
	maxLine   int // lines longer than this are scanned in windows
	margin    int // context kept on each side of an owned window range
	workers   int // scanning goroutines; 0 = GOMAXPROCS
	// keepBinary disables skipping inputs with NUL bytes (redact copies them).
	keepBinary bool
}

// defaultEngine is the production configuration.
var defaultEngine = engineConfig{chunkSize: 1 << 20, maxLine: 8 << 20, margin: 1024}

// maxTokenLen is the scanner's longest credential (detect.WithMaxTokenLen); it
// sizes the window overlap. A variable so tests can shrink windows to fuzz them.
var maxTokenLen = detect.DefaultMaxTokenLen

// input is one thing to scan: a file, a gzip file, or stdin.
type input struct {
	name   string // as reported in findings: the path, or "-" for stdin
	path   string // "" for stdin
	stream bool   // stdin: emit complete lines as soon as a read returns
	// explicit is true for inputs named on the command line (not found by a walk).
	explicit bool
}

// hit is one finding with its place in a job's data.
type hit struct {
	line int64 // 1-based line number
	// lineOff is the offset in job.data of byte 0 of the line; for windows it
	// is -job.base (the line starts before the window).
	lineOff int
	f       tokenwatch.Finding
}

// job is a chunk of whole lines, or one window of a long line.
type job struct {
	in        *input
	buf       *[]byte // pooled buffer backing data, returned after consumption
	data      []byte  // the bytes as read (normal chunk: whole lines incl. '\n')
	firstLine int64
	// Window fields (window == true): data is a window of line firstLine whose
	// byte 0 is at offset base in the line; the window scans data[:contentEnd]
	// and owns findings starting in [ownLo, ownHi). last marks the final
	// window, which includes the line terminator in data.
	window       bool
	base         int64
	contentEnd   int
	ownLo, ownHi int
	last         bool

	hits []hit
	done chan struct{}
}

// consumer receives jobs in input order, from one goroutine. It must not
// retain j.data after returning.
type consumer interface {
	consume(j *job) error
}

// engine runs the pipeline.
type engine struct {
	cfg      engineConfig
	overlap  int
	sc       *detect.Scanner // safe for concurrent use
	maxToken int
	pool     sync.Pool
	env      *cliEnv
	cmd      string

	bytesRead atomic.Int64
	findings  atomic.Int64
	ioErrors  atomic.Int64
	errMu     sync.Mutex // serialises stderr writes (errors and progress)
}

// newEngine returns an engine scanning with sc, whose longest credential is
// maxToken bytes (it sizes the window overlap).
func newEngine(env *cliEnv, cmd string, cfg engineConfig, sc *detect.Scanner, maxToken int) *engine {
	if cfg.workers <= 0 {
		cfg.workers = runtime.GOMAXPROCS(0)
	}
	e := &engine{cfg: cfg, sc: sc, maxToken: maxToken, env: env, cmd: cmd}
	e.overlap = maxToken + 2*cfg.margin
	if cfg.maxLine < 2*e.overlap {
		panic(fmt.Sprintf("BUG: engine maxLine %d must be at least twice the overlap %d", cfg.maxLine, e.overlap))
	}
	if cfg.chunkSize > cfg.maxLine {
		panic("BUG: engine chunkSize > maxLine")
	}
	e.pool.New = func() any { b := make([]byte, cfg.chunkSize); return &b }
	return e
}

func (e *engine) getBuf() *[]byte { return e.pool.Get().(*[]byte) }

func (e *engine) putBuf(b *[]byte) {
	if b != nil && cap(*b) == e.cfg.chunkSize {
		*b = (*b)[:cap(*b)]
		e.pool.Put(b)
	}
}

// warn prints a message on stderr (serialised with progress output).
func (e *engine) warn(format string, args ...any) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	fmt.Fprintf(e.env.stderr, "tokenwatch %s: %s\n", e.cmd, fmt.Sprintf(format, args...))
}

// ioError reports an I/O error on an input; the run goes on and exits 2.
func (e *engine) ioError(err error) {
	e.ioErrors.Add(1)
	e.warn("%v", err)
}

// run scans inputs in order and feeds c. It returns a non-nil error only when
// the run as a whole failed (ctx cancelled, the consumer's writer failed).
func (e *engine) run(ctx context.Context, inputs []*input, c consumer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *job, e.cfg.workers)
	order := make(chan *job, 2*e.cfg.workers+2)
	var wg sync.WaitGroup
	for range e.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.worker(e.sc, jobs)
		}()
	}
	// Producer.
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		defer close(order)
		defer close(jobs)
		for _, in := range inputs {
			if ctx.Err() != nil {
				return
			}
			// An I/O error ends this input only: report it, go on.
			if err := e.produce(ctx, in, jobs, order); err != nil && !errors.Is(err, context.Canceled) {
				e.ioError(err)
			}
		}
	}()
	var runErr error
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		if err := c.consume(j); err != nil {
			runErr = err
			cancel()
			break
		}
		e.bytesRead.Add(int64(len(j.data)))
		e.putBuf(j.buf)
	}
	cancel()
	for range order { // drain so the producer can exit
	}
	<-prodDone
	wg.Wait()
	return runErr
}

// send queues j for scanning and ordered consumption.
func send(ctx context.Context, j *job, jobs, order chan<- *job) error {
	j.done = make(chan struct{})
	select {
	case order <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// worker scans jobs.
func (e *engine) worker(sc *detect.Scanner, jobs <-chan *job) {
	var dst []tokenwatch.Finding
	for j := range jobs {
		j.hits = j.hits[:0]
		if j.window {
			dst = sc.Scan(j.data[:j.contentEnd], dst[:0])
			for _, f := range dst {
				if f.Start >= j.ownLo && f.Start < j.ownHi {
					f.Start += int(j.base)
					f.End += int(j.base)
					j.hits = append(j.hits, hit{line: j.firstLine, lineOff: -int(j.base), f: f})
				}
			}
		} else {
			data := j.data
			line := j.firstLine
			for off := 0; off < len(data); line++ {
				end := len(data)
				next := end
				if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
					end = off + i
					next = end + 1
					if end > off && data[end-1] == '\r' {
						end--
					}
				}
				if end > off {
					dst = sc.Scan(data[off:end], dst[:0])
					for _, f := range dst {
						j.hits = append(j.hits, hit{line: line, lineOff: off, f: f})
					}
				}
				off = next
			}
		}
		// hits are in line order: lines are scanned in order and detect
		// returns a line's findings in order, without overlap.
		close(j.done)
	}
}

// openInput opens in for reading: stdin, a file, or a gzip file (detected by its
// magic bytes), decompressed on the fly.
func (e *engine) openInput(in *input) (io.Reader, func() error, error) {
	var r io.Reader
	closeFn := func() error { return nil }
	if in.path == "" {
		r = e.env.stdin
	} else {
		f, err := os.Open(in.path)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", in.path, err)
		}
		r, closeFn = f, f.Close
	}
	var magic [2]byte
	n, err := io.ReadFull(r, magic[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		closeFn()
		return nil, nil, readError(in.name, err)
	}
	r = io.MultiReader(bytes.NewReader(magic[:n]), r)
	if n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("read gzip %s: %w", in.name, err)
		}
		fc := closeFn
		closeFn = func() error { gz.Close(); return fc() }
		r = gz
	}
	return r, closeFn, nil
}

// readError names the input in a read error, unless the error (an
// *fs.PathError from a file) already does.
func readError(name string, err error) error {
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return err
	}
	return fmt.Errorf("read %s: %w", name, err)
}

// errBinary marks an input skipped because it looks binary.
var errBinary = errors.New("binary file skipped")

// sniffLen is how much of an input is checked for NUL bytes.
const sniffLen = 8 << 10

// produce reads one input and queues its jobs.
func (e *engine) produce(ctx context.Context, in *input, jobs, order chan<- *job) error {
	r, closeFn, err := e.openInput(in)
	if err != nil {
		return err
	}
	defer closeFn()
	p := producer{e: e, in: in, ctx: ctx, jobs: jobs, order: order, line: 1}
	err = p.loop(r)
	if errors.Is(err, errBinary) {
		if in.explicit {
			e.warn("%s: binary file skipped (NUL bytes in the first %d KiB)", in.name, sniffLen>>10)
		}
		return nil
	}
	return err
}

// producer splits one input into jobs.
type producer struct {
	e     *engine
	in    *input
	ctx   context.Context
	jobs  chan<- *job
	order chan<- *job
	line  int64
	// window state of the current long line.
	inWindow bool
	base     int64 // offset in the line of buf[0]
	ownLo    int
	sniffed  bool
}

func (p *producer) loop(r io.Reader) error {
	e := p.e
	bp := e.getBuf()
	buf := (*bp)[:cap(*bp)]
	n := 0
	p.sniffed = p.in.stream || e.cfg.keepBinary // stdin is scanned whatever it holds
	for {
		k, rerr := r.Read(buf[n:])
		n += k
		eof := errors.Is(rerr, io.EOF)
		if rerr != nil && !eof {
			e.putBuf(bp)
			return readError(p.in.name, rerr)
		}
		if !p.sniffed {
			if n < sniffLen && !eof && n < len(buf) {
				continue
			}
			p.sniffed = true
			if bytes.IndexByte(buf[:min(n, sniffLen)], 0) >= 0 {
				e.putBuf(bp)
				return errBinary
			}
		}
		if err := p.ctx.Err(); err != nil {
			e.putBuf(bp)
			return err
		}
		full := n == len(buf)
		if !full && !eof && !(p.in.stream && k > 0) {
			continue // keep filling the chunk
		}
		if p.inWindow {
			var err error
			if bp, buf, n, err = p.windowStep(bp, buf, n, eof); err != nil {
				return err
			}
			if p.inWindow {
				continue
			}
			full = n == len(buf)
		}
		data := buf[:n]
		if eof {
			if n == 0 {
				e.putBuf(bp)
				return nil
			}
			return p.emit(bp, data)
		}
		i := bytes.LastIndexByte(data, '\n')
		if i < 0 {
			switch {
			case !full:
				// A stream delivered part of a line: wait for the rest.
			case len(buf) < e.cfg.maxLine:
				// The line is longer than a chunk but may fit maxLine: grow.
				nb := make([]byte, min(2*len(buf), e.cfg.maxLine))
				copy(nb, data)
				e.putBuf(bp)
				bp, buf = &nb, nb
			default:
				// Longer than maxLine: scan it in windows.
				p.inWindow, p.base, p.ownLo = true, 0, 0
				var err error
				if bp, buf, n, err = p.windowStep(bp, buf, n, false); err != nil {
					return err
				}
			}
			continue
		}
		nbp, nbuf := p.carry(data[i+1:])
		if err := p.emit(bp, data[:i+1]); err != nil {
			e.putBuf(nbp)
			return err
		}
		bp, buf, n = nbp, nbuf, len(data)-i-1
	}
}

// carry returns a fresh buffer that starts with rest (the partial last line).
func (p *producer) carry(rest []byte) (*[]byte, []byte) {
	nbp := p.e.getBuf()
	nbuf := (*nbp)[:cap(*nbp)]
	if len(rest) >= len(nbuf) {
		nb := make([]byte, min(2*len(rest), p.e.cfg.maxLine))
		nbp, nbuf = &nb, nb
	}
	copy(nbuf, rest)
	return nbp, nbuf
}

// emit queues a chunk of whole lines (the last may lack its '\n' at EOF).
func (p *producer) emit(bp *[]byte, data []byte) error {
	j := &job{in: p.in, buf: bp, data: data, firstLine: p.line}
	p.line += int64(bytes.Count(data, []byte{'\n'}))
	return send(p.ctx, j, p.jobs, p.order)
}

// windowStep handles buf[:n] while inside a long line. It either finds the end
// of the line (emits the last window and returns a buffer holding the bytes after
// it, leaving window mode) or, when buf is full, emits a window and returns a
// buffer that starts with the overlap. At EOF the rest of the line is the last
// window.
func (p *producer) windowStep(bp *[]byte, buf []byte, n int, eof bool) (*[]byte, []byte, int, error) {
	e := p.e
	data := buf[:n]
	if i := bytes.IndexByte(data, '\n'); i >= 0 || eof {
		end, contentEnd := n, n
		if i >= 0 {
			end, contentEnd = i+1, i
			if contentEnd > 0 && data[contentEnd-1] == '\r' {
				contentEnd--
			}
		}
		j := &job{in: p.in, buf: bp, data: data[:end], firstLine: p.line, window: true, base: p.base,
			contentEnd: contentEnd, ownLo: p.ownLo, ownHi: contentEnd + 1, last: true}
		rest := data[end:]
		nbp, nbuf := p.carry(rest)
		if err := send(p.ctx, j, p.jobs, p.order); err != nil {
			return nil, nil, 0, err
		}
		p.line++
		p.inWindow = false
		return nbp, nbuf, len(rest), nil
	}
	if n < len(buf) {
		return bp, buf, n, nil // not full yet
	}
	// Full window without a newline: cut so the next window starts at a rune
	// boundary, overlap bytes (or a few more) before the end.
	cut := n - e.overlap
	for k := 0; k < utf8.UTFMax && cut > 0 && !utf8.RuneStart(data[cut]); k++ {
		cut--
	}
	ownHi := cut + e.cfg.margin
	j := &job{in: p.in, buf: bp, data: data, firstLine: p.line, window: true, base: p.base,
		contentEnd: n, ownLo: p.ownLo, ownHi: ownHi}
	nb := make([]byte, len(buf))
	copy(nb, data[cut:])
	if err := send(p.ctx, j, p.jobs, p.order); err != nil {
		return nil, nil, 0, err
	}
	p.base += int64(cut)
	p.ownLo = e.cfg.margin
	return &nb, nb, n - cut, nil
}

// collectInputs expands PATH arguments: files as given, directories walked
// recursively in lexical order (skipping .git), "-" for stdin.
func collectInputs(env *cliEnv, cmd string, args []string) (ins []*input, ioErrs int) {
	for _, a := range args {
		if a == "-" {
			ins = append(ins, &input{name: "-", stream: true, explicit: true})
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			fmt.Fprintf(env.stderr, "tokenwatch %s: %v\n", cmd, err)
			ioErrs++
			continue
		}
		if !st.IsDir() {
			ins = append(ins, &input{name: a, path: a, explicit: true})
			continue
		}
		root := a
		if lst, err := os.Lstat(a); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
			// WalkDir does not follow a symlinked root; a trailing
			// separator makes it.
			root = a + string(filepath.Separator)
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(env.stderr, "tokenwatch %s: %v\n", cmd, err)
				ioErrs++
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if d.Name() == ".git" && path != root {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil // sockets, devices, symlinks (not followed)
			}
			ins = append(ins, &input{name: path, path: path})
			return nil
		})
		if err != nil {
			fmt.Fprintf(env.stderr, "tokenwatch %s: walk %s: %v\n", cmd, a, err)
			ioErrs++
		}
	}
	return ins, ioErrs
}

// Progress line timing: shown once a run has lasted progressAfter, refreshed
// every progressEvery (variables so tests need not wait).
var (
	progressAfter = time.Second
	progressEvery = 250 * time.Millisecond
)

// progress prints "\r<bytes> <MB/s> <findings>" on stderr, refreshed in place,
// once a run has lasted progressAfter, when stderr is a terminal. stop ends it
// with a summary line.
func (e *engine) progress(ctx context.Context) (stop func()) {
	if !e.env.stderrTTY {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	printed := false
	go func() {
		defer wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				el := now.Sub(start)
				if el < progressAfter {
					continue
				}
				b := e.bytesRead.Load()
				e.errMu.Lock()
				fmt.Fprintf(e.env.stderr, "\r\033[K%s: %s  %.0f MB/s  %d findings", e.cmd, humanBytes(b), float64(b)/1e6/el.Seconds(), e.findings.Load())
				printed = true
				e.errMu.Unlock()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		// The summary follows any run that lasted long enough for progress,
		// even if no tick got to print (a busy machine).
		if el := time.Since(start); printed || el >= progressAfter {
			b := e.bytesRead.Load()
			fmt.Fprintf(e.env.stderr, "\r\033[K%s: %s in %.1fs, %.0f MB/s, %d findings\n", e.cmd, humanBytes(b), el.Seconds(), float64(b)/1e6/el.Seconds(), e.findings.Load())
		}
	}
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
