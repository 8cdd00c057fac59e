package detect

import (
	"bytes"
	"encoding/base64"
)

// ---- credentials on curl / wget command lines --------------------------------
//
// The anchor is the command word "curl ", never the option ("-u" is everywhere:
// sudo -u, ps -u, docker run -u, git log -u); for wget it is "-password" (its
// password options), from which the wget command word is looked up. From the
// command word the command's words are read like a shell would split them (quotes, JSON-escaped
// quotes), up to the end of the command (| ; & ) ` # newline) and the
// credential options of that command are taken:
//
//	curl -u / --user / -U / --proxy-user   user:password (also -uVALUE, -su VALUE,
//	                                        --user=VALUE, 'VALUE', "VALUE", \"VALUE\")
//	wget --password / --http-password / --ftp-password / --proxy-password
//	                                        password (=VALUE or the next word)
//
// A value the shell would expand ($VAR, `cmd`, backslashes inside double
// quotes) is not known from the log and is not reported.

type cmdTool uint8

const (
	toolCurl cmdTool = iota + 1
	toolWget
)

const (
	maxCmdLen   = 64 << 10 // bytes of one command read after its anchor
	maxCmdCreds = 4        // credential options kept per command
)

// Option names, as Finding.Param. Package-level slices, so a paramRef to them
// costs nothing until a finding is emitted.
var (
	optU         = []byte("-u")
	optUpperU    = []byte("-U")
	optUser      = []byte("--user")
	optProxyUser = []byte("--proxy-user")
	optPassword  = []byte("--password")
	optHTTPPass  = []byte("--http-password")
	optFTPPass   = []byte("--ftp-password")
	optProxyPass = []byte("--proxy-password")
	optHTTPUser  = []byte("--http-user")
	optFTPUser   = []byte("--ftp-user")
)

// curlArgLetters are curl's short options that take an argument: in a cluster
// like -XPUT or -sSo out the rest of the word (or the next word) is theirs.
const curlArgLetters = "AbcCdDeEFHKmoPQrtTuUwxXyYz"

// wget option classes: a password pairs with the user of its class.
const (
	wgAny = iota // --user / --password
	wgHTTP
	wgFTP
	wgProxy
	wgClasses
)

// cmdCred is one credential option found on a command line.
type cmdCred struct {
	vs, ve int    // the value, quotes excluded
	opt    []byte // option name (Finding.Param)
	class  int8   // wget class; -1 for a wget user option
}

// cmdStartOK: the command word starts a word (after a path like /usr/bin/,
// a prompt, a quote, `+ ` of set -x, or an escape such as \n in JSON).
func cmdStartOK(line []byte, p int) bool {
	if p == 0 || escapedBoundary(line, p) {
		return true
	}
	c := line[p-1]
	return !isAlnum(c) && c != '-' && c != '_' && c != '.'
}

// blankAt returns the width of the blank at i: space, tab, or a JSON \t.
func blankAt(line []byte, i int) int {
	switch line[i] {
	case ' ', '\t':
		return 1
	case '\\':
		if i+1 < len(line) && line[i+1] == 't' {
			return 2
		}
	}
	return 0
}

// cmdEndsAt reports whether the command ends at i, outside quotes: a control
// operator, a comment, a real or JSON-escaped line break.
func cmdEndsAt(line []byte, i int) bool {
	switch line[i] {
	case '|', ';', ')', '`', '\n', '\r':
		return true
	case '&':
		// 2>&1 and &> are redirections, not the end of the command.
		return !(i > 0 && line[i-1] == '>') && !(i+1 < len(line) && line[i+1] == '>')
	case '\\':
		return i+1 < len(line) && (line[i+1] == 'n' || line[i+1] == 'r')
	}
	return false
}

