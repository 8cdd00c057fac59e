package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/detect"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// testKey is the fixed fingerprint key of the golden files (also the demo key
// of docs/cli.md).
const testKey = "tokenwatch-demo-key"

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCmd runs tokenwatch in process with stdin and a controlled environment.
func runCmd(t testing.TB, stdin io.Reader, envv map[string]string, args ...string) cliResult {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(k string) string { return envv[k] }}
	code := runCLI(context.Background(), env, args)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// withEngine runs f with defaultEngine replaced by cfg.
func withEngine(t testing.TB, cfg engineConfig) {
	t.Helper()
	old := defaultEngine
	defaultEngine = cfg
	t.Cleanup(func() { defaultEngine = old })
}

// rec is a finding as compared by tests.
type rec struct {
	Line        int64  `json:"line"`
	Start       int    `json:"start"`
	End         int    `json:"end"`
	Kind        string `json:"kind"`
	Rule        string `json:"rule"`
	Fingerprint string `json:"fingerprint"`
}

func testScanner(t testing.TB) *detect.Scanner {
	t.Helper()
	sc, err := detect.New(detect.WithKey([]byte(testKey)))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// oracle scans data line by line with detect directly: the reference the CLI
// must reproduce whatever its chunking, windowing and parallelism.
func oracle(t testing.TB, data []byte) []rec {
	t.Helper()
	sc := testScanner(t)
	var out []rec
	var dst []tokenwatch.Finding
	for n := int64(1); len(data) > 0; n++ {
		line := data
		i := bytes.IndexByte(data, '\n')
		if i >= 0 {
			line, data = data[:i], data[i+1:]
			line = bytes.TrimSuffix(line, []byte{'\r'})
		} else {
			data = nil
		}
		dst = sc.Scan(line, dst[:0])
		for _, f := range dst {
			out = append(out, rec{n, f.Start, f.End, f.Kind, f.Rule, f.Fingerprint.String()})
		}
	}
	return out
}

func parseJSONFindings(t testing.TB, s string) []rec {
	t.Helper()
	var out []rec
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		var r rec
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decode scan output: %v\n%s", err, s)
		}
		out = append(out, r)
	}
}

func sampleTokens(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/sample.tokens")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the current output (go test -run %s -update rewrites it)\n--- got\n%s", path, t.Name(), got)
	}
}

func TestScanGolden(t *testing.T) {
	for _, format := range []string{"text", "json", "sarif"} {
		t.Run(format, func(t *testing.T) {
			r := runCmd(t, nil, nil, "scan", "--format", format, "--fingerprint-key", testKey, "testdata/sample.log")
			if r.code != exitFindings {
				t.Fatalf("exit %d, want 1; stderr: %s", r.code, r.stderr)
			}
			for _, tok := range sampleTokens(t) {
				if strings.Contains(r.stdout, tok) {
					t.Fatalf("output contains a raw token (%s…)", tok[:6])
				}
			}
			ext := map[string]string{"text": "txt", "json": "jsonl", "sarif": "sarif"}[format]
			out := r.stdout
			if format == "sarif" {
				// The driver's rules are detect.Rules() (checked by
				// TestSARIFValid); the golden file pins everything else.
				i := strings.Index(out, `"rules":[`)
				j := strings.Index(out, "\n  ]}},")
				if i < 0 || j < i {
					t.Fatalf("SARIF output lacks the rules array:\n%s", out)
				}
				out = out[:i] + `"rules":[ …detect.Rules()…` + out[j:]
			}
			checkGolden(t, "sample."+ext+".golden", []byte(out))
		})
	}
}

// TestScanMatchesOracle: the CLI's JSON findings equal per-line detect scanning
// of the sample, for every engine size (chunk boundaries everywhere).
func TestScanMatchesOracle(t *testing.T) {
	data, err := os.ReadFile("testdata/sample.log")
	if err != nil {
		t.Fatal(err)
	}
	want := oracle(t, data)
	if len(want) < 8 {
		t.Fatalf("sample yields only %d findings; the fixture is meant to cover every kind", len(want))
	}
	for _, cfg := range []engineConfig{
		defaultEngine,
		{chunkSize: 64, maxLine: 64 << 10, margin: 256, workers: 3},
		{chunkSize: 1000, maxLine: 64 << 10, margin: 256, workers: 1},
	} {
		withEngine(t, cfg)
		r := runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, "testdata/sample.log")
		if got := parseJSONFindings(t, r.stdout); !slices.Equal(got, want) {
			t.Errorf("chunk %d: findings differ\n got %v\nwant %v", cfg.chunkSize, got, want)
		}
	}
}

