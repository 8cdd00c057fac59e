package ingest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tokenwatch/tokenwatch"
)

type gotLine struct {
	text  string
	line  int64
	flags tokenwatch.RecordFlags
}

// readAll splits input with a lineReader (final mode) and returns every line.
func readAll(t testing.TB, r io.Reader, max int) []gotLine {
	t.Helper()
	lr := newLineReader(r.Read, max, true)
	var out []gotLine
	var buf []byte
	for {
		var flags tokenwatch.RecordFlags
		var err error
		buf, flags, err = lr.next(buf[:0])
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		out = append(out, gotLine{string(buf), lr.line, flags})
	}
}

func TestLineReader(t *testing.T) {
	T := tokenwatch.FlagTruncated
	long := strings.Repeat("x", 100)
	cases := []struct {
		name string
		in   string
		max  int
		want []gotLine
	}{
		{"empty", "", 16, nil},
		{"one line no newline", "abc", 16, []gotLine{{"abc", 1, 0}}},
		{"one line", "abc\n", 16, []gotLine{{"abc", 1, 0}}},
		{"crlf stripped", "a\r\nb\r\n", 16, []gotLine{{"a", 1, 0}, {"b", 2, 0}}},
		{"only one cr stripped", "a\r\r\n", 16, []gotLine{{"a\r", 1, 0}}},
		{"lone cr kept inside", "a\rb\n", 16, []gotLine{{"a\rb", 1, 0}}},
		{"empty lines counted", "\n\nx\n\n", 16, []gotLine{{"", 1, 0}, {"", 2, 0}, {"x", 3, 0}, {"", 4, 0}}},
		{"exactly max", "abcd\nef\n", 4, []gotLine{{"abcd", 1, 0}, {"ef", 2, 0}}},
		{"over max cut", "abcdef\ngh\n", 4, []gotLine{{"abcd", 1, T}, {"gh", 2, 0}}},
		{"long line rest skipped", long + "\nnext\n", 10, []gotLine{{long[:10], 1, T}, {"next", 2, 0}}},
		{"long last line without newline", "ok\n" + long, 10, []gotLine{{"ok", 1, 0}, {long[:10], 2, T}}},
		{"crlf over max", "abcd\r\n", 4, []gotLine{{"abcd", 1, T}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, rd := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.in)},
				{"byte-at-a-time", iotest.OneByteReader(strings.NewReader(tc.in))},
				{"data-with-eof", iotest.DataErrReader(strings.NewReader(tc.in))},
			} {
				got := readAll(t, rd.r, tc.max)
				if len(got) != len(tc.want) {
					t.Fatalf("%s: got %d lines %+v, want %d %+v", rd.name, len(got), got, len(tc.want), tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("%s: line %d = %+v, want %+v", rd.name, i, got[i], tc.want[i])
					}
				}
			}
		})
	}
}

// A 10 MiB line with a 1 MiB limit never makes the buffer grow past max+chunk.
func TestLineReaderBoundedMemory(t *testing.T) {
	const max = 1 << 20
	in := strings.Repeat("y", 10<<20) + "\nafter\n"
	lr := newLineReader(strings.NewReader(in).Read, max, true)
	buf, flags, err := lr.next(nil)
	if err != nil || flags != tokenwatch.FlagTruncated || len(buf) != max {
		t.Fatalf("first line: len %d flags %v err %v", len(buf), flags, err)
	}
	buf, _, err = lr.next(buf[:0])
	if err != nil || string(buf) != "after" || lr.line != 2 {
		t.Fatalf("second line %q (line %d) err %v", buf, lr.line, err)
	}
	if len(lr.buf) > max+readChunk {
		t.Fatalf("buffer grew to %d bytes, limit %d", len(lr.buf), max+readChunk)
	}
}

// In follow mode a partial last line is held until its newline arrives.
func TestLineReaderFollowPartial(t *testing.T) {
	var src bytes.Buffer
	src.WriteString("one\ntw")
	read := func(p []byte) (int, error) {
		if src.Len() == 0 {
			return 0, io.EOF
		}
		return src.Read(p)
	}
	lr := newLineReader(read, 64, false)
	buf, _, err := lr.next(nil)
	if err != nil || string(buf) != "one" {
		t.Fatalf("got %q, %v", buf, err)
	}
	if _, _, err = lr.next(buf[:0]); !errors.Is(err, errNoLine) {
		t.Fatalf("partial line: err %v, want errNoLine", err)
	}
	src.WriteString("o\n")
	buf, _, err = lr.next(buf[:0])
	if err != nil || string(buf) != "two" || lr.line != 2 {
		t.Fatalf("completed line %q (line %d), err %v", buf, lr.line, err)
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nccc\n"), 2)
	f.Add([]byte("\n\n\r\n"), 1)
	f.Add([]byte(strings.Repeat("z", 300)+"\nq"), 7)
	f.Add([]byte{0, 1, 2, '\n', 0xff, '\r'}, 3)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max <= 0 || max > 1<<16 {
			max = 1 + (max&0xfff+0x1000)%0x1000
		}
		got := readAll(t, iotest.HalfReader(bytes.NewReader(in)), max)
		// Reference: split on '\n'; drop the empty tail after a final newline.
		parts := bytes.Split(in, []byte("\n"))
		if len(parts) > 0 && len(parts[len(parts)-1]) == 0 {
			parts = parts[:len(parts)-1]
		}
		if len(got) != len(parts) {
			t.Fatalf("%d lines, want %d", len(got), len(parts))
		}
		for i, p := range parts {
			want := p
			var flags tokenwatch.RecordFlags
			if len(want) > max {
				want, flags = want[:max], tokenwatch.FlagTruncated
			} else {
				want = bytes.TrimSuffix(want, []byte("\r"))
			}
			if got[i].text != string(want) || got[i].flags != flags || got[i].line != int64(i+1) {
				t.Fatalf("line %d = %+v, want %q flags %v", i+1, got[i], want, flags)
			}
		}
	})
}

func BenchmarkLineReader(b *testing.B) {
	line := `{"time":"2026-01-02T03:04:05Z","remote_addr":"203.0.113.7","request":"GET /api/v1/items?page=2 HTTP/1.1","status":200,"ua":"curl/8.5"}` + "\n"
	in := []byte(strings.Repeat(line, 4096))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	r := bytes.NewReader(in)
	lr := newLineReader(r.Read, 16<<20, true)
	buf := make([]byte, 0, len(in))
	for b.Loop() {
		r.Reset(in)
		lr.reset(r.Read, true)
		buf = buf[:0]
		for {
			var err error
			buf, _, err = lr.next(buf)
			if err != nil {
				break
			}
		}
	}
}