// wordEnd returns the end of the shell word starting at i (quotes, backslash
// escapes and JSON-escaped quotes \"…\" included). An unclosed quote runs to limit.
func wordEnd(line []byte, i, limit int) int {
	for i < limit {
		c := line[i]
		if blankAt(line, i) > 0 || cmdEndsAt(line, i) {
			return i
		}
		switch {
		case c == '\'':
			j := bytes.IndexByte(line[i+1:limit], '\'')
			if j < 0 {
				return limit
			}
			i += j + 2
		case c == '"':
			j := i + 1
			for j < limit && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			i = min(j+1, limit)
		case c == '\\' && i+1 < limit && line[i+1] == '"':
			j := bytes.Index(line[i+2:limit], []byte(`\"`))
			if j < 0 {
				return limit
			}
			i += j + 4
		case c == '\\':
			i = min(i+2, limit)
		default:
			i++
		}
	}
	return limit
}

// valueEndOK: what follows a value closes its word: a blank, the end of the
// command, or a quote that closes an enclosing string ("cmd":"curl -u a:b").
// A value glued to more word bytes (user:pa'ss word', x$y) is not read.
func valueEndOK(line []byte, k int) bool {
	if k >= len(line) || blankAt(line, k) > 0 || cmdEndsAt(line, k) {
		return true
	}
	switch line[k] {
	case '<', '>':
		return true
	case '"', '\'':
		if k+1 >= len(line) {
			return true
		}
		switch line[k+1] {
		case ' ', '\t', ',', '}', ']', ')', ';', '|', '&', '\\':
			return true
		}
	case '\\':
		return k+1 < len(line) && line[k+1] == '"'
	}
	return false
}

// cmdValue reads an option value starting at i: 'v', "v", \"v\" or unquoted.
// It returns the value span (quotes excluded) and the end of the word; ok is
// false when the value is not a literal the log shows (expansion, escapes,
// mixed quoting, unclosed quote, control bytes).
func cmdValue(line []byte, i, limit int) (vs, ve, end int, ok bool) {
	if i >= limit {
		return 0, 0, i, false
	}
	lit := func(s, e int, dq bool) bool {
		for _, c := range line[s:e] {
			if c < 0x20 || c > 0x7e || dq && (c == '$' || c == '`' || c == '\\') {
				return false
			}
		}
		return true
	}
	switch {
	case line[i] == '\'':
		j := bytes.IndexByte(line[i+1:limit], '\'')
		if j < 0 {
			return 0, 0, limit, false
		}
		vs, ve, end = i+1, i+1+j, i+2+j
		return vs, ve, end, lit(vs, ve, false) && valueEndOK(line, end)
	case line[i] == '"':
		j := bytes.IndexByte(line[i+1:limit], '"')
		if j < 0 {
			return 0, 0, limit, false
		}
		vs, ve, end = i+1, i+1+j, i+2+j
		return vs, ve, end, lit(vs, ve, true) && valueEndOK(line, end)
	case line[i] == '\\' && i+1 < limit && line[i+1] == '"':
		j := bytes.Index(line[i+2:limit], []byte(`\"`))
		if j < 0 {
			return 0, 0, limit, false
		}
		vs, ve, end = i+2, i+2+j, i+4+j
		return vs, ve, end, lit(vs, ve, true) && valueEndOK(line, end)
	}
	j := i
	for j < limit {
		c := line[j]
		if c <= ' ' || c > 0x7e {
			break
		}
		switch c {
		case '|', ';', '&', '<', '>', '(', ')', '`', '"', '\'', '\\', '$':
		default:
			j++
			continue
		}
		break
	}
	if j == i || !valueEndOK(line, j) {
		return 0, 0, wordEnd(line, j, limit), false
	}
	return i, j, j, true
}

// cliPasswordWords are passwords of documentation and examples (the general
// placeholders and mask words apply too).
var cliPasswordWords = [...]string{"pass", "passwd", "pwd", "test", "changeit", "foobar", "hunter2", "mypass", "yourpass", "secret123"}

// cliPlaceholder reports whether a password given on a command line is a
// placeholder, a mask or too short to be one.
func cliPlaceholder(pw []byte) bool {
	if len(pw) < 4 || isMaskedPassword(pw) || isPlaceholder(pw) {
		return true
	}
	if bytes.HasPrefix(pw, []byte("//")) { // curl -u http://host: a URL, not user:password
		return true
	}
	for _, w := range cliPasswordWords {
		if asciiEqualFold(pw, w) {
			return true
		}
	}
	same := true
	for _, c := range pw {
		if c != pw[0] {
			same = false
			break
		}
	}
	return same
}