func TestAppendFindingJSONMatchesEncodingJSON(t *testing.T) {
	fp, _ := tokenwatch.ParseFingerprint("00112233445566778899aabbccddeeff")
	cases := map[string]findingJSON{
		"plain":   {Source: "logs/app.log", Line: 3, Start: 10, End: 50, Kind: "bearer", Rule: "authorization.bearer", Fingerprint: fp, Redacted: "abcdef…wxyz"},
		"escapes": {Source: "we\"ird\\path\n\t\x01<&>\u2028\u2029\xff.log", Line: 1, Kind: "k", Rule: "r", Fingerprint: fp, Redacted: "…"},
		"jwt-full": {Source: "-", Line: 9, Kind: "jwt", Rule: "jwt.compact", Fingerprint: fp, Redacted: "eyJhbG…abcd", JWT: &tokenwatch.JWTInfo{
			Alg: "RS256", Kid: "k1", Typ: "JWT", Enc: "A256GCM", Iss: "https://i/", Sub: "s\"ub", Aud: []string{"a", "b"}, Exp: 4102444800, Iat: 1, Nbf: -5,
			Jti: "j", ClientID: "c", Scope: []string{"openid", "x"}, HasNonce: true, HasAtHash: true, CnfJKT: "t", CnfX5T: "x", Expired: true, AlgNone: true, LifetimeSeconds: 3600}},
		"jwt-empty": {Source: "a", Kind: "jwt", Fingerprint: fp, JWT: &tokenwatch.JWTInfo{}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := tokenwatch.Finding{Kind: c.Kind, Rule: c.Rule, Start: c.Start, End: c.End, Fingerprint: c.Fingerprint, Redacted: c.Redacted, JWT: c.JWT}
			got := AppendFindingJSON(nil, c.Source, c.Line, &f)
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(c); err != nil {
				t.Fatal(err)
			}
			if string(got)+"\n" != want.String() {
				t.Errorf("AppendFindingJSON\n got %s\nwant %s", got, want.String())
			}
		})
	}
}

func TestAppendFindingJSONAllocs(t *testing.T) {
	f := tokenwatch.Finding{Kind: "jwt", Rule: "jwt.compact", Start: 1, End: 9, Redacted: "eyJhbG…abcd",
		JWT: &tokenwatch.JWTInfo{Alg: "RS256", Iss: "https://i/", Aud: []string{"a"}, Exp: 10, Scope: []string{"x"}}}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendFindingJSON(buf[:0], "logs/app.log", 12, &f) }); n != 0 {
		t.Errorf("AppendFindingJSON allocates %.0f times per call, want 0", n)
	}
}

