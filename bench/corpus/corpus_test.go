package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallCorpus generates a quality-mode corpus in a temp dir.
func smallCorpus(t testing.TB, lines int64, seed uint64) (string, Meta) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := genConfigFor("quality", lines, 0, seed, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LongSize = 1536 << 10
	meta, err := generate(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, meta
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(b, []byte{'\n'})
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte{'\r'})
	}
	return lines
}

func TestGenDeterministic(t *testing.T) {
	a, _ := smallCorpus(t, 3000, 9)
	b, _ := smallCorpus(t, 3000, 9)
	c, _ := smallCorpus(t, 3000, 10)
	for _, name := range []string{corpusFile, labelsFile, negativesFile, metaFile} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	x, _ := os.ReadFile(filepath.Join(a, corpusFile))
	z, _ := os.ReadFile(filepath.Join(c, corpusFile))
	if bytes.Equal(x, z) {
		t.Error("different seeds gave the same corpus")
	}
}

// TestGenLabels checks that every label points at a well-formed credential of
// its kind, that every context and kind is present, and that the corpus has the
// shapes the issue asks for (CRLF, multi-MB lines).
func TestGenLabels(t *testing.T) {
	dir, meta := smallCorpus(t, 6000, 3)
	lines := readLines(t, filepath.Join(dir, corpusFile))
	labels, err := readJSONLines[Label](filepath.Join(dir, labelsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != meta.Labels || meta.Lines != 6000 {
		t.Fatalf("meta says %d labels / %d lines, got %d labels", meta.Labels, meta.Lines, len(labels))
	}
	ctxs := map[string]int{}
	kinds := map[string]int{}
	for _, l := range labels {
		ctxs[l.Ctx]++
		kinds[l.Kind]++
		line := lines[l.Line-1]
		if l.Start < 0 || l.End > len(line) || l.Start >= l.End {
			t.Fatalf("label %+v out of its line (len %d)", l, len(line))
		}
		v := string(line[l.Start:l.End])
		switch l.Kind {
		case "github", "npm":
			if strings.HasPrefix(v, "github_pat_") {
				break
			}
			i := strings.IndexByte(v, '_')
			body := v[i+1 : len(v)-6]
			if base62Checksum(body) != v[len(v)-6:] {
				t.Errorf("%s label at line %d has a bad checksum", l.Kind, l.Line)
			}
		case "jwt":
			if strings.Contains(l.Ctx, "urlenc") || strings.Contains(l.Ctx, "u002e") {
				break
			}
			hdr, _, _ := strings.Cut(v, ".")
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hdr, "="))
			var h map[string]any
			if err != nil || json.Unmarshal(raw, &h) != nil || h["alg"] == nil {
				t.Errorf("jwt label at line %d (%s): header does not decode to JSON with alg", l.Line, l.Ctx)
			}
		case "cli_password":
			if l.Ctx == "cli-curl-user" && !strings.Contains(v, ":") || strings.ContainsAny(v, "'\" $") {
				t.Errorf("cli_password label at line %d (%s) is not a bare user:password / password", l.Line, l.Ctx)
			}
		case "url_password":
			if v == "" || strings.ContainsAny(v, "@/?#:'\" $") {
				t.Errorf("url_password label at line %d (%s) is not a bare password", l.Line, l.Ctx)
			}
		case "basic":
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil || !bytes.Contains(raw, []byte{':'}) {
				t.Errorf("basic label at line %d is not base64(user:password)", l.Line)
			}
		}
	}
	for _, tpl := range positives {
		if ctxs[tpl.name] == 0 { // every template labels its values with its name
			t.Errorf("context %q never generated in 6000 lines", tpl.name)
		}
	}
	for _, k := range []string{"jwt", "jwe", "bearer", "basic", "oauth", "github", "gitlab", "slack", "google", "stripe", "npm", "aws", "cli_password", "url_password"} {
		if kinds[k] == 0 {
			t.Errorf("kind %q missing", k)
		}
	}
	if ctxs["long-line"] != 4 {
		t.Errorf("%d labels in long lines, want 4 (2 lines x 2)", ctxs["long-line"])
	}
	raw, _ := os.ReadFile(filepath.Join(dir, corpusFile))
	if crlf := bytes.Count(raw, []byte("\r\n")); crlf < 300 {
		t.Errorf("only %d CRLF lines", crlf)
	}
	longest := 0
	for _, l := range lines {
		longest = max(longest, len(l))
	}
	if longest < 1<<20 {
		t.Errorf("longest line %d bytes, want multi-MB lines", longest)
	}
	negs, err := readJSONLines[Negative](filepath.Join(dir, negativesFile))
	if err != nil {
		t.Fatal(err)
	}
	negCtx := map[string]int{}
	for _, n := range negs {
		negCtx[n.Ctx]++
		line := lines[n.Line-1]
		if n.End > len(line) || n.Start > n.End {
			t.Fatalf("negative %+v out of its line", n)
		}
		if n.Ctx == "github-bad-checksum" {
			v := string(line[n.Start:n.End])
			if base62Checksum(v[4:len(v)-6]) == v[len(v)-6:] {
				t.Errorf("bad-checksum negative at line %d has a valid checksum", n.Line)
			}
		}
	}
	for _, c := range []string{"uuid", "hash", "base64", "truncated-jwt", "placeholder", "redacted-marker", "github-bad-checksum"} {
		if negCtx[c] == 0 {
			t.Errorf("hard negative %q missing", c)
		}
	}
}

