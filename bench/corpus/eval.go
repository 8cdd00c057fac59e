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
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect"
)

// Targets (issue 3).
const (
	targetRecallStrict  = 0.99 // jwt, jwe, bearer
	targetRecallOverall = 0.97
	targetPrecision     = 0.99
)

// strictKinds are the label kinds held to targetRecallStrict.
var strictKinds = map[string]bool{"jwt": true, "jwe": true, "bearer": true}

// evalKey is the fixed fingerprint key of in-process evaluation (fingerprints
// do not matter for matching; a fixed key keeps runs reproducible).
var evalKey = []byte("tokenwatch-bench-corpus-eval-key")

// family maps a finding kind or a label kind to the family used for matching.
// Families are deliberately coarse where the same value has several honest
// names: an opaque value after "Bearer " and one in "access_token=" are both
// "opaque" (a scanner may call either "bearer" or "oauth_access_token").
func family(kind string) string {
	k := strings.ToLower(kind)
	switch {
	case strings.Contains(k, "jwe"), strings.Contains(k, "jwt"):
		return "jwt"
	case strings.Contains(k, "github"):
		return "github"
	case strings.Contains(k, "gitlab"):
		return "gitlab"
	case strings.Contains(k, "slack"):
		return "slack"
	case strings.Contains(k, "google"):
		return "google"
	case strings.Contains(k, "stripe"):
		return "stripe"
	case strings.HasPrefix(k, "npm"):
		return "npm"
	case strings.HasPrefix(k, "aws"):
		return "aws"
	case strings.Contains(k, "basic"):
		return "basic"
	case strings.Contains(k, "password"):
		return "password" // cli_password: curl -u / wget --password values
	}
	// bearer, dpop, oauth, oauth_access_token, refresh_token, client_secret,
	// oauth_code, cookie tokens, …
	return "opaque"
}

