package detect

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis separates the kept head and tail of a redacted preview. It is not a
// character any credential alphabet contains, so a preview is never mistaken for a
// token by the scanner.
const Ellipsis = "…"

// Redact returns the redacted preview of token (DESIGN.md contract): at most the
// first 6 and last 4 characters, joined by "…".
//
//	len(token) >= 24   first 6 + "…" + last 4   eyJhbG…Qssw
//	12 <= len < 24     first 3 + "…" + last 2   ghp…Zx
//	len < 12           "…" only
//
// Lengths count bytes; credentials are ASCII. A non-ASCII byte in the kept parts
// is replaced by '?' so the preview is valid UTF-8 and never leaks more.
func Redact(token []byte) string {
	head, tail := redactKeep(len(token))
	var b strings.Builder // one allocation
	b.Grow(head + tail + len(Ellipsis))
	writeSafe(&b, token[:head])
	b.WriteString(Ellipsis)
	writeSafe(&b, token[len(token)-tail:])
	return b.String()
}

func redactKeep(n int) (head, tail int) {
	switch {
	case n >= 24:
		return 6, 4
	case n >= 12:
		return 3, 2
	}
	return 0, 0
}

func writeSafe(w *strings.Builder, b []byte) {
	for _, c := range b {
		if c < 0x21 || c >= utf8.RuneSelf {
			c = '?'
		}
		w.WriteByte(c)
	}
}
