package parse

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// iisLayout gives the column of each field in an IIS / W3C extended log line
// (-1: absent).
type iisLayout struct {
	date, time, ip, user, method, stem, ua, status, host, site, xff, dpop int
	n                                                                     int
}

// defaultIIS is IIS's default field order:
// date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip
// cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken.
var defaultIIS = newIISLayout(strings.Fields("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"))

func newIISLayout(names []string) *iisLayout {
	l := &iisLayout{date: -1, time: -1, ip: -1, user: -1, method: -1, stem: -1, ua: -1, status: -1, host: -1, site: -1, xff: -1, dpop: -1, n: len(names)}
	for i, name := range names {
		switch strings.ToLower(name) {
		case "date":
			l.date = i
		case "time":
			l.time = i
		case "c-ip":
			l.ip = i
		case "cs-username":
			l.user = i
		case "cs-method":
			l.method = i
		case "cs-uri-stem":
			l.stem = i
		case "cs(user-agent)":
			l.ua = i
		case "sc-status":
			l.status = i
		case "cs-host", "cs(host)":
			l.host = i
		case "s-sitename":
			l.site = i
		case "x-forwarded-for", "cs(x-forwarded-for)", "x-forwarded-for(cs)":
			l.xff = i
		case "cs(dpop)", "dpop":
			l.dpop = i
		}
	}
	return l
}

// maxIISSources bounds the remembered headers; past it the table starts over.
const maxIISSources = 4096

// iisLayouts remembers the last "#Fields:" header seen per source.
type iisLayouts struct {
	mu sync.RWMutex
	m  map[string]*iisLayout
}

// observe records raw as the field layout of source if it is a #Fields: header.
func (l *iisLayouts) observe(source string, raw []byte) {
	raw = trimSpace(raw)
	if !hasPrefixFold(raw, "#Fields:") || len(raw) > 4096 {
		return
	}
	lay := newIISLayout(strings.Fields(string(raw[len("#Fields:"):])))
	if lay.date < 0 || lay.time < 0 {
		return // the date would come from a #Date directive; use the default order
	}
	l.mu.Lock()
	if l.m == nil || len(l.m) >= maxIISSources {
		l.m = make(map[string]*iisLayout)
	}
	l.m[source] = lay
	l.mu.Unlock()
}

func (l *iisLayouts) get(source string) *iisLayout {
	l.mu.RLock()
	lay := l.m[source]
	l.mu.RUnlock()
	if lay == nil {
		return defaultIIS
	}
	return lay
}

// iisLine parses a W3C extended log line with the source's remembered layout or
// IIS's default one. W3C times are UTC.
func (st *pstate) iisLine(s []byte) bool {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' {
		return false
	}
	lay := st.p.iis.get(st.source)
	var cols [64][]byte
	n := 0
	for i := 0; i < len(s) && n < len(cols); {
		j := bytes.IndexByte(s[i:], ' ')
		if j < 0 {
			j = len(s) - i
		}
		cols[n] = s[i : i+j]
		n++
		i += j + 1
	}
	col := func(i int) []byte {
		if i < 0 || i >= n || len(cols[i]) == 0 || isDash(cols[i]) {
			return nil
		}
		return cols[i]
	}
	if lay.date < 0 || lay.time < 0 || col(lay.date) == nil || col(lay.time) == nil {
		return false
	}
	if lay == defaultIIS {
		// Without a header, insist on the default order's server address too.
		if _, ok := parseIP(col(2)); !ok {
			return false
		}
	}
	if m := col(lay.method); m == nil || !isMethod(m) {
		return false
	}
	if p := col(lay.stem); p == nil || p[0] != '/' {
		return false
	}
	var buf [32]byte
	dt := append(append(append(buf[:0], col(lay.date)...), ' '), col(lay.time)...)
	t, ok := parseISO(dt, time.UTC)
	if !ok {
		return false
	}
	st.setTime(t)
	st.setMethod(col(lay.method))
	st.setPath(col(lay.stem))
	peer, _ := parseIP(col(lay.ip))
	st.setIP(st.p.resolveClient(peer, col(lay.xff), nil))
	st.setUser(col(lay.user))
	if ua := col(lay.ua); ua != nil {
		st.setUA(bytes.ReplaceAll(ua, []byte("+"), []byte(" ")))
	}
	st.setStatus(parseStatus(col(lay.status)))
	st.setHost(col(lay.host))
	st.setService(col(lay.site))
	if lay.dpop >= 0 {
		st.f.HeadersLogged = true
		if col(lay.dpop) != nil {
			st.f.DPoPProof = true
		}
	}
	return true
}