// evalFinding is one finding of the scanner under evaluation.
type evalFinding struct {
	Line  int64  `json:"line"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Kind  string `json:"kind"`
	Rule  string `json:"rule"`
}

// kindStats counts per kind.
type kindStats struct {
	labels, matched int // recall side (by label kind)
	findings, tp    int // precision side (by finding kind)
}

// evalResult is what eval measured.
type evalResult struct {
	byLabelKind   map[string]*kindStats
	byFindingKind map[string]*kindStats
	labels, tp    int
	findings, fp  int
	misses        []miss
	falsePos      []falsePos
}

type miss struct {
	Label
	got    []evalFinding // findings on the same line (wrong kind or span)
	before string        // up to 40 bytes of the line before the value
}

// loadMissContext fills miss.before from the corpus (the values are fake, but
// only the text before them is printed, so a report never shows a credential).
func (r *evalResult) loadMissContext(path string) error {
	want := map[int64][]int{}
	for i, m := range r.misses {
		want[m.Line] = append(want[m.Line], i)
	}
	if len(want) == 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for n := int64(1); ; n++ {
		line, err := br.ReadBytes('\n')
		for _, i := range want[n] {
			m := &r.misses[i]
			if m.Start <= len(line) {
				m.before = string(line[max(0, m.Start-40):m.Start])
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read corpus: %w", err)
		}
	}
}

type falsePos struct {
	evalFinding
	negCtx string // the hard negative it overlaps, if any
}

func (r *evalResult) recall() float64    { return ratio(r.tp, r.labels) }
func (r *evalResult) precision() float64 { return ratio(r.findings-r.fp, r.findings) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// failures lists the missed targets, empty when all are met.
func (r *evalResult) failures() []string {
	var out []string
	for k, s := range r.byLabelKind {
		if strictKinds[k] && ratio(s.matched, s.labels) < targetRecallStrict {
			out = append(out, fmt.Sprintf("recall of %s %.2f%% < %.0f%%", k, 100*ratio(s.matched, s.labels), 100*targetRecallStrict))
		}
	}
	if r.recall() < targetRecallOverall {
		out = append(out, fmt.Sprintf("overall recall %.2f%% < %.0f%%", 100*r.recall(), 100*targetRecallOverall))
	}
	if r.precision() < targetPrecision {
		out = append(out, fmt.Sprintf("precision %.2f%% < %.0f%%", 100*r.precision(), 100*targetPrecision))
	}
	sort.Strings(out)
	return out
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("corpus eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	findingsFile := fs.String("findings", "", "read findings from this file (output of `tokenwatch scan --format json DIR/corpus.log`) instead of scanning in process")
	verbose := fs.Int("v", 5, "print up to this many misses and false positives per kind")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: corpus eval [-findings FILE] [-v N] DIR")
		return 2
	}
	dir := fs.Arg(0)
	var findings []evalFinding
	var err error
	if *findingsFile != "" {
		findings, err = readFindings(*findingsFile)
	} else {
		findings, err = scanCorpus(ctx, filepath.Join(dir, corpusFile))
	}
	if err != nil {
		fmt.Fprintf(stderr, "corpus eval: %v\n", err)
		return 2
	}
	res, err := evaluate(dir, findings)
	if err != nil {
		fmt.Fprintf(stderr, "corpus eval: %v\n", err)
		return 2
	}
	if *verbose > 0 {
		if err := res.loadMissContext(filepath.Join(dir, corpusFile)); err != nil {
			fmt.Fprintf(stderr, "corpus eval: %v\n", err)
			return 2
		}
	}
	if err := printReport(stdout, dir, res, *verbose); err != nil {
		fmt.Fprintf(stderr, "corpus eval: %v\n", err)
		return 2
	}
	if f := res.failures(); len(f) > 0 {
		fmt.Fprintf(stdout, "\nTARGETS MISSED: %s\n", strings.Join(f, "; "))
		return 1
	}
	fmt.Fprintln(stdout, "\ntargets met")
	return 0
}

// scanCorpus scans path line by line with package detect. Lines exclude "\n"
// and a "\r" before it, as in tokenwatch scan.
func scanCorpus(ctx context.Context, path string) ([]evalFinding, error) {
	sc, err := detect.New(detect.WithKey(evalKey))
	if err != nil {
		return nil, fmt.Errorf("new scanner: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var (
		out  []evalFinding
		dst  []tokenwatch.Finding
		long []byte
	)
	for n := int64(1); ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("read corpus: %w", err)
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		dst = sc.Scan(line, dst[:0])
		for _, fd := range dst {
			out = append(out, evalFinding{Line: n, Start: fd.Start, End: fd.End, Kind: fd.Kind, Rule: fd.Rule})
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("read corpus: %w", err)
		}
	}
}

// readFindings reads `tokenwatch scan --format json` output.
func readFindings(path string) ([]evalFinding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open findings: %w", err)
	}
	defer f.Close()
	var out []evalFinding
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var fd evalFinding
		if err := dec.Decode(&fd); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode findings %s: %w", path, err)
		}
		out = append(out, fd)
	}
}

func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	var out []T
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		out = append(out, v)
	}
}

func overlaps(aStart, aEnd, bStart, bEnd int) bool { return aStart < bEnd && bStart < aEnd }

// evaluate matches findings against the labels of dir.
func evaluate(dir string, findings []evalFinding) (*evalResult, error) {
	labels, err := readJSONLines[Label](filepath.Join(dir, labelsFile))
	if err != nil {
		return nil, err
	}
	negs, err := readJSONLines[Negative](filepath.Join(dir, negativesFile))
	if err != nil {
		return nil, err
	}
	res := &evalResult{byLabelKind: map[string]*kindStats{}, byFindingKind: map[string]*kindStats{}}
	byLine := map[int64][]int{}
	for i, l := range labels {
		byLine[l.Line] = append(byLine[l.Line], i)
		st := res.byLabelKind[l.Kind]
		if st == nil {
			st = &kindStats{}
			res.byLabelKind[l.Kind] = st
		}
		st.labels++
	}
	negByLine := map[int64][]Negative{}
	for _, n := range negs {
		negByLine[n.Line] = append(negByLine[n.Line], n)
	}
	matched := make([]bool, len(labels))
	findingsByLine := map[int64][]evalFinding{}
	for _, fd := range findings {
		findingsByLine[fd.Line] = append(findingsByLine[fd.Line], fd)
		st := res.byFindingKind[fd.Kind]
		if st == nil {
			st = &kindStats{}
			res.byFindingKind[fd.Kind] = st
		}
		st.findings++
		res.findings++
		fam := family(fd.Kind)
		hit := -1
		for _, li := range byLine[fd.Line] {
			l := labels[li]
			if matched[li] || !overlaps(fd.Start, fd.End, l.Start, l.End) {
				continue
			}
			ok := family(l.Kind) == fam
			for _, a := range l.Alt {
				ok = ok || family(a) == fam
			}
			if ok {
				hit = li
				break
			}
		}
		if hit >= 0 {
			matched[hit] = true
			st.tp++
			res.tp++
			res.byLabelKind[labels[hit].Kind].matched++
			continue
		}
		res.fp++
		fpe := falsePos{evalFinding: fd}
		for _, n := range negByLine[fd.Line] {
			if overlaps(fd.Start, fd.End, n.Start, n.End) {
				fpe.negCtx = n.Ctx
			}
		}
		if fpe.negCtx == "" {
			for _, li := range byLine[fd.Line] {
				if overlaps(fd.Start, fd.End, labels[li].Start, labels[li].End) {
					fpe.negCtx = "overlaps label " + labels[li].Kind + "/" + labels[li].Ctx + " (wrong family or duplicate)"
				}
			}
		}
		res.falsePos = append(res.falsePos, fpe)
	}
	res.labels = len(labels)
	for i, l := range labels {
		if !matched[i] {
			res.misses = append(res.misses, miss{Label: l, got: findingsByLine[l.Line]})
		}
	}
	return res, nil
}

func printReport(w io.Writer, dir string, r *evalResult, verbose int) error {
	fmt.Fprintf(w, "corpus %s: %d labelled credentials, %d findings\n\n", dir, r.labels, r.findings)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "label kind\tlabels\tfound\trecall\t")
	for _, k := range sortedKeys(r.byLabelKind) {
		s := r.byLabelKind[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f%%\t\n", k, s.labels, s.matched, 100*ratio(s.matched, s.labels))
	}
	fmt.Fprintf(tw, "overall\t%d\t%d\t%.2f%%\t\n", r.labels, r.tp, 100*r.recall())
	fmt.Fprintln(tw, "\t\t\t\t")
	fmt.Fprintln(tw, "finding kind\tfindings\ttrue\tprecision\t")
	for _, k := range sortedKeys(r.byFindingKind) {
		s := r.byFindingKind[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f%%\t\n", k, s.findings, s.tp, 100*ratio(s.tp, s.findings))
	}
	fmt.Fprintf(tw, "overall\t%d\t%d\t%.2f%%\t\n", r.findings, r.findings-r.fp, 100*r.precision())
	if err := tw.Flush(); err != nil {
		return err
	}
	if verbose <= 0 {
		return nil
	}
	shown := map[string]int{}
	for _, m := range r.misses {
		key := m.Kind + "/" + m.Ctx
		if shown[key] >= verbose {
			continue
		}
		shown[key]++
		got := "no finding on the line"
		if len(m.got) > 0 {
			var parts []string
			for _, g := range m.got {
				parts = append(parts, fmt.Sprintf("%s(%s)[%d:%d]", g.Kind, g.Rule, g.Start, g.End))
			}
			got = "line has " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(w, "MISS %s ctx=%s line %d [%d:%d] after %q: %s\n", m.Kind, m.Ctx, m.Line, m.Start, m.End, m.before, got)
	}
	shown = map[string]int{}
	for _, f := range r.falsePos {
		key := f.Kind + "/" + f.negCtx
		if shown[key] >= verbose {
			continue
		}
		shown[key]++
		ctx := f.negCtx
		if ctx == "" {
			ctx = "clean text"
		}
		fmt.Fprintf(w, "FALSE POSITIVE %s (%s) line %d [%d:%d] on %s\n", f.Kind, f.Rule, f.Line, f.Start, f.End, ctx)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