// redactedMarker starts what tokenwatch redact writes: [REDACTED:kind:1a2b3c4d].
var redactedMarker = []byte("[REDACTED:")

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// cmdAt handles a curl or wget command word at p.
func (st *scanState) cmdAt(p int, tool cmdTool) bool {
	line := st.line
	if p < st.cmdEnd || !cmdStartOK(line, p) {
		return false
	}
	limit := min(len(line), p+maxCmdLen)
	var creds [maxCmdCreds]cmdCred
	n := 0
	add := func(vs, ve int, opt []byte, class int8) {
		if n < len(creds) {
			creds[n] = cmdCred{vs, ve, opt, class}
			n++
		}
	}
	i := p + len("curl ")
	skipNext, opts := false, true
	for i < limit {
		if w := blankAt(line, i); w > 0 {
			i += w
			continue
		}
		if cmdEndsAt(line, i) || line[i] == '#' {
			break
		}
		ws := i
		i = wordEnd(line, i, limit)
		word := line[ws:i]
		if skipNext {
			skipNext = false
			continue
		}
		if !opts || len(word) < 2 || word[0] != '-' {
			continue
		}
		if string(word) == "--" {
			opts = false
			continue
		}
		// The option's value: attached (at > 0) or the next word.
		var opt []byte
		class := int8(0)
		at := 0
		if word[1] == '-' {
			name := word
			if eq := bytes.IndexByte(word, '='); eq > 0 {
				name, at = word[:eq], ws+eq+1
			}
			opt, class = cmdLongOpt(tool, name)
			if opt == nil {
				continue
			}
		} else {
			if tool != toolCurl {
				continue // wget has no short credential option (-U is --user-agent)
			}
			for k := 1; k < len(word); k++ {
				c := word[k]
				if c == 'u' || c == 'U' {
					opt = optU
					if c == 'U' {
						opt = optUpperU
					}
					if k+1 < len(word) {
						at = ws + k + 1
					}
					break
				}
				if !isAlnum(c) && c != '#' && c != ':' {
					break // not an option cluster
				}
				if bytes.IndexByte([]byte(curlArgLetters), c) >= 0 {
					skipNext = k+1 == len(word)
					break
				}
			}
			if opt == nil {
				continue
			}
		}
		if at == 0 {
			// The value is the next word.
			for i < limit && blankAt(line, i) > 0 {
				i += blankAt(line, i)
			}
			if i >= limit || cmdEndsAt(line, i) || line[i] == '-' {
				continue
			}
			at = i
		}
		vs, ve, end, ok := cmdValue(line, at, limit)
		if at >= i {
			i = max(i, end)
		}
		if ok && ve > vs && ve-vs <= st.s.maxTok {
			add(vs, ve, opt, class)
		}
	}
	st.cmdEnd = i
	if n == 0 {
		return false
	}
	found := false
	from := p + len("curl ")
	for k := range creds[:n] {
		c := &creds[k]
		if c.class < 0 {
			continue // a wget user: only pairs with a password
		}
		if c.vs > from {
			st.runRange(from, c.vs) // anchors before this value first: line order
		}
		if tool == toolCurl {
			found = st.curlCred(c) || found
		} else {
			found = st.wgetCred(c, creds[:n]) || found
		}
		from = max(from, st.lastEnd)
	}
	return found
}

// wgetAt handles a "-password" anchor (wget's --password, --http-password,
// --ftp-password, --proxy-password): it looks back for the wget command word
// and reads that command. Each byte is searched once per line (wgetTo), and a
// command already read is not read again (cmdEnd), so the work stays linear.
func (st *scanState) wgetAt(p int) bool {
	if p < st.cmdEnd {
		return false
	}
	line := st.line
	lo := max(0, p-maxCmdLen, st.cmdEnd, st.wgetTo-len("wget ")+1)
	st.wgetTo = p
	for hi := p; hi > lo; {
		w := bytes.LastIndex(line[lo:hi], []byte("wget "))
		if w < 0 {
			return false
		}
		if w += lo; cmdStartOK(line, w) {
			return st.cmdAt(w, toolWget)
		}
		hi = w
	}
	return false
}