func TestScanExitCodes(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.log")
	os.WriteFile(clean, []byte("nothing to see\nGET /healthz 200\n"), 0o644)
	missing := filepath.Join(dir, "missing.log")
	sample := "testdata/sample.log"
	cases := []struct {
		name       string
		args       []string
		stdin      string
		code       int
		stdoutHas  string
		stderrHas  string
		stdoutNone bool
	}{
		{name: "clean", args: []string{clean}, code: exitOK, stdoutNone: true},
		{name: "findings", args: []string{sample}, code: exitFindings, stdoutHas: "testdata/sample.log:1:"},
		{name: "missing file", args: []string{missing}, code: exitUsage, stderrHas: "missing.log"},
		{name: "missing wins over findings", args: []string{missing, sample}, code: exitUsage, stdoutHas: "sample.log:1:", stderrHas: "no such file"},
		{name: "stdin dash", args: []string{"-"}, stdin: "Authorization: Bearer " + sampleTokens(t)[0] + "\n", code: exitFindings, stdoutHas: "-:1:"},
		{name: "stdin implicit", args: nil, stdin: "x\n", code: exitOK},
		{name: "bad flag", args: []string{"--nope"}, code: exitUsage, stderrHas: "flag provided but not defined"},
		{name: "bad format", args: []string{"--format", "xml", sample}, code: exitUsage, stderrHas: `--format "xml"`},
		{name: "help", args: []string{"--help"}, code: exitOK, stdoutHas: "usage: tokenwatch scan"},
		{name: "stdin twice", args: []string{"-", "-"}, code: exitUsage, stderrHas: "more than once"},
		{name: "bad key", args: []string{"--fingerprint-key", "short", sample}, code: exitUsage, stderrHas: "fingerprint-key"},
		{name: "bad baseline", args: []string{"--baseline", missing, sample}, code: exitUsage, stderrHas: "baseline"},
		{name: "list rules", args: []string{"--list-rules"}, code: exitOK, stdoutHas: "jwt.compact"},
		{name: "list rules json", args: []string{"--list-rules", "--format", "json"}, code: exitOK, stdoutHas: `{"kind":"jwt","rule":"jwt.compact"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"scan"}, c.args...)
			if c.name != "bad key" {
				args = append([]string{"scan", "--fingerprint-key", testKey}, c.args...)
			}
			r := runCmd(t, strings.NewReader(c.stdin), nil, args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
			if c.stdoutHas != "" && !strings.Contains(r.stdout, c.stdoutHas) {
				t.Errorf("stdout lacks %q:\n%s", c.stdoutHas, r.stdout)
			}
			if c.stderrHas != "" && !strings.Contains(r.stderr, c.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", c.stderrHas, r.stderr)
			}
			if c.stdoutNone && r.stdout != "" {
				t.Errorf("stdout not empty:\n%s", r.stdout)
			}
		})
	}
}

func TestScanKeyPrecedence(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "fp.key")
	fpOf := func(r cliResult) string {
		t.Helper()
		fs := parseJSONFindings(t, r.stdout)
		if len(fs) == 0 {
			t.Fatalf("no findings; stderr %s", r.stderr)
		}
		return fs[0].Fingerprint
	}
	flagFP := fpOf(runCmd(t, nil, map[string]string{"TOKENWATCH_FINGERPRINT_KEY": "another-key-of-16-bytes"}, "scan", "--format", "json", "--fingerprint-key", testKey, "--key-file", keyFile, "testdata/sample.log"))
	envFP := fpOf(runCmd(t, nil, map[string]string{"TOKENWATCH_FINGERPRINT_KEY": testKey}, "scan", "--format", "json", "--key-file", keyFile, "testdata/sample.log"))
	if flagFP != envFP {
		t.Errorf("--fingerprint-key did not win over the environment: %s vs %s", flagFP, envFP)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Errorf("key file created although a key was given")
	}
	r := runCmd(t, nil, nil, "scan", "--format", "json", "--key-file", keyFile, "testdata/sample.log")
	genFP := fpOf(r)
	if !strings.Contains(r.stderr, "created fingerprint key file") {
		t.Errorf("no notice about the generated key file: %q", r.stderr)
	}
	if genFP == envFP {
		t.Errorf("generated key gave the demo key's fingerprint")
	}
	if again := fpOf(runCmd(t, nil, nil, "scan", "--format", "json", "--key-file", keyFile, "testdata/sample.log")); again != genFP {
		t.Errorf("key file not reused: %s vs %s", again, genFP)
	}
}

func TestScanBaseline(t *testing.T) {
	dir := t.TempDir()
	full := runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, "testdata/sample.log")
	all := parseJSONFindings(t, full.stdout)
	jsonBase := filepath.Join(dir, "baseline.jsonl")
	os.WriteFile(jsonBase, []byte(full.stdout), 0o644)
	r := runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, "--baseline", jsonBase, "testdata/sample.log")
	if r.code != exitOK || r.stdout != "" {
		t.Fatalf("json baseline: exit %d, output %q, want 0 and nothing", r.code, r.stdout)
	}
	// Bare fingerprints, comments, blank lines: suppress all but the first
	// finding's credential (which occurs twice in the sample).
	var b strings.Builder
	b.WriteString("# known findings\n\n")
	keep := 0
	for _, f := range all {
		if f.Fingerprint != all[0].Fingerprint {
			b.WriteString(f.Fingerprint + "\n")
		} else {
			keep++
		}
	}
	fpBase := filepath.Join(dir, "fps.txt")
	os.WriteFile(fpBase, []byte(b.String()), 0o644)
	r = runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, "--baseline", fpBase, "testdata/sample.log")
	got := parseJSONFindings(t, r.stdout)
	if r.code != exitFindings || len(got) != keep {
		t.Fatalf("exit %d with %d findings, want 1 with %d", r.code, len(got), keep)
	}
	for _, g := range got {
		if g.Fingerprint != all[0].Fingerprint {
			t.Errorf("finding %v not suppressed", g)
		}
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("0011\n"), 0o644)
	r = runCmd(t, nil, nil, "scan", "--fingerprint-key", testKey, "--baseline", bad, "testdata/sample.log")
	if r.code != exitUsage || !strings.Contains(r.stderr, "line 1") {
		t.Errorf("bad baseline: exit %d stderr %q, want 2 naming line 1", r.code, r.stderr)
	}
}

// bigLog builds a log whose lines straddle every chunk boundary of interest:
// filler lines sized so credentials land across 64 KiB and 1 MiB offsets.
func bigLog(t testing.TB, size int, crlfEvery int) []byte {
	t.Helper()
	toks := sampleTokens(t)
	r := rand.New(rand.NewPCG(7, 7))
	var b bytes.Buffer
	for n := 0; b.Len() < size; n++ {
		switch {
		case n%7 == 3:
			fmt.Fprintf(&b, "%s Authorization: Bearer %s", strings.Repeat("x", r.IntN(300)), toks[r.IntN(3)])
		case n%11 == 5:
			fmt.Fprintf(&b, "GET /cb?access_token=%s&x=%d", toks[r.IntN(3)], n)
		default:
			b.WriteString(strings.Repeat("clean log text ", 1+r.IntN(40)))
		}
		if crlfEvery > 0 && n%crlfEvery == 0 {
			b.WriteString("\r\n")
		} else {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func TestScanBufferBoundaries(t *testing.T) {
	data := bigLog(t, 3<<20, 3)
	path := filepath.Join(t.TempDir(), "big.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := oracle(t, data)
	for _, cfg := range []engineConfig{
		defaultEngine,
		{chunkSize: 64 << 10, maxLine: 8 << 20, margin: 1024, workers: 2},
		{chunkSize: 4093, maxLine: 8 << 20, margin: 1024, workers: 4},
	} {
		withEngine(t, cfg)
		r := runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, path)
		got := parseJSONFindings(t, r.stdout)
		if !slices.Equal(got, want) {
			t.Errorf("chunk %d workers %d: %d findings, oracle %d (first diff %s)", cfg.chunkSize, cfg.workers, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []rec) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("#%d got %v want %v", i, a[i], b[i])
		}
	}
	return "length"
}

// TestScanLongLineWindows: lines longer than maxLine are scanned in overlapping
// windows; every credential is reported exactly once with line offsets.
func TestScanLongLineWindows(t *testing.T) {
	toks := sampleTokens(t)
	var b bytes.Buffer
	b.WriteString("short line before\n")
	// One line of ~1.5 MB with a credential every ~10 KB at varying offsets,
	// and some non-ASCII text so SARIF columns must count across windows.
	r := rand.New(rand.NewPCG(1, 2))
	for b.Len() < 1500<<10 {
		b.WriteString(strings.Repeat("é-filler ", r.IntN(1200)))
		fmt.Fprintf(&b, " Authorization: Bearer %s ", toks[r.IntN(3)])
	}
	b.WriteString("\r\nGET /cb?access_token=" + toks[0] + "&x=1\nlast line no newline token " + toks[5])
	data := b.Bytes()
	path := filepath.Join(t.TempDir(), "long.log")
	os.WriteFile(path, data, 0o644)
	want := oracle(t, data)
	if len(want) < 100 {
		t.Fatalf("oracle found %d findings, want >= 100", len(want))
	}
	withEngine(t, engineConfig{chunkSize: 16 << 10, maxLine: 64 << 10, margin: 512, workers: 3})
	res := runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, path)
	got := parseJSONFindings(t, res.stdout)
	if !slices.Equal(got, want) {
		t.Fatalf("windowed scan: %d findings, oracle %d (first diff %s)", len(got), len(want), firstDiff(got, want))
	}
	// SARIF columns count code points from the line start, across windows.
	res = runCmd(t, nil, nil, "scan", "--format", "sarif", "--fingerprint-key", testKey, path)
	doc := parseSARIF(t, res.stdout)
	line2 := data[bytes.IndexByte(data, '\n')+1:]
	for i, rs := range doc.Runs[0].Results {
		reg := rs.Locations[0].PhysicalLocation.Region
		w := want[i]
		if reg.StartLine != int(w.Line) {
			t.Fatalf("result %d line %d, want %d", i, reg.StartLine, w.Line)
		}
		if w.Line != 2 {
			continue
		}
		if wantCol := 1 + utf8.RuneCount(line2[:w.Start]); reg.StartColumn != wantCol {
			t.Fatalf("result %d startColumn %d, want %d", i, reg.StartColumn, wantCol)
		}
	}
}

func TestScanCRLFOffsets(t *testing.T) {
	tok := sampleTokens(t)[0]
	in := "a\r\nAuthorization: Bearer " + tok + "\r\n\r\nx"
	r := runCmd(t, strings.NewReader(in), nil, "scan", "--format", "json", "--fingerprint-key", testKey, "-")
	got := parseJSONFindings(t, r.stdout)
	if len(got) != 1 || got[0].Line != 2 || got[0].Start != len("Authorization: Bearer ") || got[0].End != len("Authorization: Bearer ")+len(tok) {
		t.Fatalf("got %v, want one finding on line 2 at [22:%d]", got, 22+len(tok))
	}
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScanGzipAndDirectories(t *testing.T) {
	data, _ := os.ReadFile("testdata/sample.log")
	want := oracle(t, data)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.log"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.log.gz"), gzipBytes(t, data), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "c.bin"), append([]byte("\x00\x01binary"), data...), 0o644)
	os.WriteFile(filepath.Join(dir, ".git", "config"), data, 0o644)

	r := runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, dir)
	if r.code != exitFindings {
		t.Fatalf("exit %d; stderr %s", r.code, r.stderr)
	}
	var bySource = map[string][]rec{}
	var order []string
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var v struct {
			Source string `json:"source"`
			rec
		}
		if err := dec.Decode(&v); err != nil {
			break
		}
		if len(order) == 0 || order[len(order)-1] != v.Source {
			order = append(order, v.Source)
		}
		bySource[v.Source] = append(bySource[v.Source], v.rec)
	}
	wantOrder := []string{filepath.Join(dir, "a.log"), filepath.Join(dir, "sub", "b.log.gz")}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("sources %v, want %v (binary file and .git skipped, lexical order)", order, wantOrder)
	}
	for _, s := range wantOrder {
		if !slices.Equal(bySource[s], want) {
			t.Errorf("%s: findings differ from the plain sample", s)
		}
	}
	if r.stderr != "" {
		t.Errorf("a binary file found by a walk is skipped silently; stderr: %s", r.stderr)
	}
	// A symlink to the directory is followed when given as an argument.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, nil, nil, "scan", "--format", "json", "--fingerprint-key", testKey, link)
	if got := parseJSONFindings(t, r.stdout); len(got) != 2*len(want) {
		t.Errorf("symlinked directory: %d findings, want %d", len(got), 2*len(want))
	}
	// Named explicitly, a binary file is skipped with a notice.
	r = runCmd(t, nil, nil, "scan", "--fingerprint-key", testKey, filepath.Join(dir, "sub", "c.bin"))
	if r.code != exitOK || !strings.Contains(r.stderr, "binary file skipped") {
		t.Errorf("explicit binary: exit %d stderr %q", r.code, r.stderr)
	}
	// A corrupt gzip file is an I/O error.
	bad := filepath.Join(dir, "bad.gz")
	gz := gzipBytes(t, data)
	os.WriteFile(bad, gz[:len(gz)/2], 0o644)
	r = runCmd(t, nil, nil, "scan", "--fingerprint-key", testKey, bad)
	if r.code != exitUsage || !strings.Contains(r.stderr, "bad.gz") {
		t.Errorf("truncated gzip: exit %d stderr %q, want 2 naming the file", r.code, r.stderr)
	}
}

// errReader fails after delivering its data.
type errReader struct {
	data []byte
	err  error
}

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestScanReadError(t *testing.T) {
	tok := sampleTokens(t)[0]
	in := &errReader{data: []byte("Authorization: Bearer " + tok + "\npartial"), err: errors.New("device on fire")}
	r := runCmd(t, in, nil, "scan", "--fingerprint-key", testKey, "-")
	if r.code != exitUsage || !strings.Contains(r.stderr, "device on fire") {
		t.Fatalf("exit %d stderr %q, want 2 with the error", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "-:1:") {
		t.Errorf("findings before the error were not reported: %q", r.stdout)
	}
}

// TestScanUnreadableFile: a file that opens but cannot be read (/proc/self/mem
// fails with EIO at offset 0) is reported, the other inputs are scanned, and the
// exit status is 2 although there were findings.
func TestScanUnreadableFile(t *testing.T) {
	if _, err := os.Stat("/proc/self/mem"); err != nil {
		t.Skip("needs Linux /proc/self/mem")
	}
	r := runCmd(t, nil, nil, "scan", "--fingerprint-key", testKey, "/proc/self/mem", "testdata/sample.log")
	if r.code != exitUsage {
		t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "read /proc/self/mem") || strings.Count(r.stderr, "/proc/self/mem") != 1 {
		t.Errorf("stderr %q: want one clear message naming the file", r.stderr)
	}
	if !strings.Contains(r.stdout, "testdata/sample.log:1:") {
		t.Errorf("the readable file was not scanned: %q", r.stdout)
	}
}

func TestScanParallelOrder(t *testing.T) {
	data := bigLog(t, 2<<20, 0)
	want := oracle(t, data)
	withEngine(t, engineConfig{chunkSize: 2048, maxLine: 1 << 20, margin: 512, workers: 8})
	r := runCmd(t, bytes.NewReader(data), nil, "scan", "--format", "json", "--fingerprint-key", testKey)
	if got := parseJSONFindings(t, r.stdout); !slices.Equal(got, want) {
		t.Fatalf("parallel scan out of order or incomplete (first diff %s)", firstDiff(got, want))
	}
}

// slowReader returns its data in small pieces with a pause, so a scan lasts
// long enough for the progress line.
type slowReader struct {
	data  []byte
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(p[:min(len(p), 4096)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestScanProgressOnTerminal(t *testing.T) {
	oldAfter, oldEvery := progressAfter, progressEvery
	progressAfter, progressEvery = 0, 5*time.Millisecond
	t.Cleanup(func() { progressAfter, progressEvery = oldAfter, oldEvery })
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: &slowReader{data: bigLog(t, 100<<10, 0), pause: 2 * time.Millisecond}, stdout: &out, stderr: &errb, stderrTTY: true, getenv: func(string) string { return "" }}
	code := runCLI(context.Background(), env, []string{"scan", "--fingerprint-key", testKey, "-"})
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "\r") || !strings.Contains(errb.String(), "MB/s") {
		t.Errorf("no progress line on a terminal: %q", errb.String())
	}
	// Not a terminal: no progress.
	r := runCmd(t, &slowReader{data: bigLog(t, 100<<10, 0), pause: time.Millisecond}, nil, "scan", "--fingerprint-key", testKey, "-")
	if strings.Contains(r.stderr, "MB/s") {
		t.Errorf("progress printed although stderr is not a terminal")
	}
}

// sarifDoc is the part of SARIF 2.1.0 the tests check.
type sarifDoc struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		ColumnKind string `json:"columnKind"`
		Results    []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex *int   `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine   int `json:"startLine"`
						StartColumn int `json:"startColumn"`
						EndColumn   int `json:"endColumn"`
					} `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
		} `json:"results"`
	} `json:"runs"`
}

func parseSARIF(t testing.TB, s string) sarifDoc {
	t.Helper()
	var doc sarifDoc
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var raw map[string]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		t.Fatalf("SARIF output is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestSARIFValid checks the SARIF 2.1.0 requirements code-scanning UIs rely on:
// version, one run with tool.driver.name, rules with ids, results whose ruleId
// names a rule (and ruleIndex points at it), a message text, a location with an
// artifact URI and a 1-based region, and partial fingerprints.
func TestSARIFValid(t *testing.T) {
	r := runCmd(t, nil, nil, "scan", "--format", "sarif", "--fingerprint-key", testKey, "testdata/sample.log")
	doc := parseSARIF(t, r.stdout)
	if doc.Version != "2.1.0" || doc.Schema == "" || len(doc.Runs) != 1 {
		t.Fatalf("version %q schema %q runs %d", doc.Version, doc.Schema, len(doc.Runs))
	}
	run := doc.Runs[0]
	if run.Tool.Driver.Name != "tokenwatch" || len(run.Tool.Driver.Rules) != len(detect.Rules()) {
		t.Fatalf("driver %q with %d rules, want tokenwatch with %d", run.Tool.Driver.Name, len(run.Tool.Driver.Rules), len(detect.Rules()))
	}
	if run.ColumnKind != "unicodeCodePoints" {
		t.Errorf("columnKind %q", run.ColumnKind)
	}
	ids := map[string]int{}
	for i, rule := range run.Tool.Driver.Rules {
		if rule.ID == "" || rule.ShortDescription.Text == "" {
			t.Errorf("rule %d lacks id or shortDescription", i)
		}
		ids[rule.ID] = i
	}
	data, _ := os.ReadFile("testdata/sample.log")
	want := oracle(t, data)
	if len(run.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(run.Results), len(want))
	}
	lines := strings.Split(string(data), "\n")
	for i, res := range run.Results {
		idx, ok := ids[res.RuleID]
		if !ok || res.RuleIndex == nil || *res.RuleIndex != idx {
			t.Errorf("result %d: ruleId %q / ruleIndex %v do not name a driver rule", i, res.RuleID, res.RuleIndex)
		}
		if res.Level != "error" || res.Message.Text == "" || len(res.Locations) != 1 {
			t.Errorf("result %d: level %q message %q locations %d", i, res.Level, res.Message.Text, len(res.Locations))
			continue
		}
		loc := res.Locations[0].PhysicalLocation
		if loc.ArtifactLocation.URI != "testdata/sample.log" {
			t.Errorf("result %d uri %q", i, loc.ArtifactLocation.URI)
		}
		w := want[i]
		line := strings.TrimSuffix(lines[w.Line-1], "\r")
		wantCol := 1 + utf8.RuneCountInString(line[:w.Start])
		wantEnd := wantCol + utf8.RuneCountInString(line[w.Start:w.End])
		if loc.Region.StartLine != int(w.Line) || loc.Region.StartColumn != wantCol || loc.Region.EndColumn != wantEnd {
			t.Errorf("result %d region %+v, want line %d columns %d-%d", i, loc.Region, w.Line, wantCol, wantEnd)
		}
		if res.PartialFingerprints[sarifFingerprintKey] != w.Fingerprint {
			t.Errorf("result %d partialFingerprints %v, want %s", i, res.PartialFingerprints, w.Fingerprint)
		}
	}
	// An empty scan is still a valid document.
	r = runCmd(t, strings.NewReader("clean\n"), nil, "scan", "--format", "sarif", "--fingerprint-key", testKey, "-")
	if doc := parseSARIF(t, r.stdout); len(doc.Runs) != 1 || len(doc.Runs[0].Results) != 0 {
		t.Errorf("empty scan: %+v", doc)
	}
}

func TestSARIFURI(t *testing.T) {
	for in, want := range map[string]string{
		"logs/app.log":     "logs/app.log",
		"/var/log/a b.log": "file:///var/log/a%20b.log",
		"-":                "-",
		"c:weird.log":      "./c:weird.log",
		"dir/100%.log":     "dir/100%25.log",
	} {
		if got := sarifURI(in); got != want {
			t.Errorf("sarifURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkAppendFindingJSON(b *testing.B) {
	f := tokenwatch.Finding{Kind: "jwt", Rule: "jwt.compact", Start: 40, End: 800, Redacted: "eyJhbG…abcd",
		JWT: &tokenwatch.JWTInfo{Alg: "RS256", Kid: "k1", Typ: "JWT", Iss: "https://login.example.com/", Sub: "user-1234", Aud: []string{"api"}, Exp: 4102444800, Iat: 4102441200, Jti: "c0ffee00-1111-4222-8333-444455556666", ClientID: "web-app", Scope: []string{"openid", "profile"}, LifetimeSeconds: 3600}}
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendFindingJSON(buf[:0], "logs/app.log", 12, &f)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding_json", func(b *testing.B) {
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		v := findingJSON{Source: "logs/app.log", Line: 12, Start: f.Start, End: f.End, Kind: f.Kind, Rule: f.Rule, Fingerprint: f.Fingerprint, Redacted: f.Redacted, JWT: f.JWT}
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			enc.Encode(v)
		}
		b.SetBytes(int64(out.Len()))
	})
}

// cleanHeavyLog is bigLog thinned to about one credential line per 1,000.
func cleanHeavyLog(b *testing.B, size int) []byte {
	data := bigLog(b, size, 0)
	var clean bytes.Buffer
	for i, l := range bytes.SplitAfter(data, []byte{'\n'}) {
		if i%1000 == 0 || !bytes.Contains(l, []byte("ey")) {
			clean.Write(l)
		}
	}
	return clean.Bytes()
}

// BenchmarkScanCLI measures the whole scan command (read, chunk, scan, order,
// format) over a clean-heavy in-memory log, with one worker and with all
// cores, against the same lines scanned directly with detect in one loop: the
// jobs=1 / direct ratio is the engine's overhead.
func BenchmarkScanCLI(b *testing.B) {
	data := cleanHeavyLog(b, 32<<20)
	for _, jobs := range []string{"1", "0"} {
		b.Run("jobs="+map[string]string{"1": "1", "0": "all"}[jobs], func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r := runCmd(b, bytes.NewReader(data), nil, "scan", "--format", "json", "--jobs", jobs, "--fingerprint-key", testKey, "-")
				if r.code == exitUsage {
					b.Fatal(r.stderr)
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) {
		sc := testScanner(b)
		var dst []tokenwatch.Finding
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			rest := data
			for len(rest) > 0 {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					i = len(rest)
				}
				dst = sc.Scan(rest[:i], dst[:0])
				rest = rest[min(i+1, len(rest)):]
			}
		}
	})
}

// syncBuffer is a bytes.Buffer safe for one writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestScanStreamsStdin: on a stream (tail -f | tokenwatch scan) a finding is
// printed as soon as its line is complete, before the input ends.
func TestScanStreamsStdin(t *testing.T) {
	pr, pw := io.Pipe()
	var out, errb syncBuffer
	env := &cliEnv{stdin: pr, stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- runCLI(context.Background(), env, []string{"scan", "--fingerprint-key", testKey, "-"}) }()
	fmt.Fprintf(pw, "clean\nAuthorization: Bearer %s\npartial line without its end", sampleTokens(t)[0])
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "-:2:23 jwt") {
		if time.Now().After(deadline) {
			t.Fatalf("finding not printed while stdin is still open; stdout %q stderr %q", out.String(), errb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	pw.Close()
	if code := <-done; code != exitFindings {
		t.Fatalf("exit %d", code)
	}
}

// FuzzScanChunking: whatever the input and the engine sizes (chunks down to 16
// bytes, long-line windows down to twice the overlap, 1-3 workers), scan
// reports exactly what a per-line scan of the same bytes reports.
func FuzzScanChunking(f *testing.F) {
	sample, _ := os.ReadFile("testdata/sample.log")
	toks := strings.Fields(string(readTestFile(f, "testdata/sample.tokens")))
	f.Add(sample, uint16(0), uint16(0))
	f.Add(sample, uint16(100), uint16(7))
	long := strings.Repeat("filler é ", 300) + "Authorization: Bearer " + toks[3] + " " + strings.Repeat("x", 500) + " access_token=" + toks[8] + "&\r\n"
	f.Add([]byte(long+long), uint16(33), uint16(1000))
	f.Add([]byte("a\r\n\r\nAuthorization: Basic "+toks[4]+"\nno newline "+toks[5]), uint16(3), uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk, lineCap uint16) {
		oldTok := maxTokenLen
		maxTokenLen = 256
		defer func() { maxTokenLen = oldTok }()
		cfg := engineConfig{chunkSize: 16 + int(chunk)%512, margin: 64, workers: 1 + int(chunk)%3}
		cfg.maxLine = 2*(maxTokenLen+2*cfg.margin) + int(lineCap)%1024
		old := defaultEngine
		defaultEngine = cfg
		defer func() { defaultEngine = old }()

		sc, err := detect.New(detect.WithKey([]byte(testKey)), detect.WithMaxTokenLen(maxTokenLen))
		if err != nil {
			t.Fatal(err)
		}
		var want []rec
		var dst []tokenwatch.Finding
		data := in
		for n := int64(1); len(data) > 0; n++ {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = bytes.TrimSuffix(data[:i], []byte{'\r'}), data[i+1:]
			} else {
				data = nil
			}
			dst = sc.Scan(line, dst[:0])
			for _, fd := range dst {
				want = append(want, rec{n, fd.Start, fd.End, fd.Kind, fd.Rule, fd.Fingerprint.String()})
			}
		}
		r := runCmd(t, bytes.NewReader(in), nil, "scan", "--format", "json", "--fingerprint-key", testKey, "-")
		if r.code == exitUsage {
			t.Fatalf("exit 2: %s", r.stderr)
		}
		if got := parseJSONFindings(t, r.stdout); !slices.Equal(got, want) {
			t.Fatalf("chunk %d maxLine %d workers %d: scan differs from the per-line oracle (%s)", cfg.chunkSize, cfg.maxLine, cfg.workers, firstDiff(got, want))
		}
	})
}

func readTestFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
