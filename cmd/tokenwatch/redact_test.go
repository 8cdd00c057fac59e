package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

// expectRedacted is the reference redaction: data with each finding of a
// per-line detect scan replaced by its marker, every other byte kept.
func expectRedacted(t testing.TB, data []byte) (out []byte, n int) {
	t.Helper()
	sc := testScanner(t)
	var dst []tokenwatch.Finding
	for len(data) > 0 {
		line, rest, term := data, []byte(nil), []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest, term = data[:i], data[i+1:], []byte{'\n'}
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line, term = line[:len(line)-1], []byte("\r\n")
			}
		}
		dst = sc.Scan(line, dst[:0])
		pos := 0
		for _, f := range dst {
			out = append(out, line[pos:f.Start]...)
			out = appendRedactMarker(out, f.Kind, f.Fingerprint[:])
			pos = f.End
			n++
		}
		out = append(out, line[pos:]...)
		out = append(out, term...)
		data = rest
	}
	return out, n
}

func checkRedaction(t *testing.T, in []byte, args ...string) {
	t.Helper()
	want, n := expectRedacted(t, in)
	if n == 0 {
		t.Fatal("input has no credential; the test would prove nothing")
	}
	r := runCmd(t, bytes.NewReader(in), nil, append([]string{"redact", "--fingerprint-key", testKey}, args...)...)
	if r.code != exitOK {
		t.Fatalf("redact exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != string(want) {
		t.Fatalf("redacted output differs from the reference (%d bytes vs %d)", len(r.stdout), len(want))
	}
	// The redacted output scans clean.
	s := runCmd(t, strings.NewReader(r.stdout), nil, "scan", "--format", "json", "--fingerprint-key", testKey, "-")
	if s.code != exitOK {
		t.Fatalf("redacted output still has findings (exit %d):\n%s", s.code, s.stdout)
	}
}

func TestRedactRoundTrip(t *testing.T) {
	sample, err := os.ReadFile("testdata/sample.log")
	if err != nil {
		t.Fatal(err)
	}
	if sample[len(sample)-1] == '\n' {
		t.Fatal("sample.log must end without a newline (the test checks none is added)")
	}
	t.Run("sample", func(t *testing.T) { checkRedaction(t, sample, "-") })
	t.Run("crlf-and-boundaries", func(t *testing.T) { checkRedaction(t, bigLog(t, 2<<20, 2)) })
	t.Run("small-chunks-parallel", func(t *testing.T) {
		withEngine(t, engineConfig{chunkSize: 777, maxLine: 64 << 10, margin: 512, workers: 4})
		checkRedaction(t, bigLog(t, 512<<10, 5))
	})
	t.Run("golden", func(t *testing.T) {
		r := runCmd(t, nil, nil, "redact", "--fingerprint-key", testKey, "testdata/sample.log")
		checkGolden(t, "sample.redacted.golden", []byte(r.stdout))
	})
}

func TestRedactLongLineWindows(t *testing.T) {
	toks := sampleTokens(t)
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20; i++ {
		b.WriteString(strings.Repeat("ünïcode filler ", i%700))
		fmt.Fprintf(&b, "Authorization: Bearer %s, ", toks[i%4])
	}
	b.WriteString("\r\nnext line " + toks[5] + "\n")
	withEngine(t, engineConfig{chunkSize: 8 << 10, maxLine: 64 << 10, margin: 512, workers: 3})
	checkRedaction(t, b.Bytes())
}

func TestRedactFiles(t *testing.T) {
	dir := t.TempDir()
	sample, _ := os.ReadFile("testdata/sample.log")
	want, _ := expectRedacted(t, sample)

	t.Run("output file", func(t *testing.T) {
		out := filepath.Join(dir, "out.log")
		r := runCmd(t, nil, nil, "redact", "--fingerprint-key", testKey, "-o", out, "testdata/sample.log")
		got, _ := os.ReadFile(out)
		if r.code != exitOK || !bytes.Equal(got, want) || r.stdout != "" {
			t.Fatalf("exit %d, file equal %v, stdout %q", r.code, bytes.Equal(got, want), r.stdout)
		}
		if !strings.Contains(r.stderr, "credentials redacted") {
			t.Errorf("no summary on stderr: %q", r.stderr)
		}
	})
	t.Run("in place keeps mode", func(t *testing.T) {
		p := filepath.Join(dir, "inplace.log")
		os.WriteFile(p, sample, 0o640)
		r := runCmd(t, nil, nil, "redact", "--fingerprint-key", testKey, "--in-place", p)
		got, _ := os.ReadFile(p)
		st, _ := os.Stat(p)
		if r.code != exitOK || !bytes.Equal(got, want) || st.Mode().Perm() != 0o640 {
			t.Fatalf("exit %d equal %v mode %v: %s", r.code, bytes.Equal(got, want), st.Mode().Perm(), r.stderr)
		}
		left, _ := filepath.Glob(filepath.Join(dir, ".inplace.log.tokenwatch-*"))
		if len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})
	t.Run("gzip to stdout", func(t *testing.T) {
		p := filepath.Join(dir, "s.log.gz")
		os.WriteFile(p, gzipBytes(t, sample), 0o644)
		r := runCmd(t, nil, nil, "redact", "--fingerprint-key", testKey, p)
		if r.code != exitOK || r.stdout != string(want) {
			t.Fatalf("exit %d, equal %v", r.code, r.stdout == string(want))
		}
	})
	cases := []struct {
		name string
		args []string
		has  string
	}{
		{"gzip in place", []string{"--in-place", "GZ"}, "gzip"},
		{"stdin in place", []string{"--in-place", "-"}, "needs a file"},
		{"two paths", []string{"a", "b"}, "one PATH"},
		{"both outputs", []string{"--in-place", "-o", "x", "testdata/sample.log"}, "exclude"},
		{"missing", []string{filepath.Join(dir, "nope.log")}, "no such file"},
		{"directory", []string{dir}, "directory"},
		{"bad flag", []string{"--frobnicate"}, "not defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"redact", "--fingerprint-key", testKey}, c.args...)
			for i, a := range args {
				if a == "GZ" {
					args[i] = filepath.Join(dir, "s.log.gz")
				}
			}
			r := runCmd(t, nil, nil, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.has) {
				t.Errorf("exit %d stderr %q, want 2 mentioning %q", r.code, r.stderr, c.has)
			}
		})
	}
	t.Run("read error leaves the target alone", func(t *testing.T) {
		out := filepath.Join(dir, "untouched.log")
		os.WriteFile(out, []byte("keep"), 0o644)
		in := &errReader{data: []byte("line\n"), err: fmt.Errorf("disk gone")}
		r := runCmd(t, in, nil, "redact", "--fingerprint-key", testKey, "-o", out, "-")
		got, _ := os.ReadFile(out)
		if r.code != exitUsage || string(got) != "keep" {
			t.Errorf("exit %d, target now %q", r.code, got)
		}
	})
	t.Run("help", func(t *testing.T) {
		r := runCmd(t, nil, nil, "redact", "--help")
		if r.code != exitOK || !strings.Contains(r.stdout, "usage: tokenwatch redact") {
			t.Errorf("exit %d stdout %q", r.code, r.stdout)
		}
	})
}

// FuzzRedact: for any input, redact's output scans clean and equals the input
// with exactly the findings' spans replaced.
func FuzzRedact(f *testing.F) {
	sample, _ := os.ReadFile("testdata/sample.log")
	f.Add(sample)
	for _, s := range strings.SplitAfter(string(sample), "\n") {
		f.Add([]byte(s))
	}
	f.Add([]byte("Authorization: Bearer abc\r\n\r\n"))
	f.Add([]byte("[REDACTED:jwt:0123abcd]\x00\xff"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		want, _ := expectRedacted(t, in)
		r := runCmd(t, bytes.NewReader(in), nil, "redact", "--fingerprint-key", testKey, "-")
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if r.stdout != string(want) {
			t.Fatalf("output differs from the input with spans replaced:\n got %q\nwant %q", r.stdout, want)
		}
		if again, n := expectRedacted(t, want); n != 0 {
			t.Fatalf("redacted output still holds %d findings: %q", n, again)
		}
	})
}