// cmdLongOpt names a long credential option of tool; class is the wget class
// (-1 for a wget user option).
func cmdLongOpt(tool cmdTool, name []byte) ([]byte, int8) {
	if tool == toolCurl {
		switch string(name) {
		case "--user":
			return optUser, 0
		case "--proxy-user":
			return optProxyUser, 0
		}
		return nil, 0
	}
	switch string(name) {
	case "--password":
		return optPassword, wgAny
	case "--http-password":
		return optHTTPPass, wgHTTP
	case "--ftp-password":
		return optFTPPass, wgFTP
	case "--proxy-password":
		return optProxyPass, wgProxy
	case "--user":
		return optUser, -1 - wgAny
	case "--http-user":
		return optHTTPUser, -1 - wgHTTP
	case "--ftp-user":
		return optFTPUser, -1 - wgFTP
	case "--proxy-user":
		return optProxyUser, -1 - wgProxy
	}
	return nil, 0
}

// curlCred validates a curl user:password value and emits it. Its token (for
// the fingerprint and the preview) is the Basic credential curl sends,
// base64(user:password), so the same credential has one fingerprint here and
// in an "Authorization: Basic" header (curl -v prints it in the same log).
func (st *scanState) curlCred(c *cmdCred) bool {
	line := st.line
	v := line[c.vs:c.ve]
	colon := bytes.IndexByte(v, ':')
	if colon < 0 || v[0] == '[' || bytes.Contains(v, redactedMarker) {
		return false // no password (curl prompts for it), or a [REDACTED:…] marker
	}
	user, pw := v[:colon], v[colon+1:]
	if allDigits(user) && allDigits(pw) {
		return false // uid:gid
	}
	param := paramRef{name: c.opt}
	ps := c.vs + colon + 1
	for k := range theMatcher.anchors {
		if a := &theMatcher.anchors[k]; a.fam == famPrefix && a.pfx != ruleOpenAILegacy && a.at(v, 0) {
			return false // a prefixed token as the user (Stripe's -u sk_live_…:): its own anchor reports it
		}
	}
	if hasJWTStart(line[:c.ve], ps) && st.jwtAt(ps, "", param) {
		return true
	}
	if st.prefixedValue(ps, c.ve, "", param) {
		return true
	}
	if cliPlaceholder(pw) {
		return false
	}
	sc := st.scratch()
	sc.aux = base64.StdEncoding.AppendEncode(sc.aux[:0], v)
	return st.emit(c.vs, c.ve, sc.aux, KindCLIPassword, "curl.user", "", param, nil)
}

// wgetCred validates a wget password and emits it. With the matching user
// option on the same command the token is base64(user:password), as for curl;
// without one it is the password.
func (st *scanState) wgetCred(c *cmdCred, all []cmdCred) bool {
	line := st.line
	pw := line[c.vs:c.ve]
	if pw[0] == '[' || bytes.Contains(pw, redactedMarker) {
		return false
	}
	param := paramRef{name: c.opt}
	if hasJWTStart(line[:c.ve], c.vs) && st.jwtAt(c.vs, "", param) {
		return true
	}
	if st.prefixedValue(c.vs, c.ve, "", param) {
		return true
	}
	if cliPlaceholder(pw) {
		return false
	}
	// The user of the password's class; --user also serves http and ftp.
	var user []byte
	for _, pass := range [2]int8{c.class, wgAny} {
		for k := range all {
			if u := &all[k]; u.class == -1-pass && user == nil {
				user = line[u.vs:u.ve]
			}
		}
		if user != nil || c.class == wgProxy {
			break
		}
	}
	tok := pw
	if user != nil && bytes.IndexByte(user, ':') < 0 {
		sc := st.scratch()
		sc.tok = append(append(append(sc.tok[:0], user...), ':'), pw...)
		sc.aux = base64.StdEncoding.AppendEncode(sc.aux[:0], sc.tok)
		tok = sc.aux
	}
	return st.emit(c.vs, c.ve, tok, KindCLIPassword, "wget.password", "", param, nil)
}