// TestBase62Checksum pins the GitHub/npm checksum: CRC32-IEEE of the 30 random
// characters, 6 base62 digits (0-9A-Za-z), most significant first.
func TestBase62Checksum(t *testing.T) {
	// crc32("16C7e42F292c6912E7710c838347Ae") = 0xe96e8eca, encoded independently
	// with Python's zlib.crc32 and the same alphabet.
	if got := base62Checksum("16C7e42F292c6912E7710c838347Ae"); got != "4H2Y7G" {
		t.Errorf("base62Checksum = %q, want 4H2Y7G", got)
	}
	// Small CRCs are left-padded with '0'.
	for _, body := range []string{"", "a", strings.Repeat("Z", 30)} {
		if got := base62Checksum(body); len(got) != 6 || strings.Trim(got, base62Alp) != "" {
			t.Errorf("base62Checksum(%q) = %q, want 6 base62 digits", body, got)
		}
	}
	if got := base62Checksum(""); got != "000000" { // crc32("") == 0
		t.Errorf("base62Checksum(\"\") = %q, want 000000", got)
	}
}

// TestEvaluateMatching pins the matching rule on a hand-made corpus.
func TestEvaluateMatching(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v []any) {
		var b bytes.Buffer
		for _, x := range v {
			j, _ := json.Marshal(x)
			b.Write(append(j, '\n'))
		}
		os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644)
	}
	write(labelsFile, []any{
		Label{Line: 1, Start: 10, End: 50, Kind: "jwt", Ctx: "a"},
		Label{Line: 2, Start: 5, End: 20, Kind: "bearer", Ctx: "b"},
		Label{Line: 3, Start: 0, End: 40, Kind: "github", Alt: []string{"bearer"}, Ctx: "c"},
		Label{Line: 4, Start: 0, End: 10, Kind: "oauth", Ctx: "d"},
	})
	write(negativesFile, []any{Negative{Line: 5, Start: 0, End: 36, Ctx: "uuid"}})
	findings := []evalFinding{
		{Line: 1, Start: 12, End: 50, Kind: "jwt"},                 // TP (overlap)
		{Line: 1, Start: 12, End: 50, Kind: "jwt"},                 // FP (duplicate)
		{Line: 2, Start: 5, End: 20, Kind: "oauth_access_token"},   // TP (opaque family)
		{Line: 3, Start: 0, End: 40, Kind: "bearer"},               // TP via Alt
		{Line: 4, Start: 20, End: 30, Kind: "oauth_refresh_token"}, // FP: no overlap
		{Line: 5, Start: 0, End: 36, Kind: "bearer"},               // FP on a negative
	}
	res, err := evaluate(dir, findings)
	if err != nil {
		t.Fatal(err)
	}
	if res.tp != 3 || res.fp != 3 || len(res.misses) != 1 || res.misses[0].Kind != "oauth" {
		t.Fatalf("tp %d fp %d misses %+v, want 3, 3, [oauth]", res.tp, res.fp, res.misses)
	}
	if res.falsePos[2].negCtx != "uuid" {
		t.Errorf("false positive on the uuid negative not attributed: %+v", res.falsePos)
	}
	if f := res.failures(); len(f) == 0 {
		t.Error("targets reported met on 75% recall")
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{nil, {"nope"}, {"gen"}, {"gen", "-o", t.TempDir(), "-mode", "x"}, {"eval"}} {
		out.Reset()
		errb.Reset()
		if code := run(context.Background(), args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("run %q: exit %d stderr %q, want 2 with a message", args, code, errb.String())
		}
	}
}

// TestBenchModeIsCleanHeavy: bench mode plants about one credential per 1000
// lines, as the clean-heavy benchmark asks.
func TestBenchModeIsCleanHeavy(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"gen", "-o", dir, "-mode", "bench", "-bytes", "8000000", "-seed", "5"}, &out, &errb); code != 0 {
		t.Fatalf("gen: %s", errb.String())
	}
	var meta Meta
	b, _ := os.ReadFile(filepath.Join(dir, metaFile))
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	perLine := float64(meta.Labels) / float64(meta.Lines)
	if meta.Mode != "bench" || meta.Bytes < 8000000 || perLine < 0.0005 || perLine > 0.003 {
		t.Errorf("bench corpus: mode %q, %d bytes, %.4f credentials per line; want bench, >= 8 MB and about 0.001", meta.Mode, meta.Bytes, perLine)
	}
}

func TestIndexPass(t *testing.T) {
	in := strings.Repeat("xx eyJ yy ", 1000) + "eyJ"
	n, count, err := indexPass(strings.NewReader(in), []byte("eyJ"))
	if err != nil || n != int64(len(in)) || count != 1001 {
		t.Errorf("indexPass = %d bytes, %d matches, %v; want %d, 1001, nil", n, count, err, len(in))
	}
}
