package parse

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch"
)

// Fingerprinter computes the fingerprint of a credential; detect.Scanner
// implements it. Implementations must not retain token.
type Fingerprinter interface {
	Fingerprint(token []byte) tokenwatch.Fingerprint
}

// Option configures a Parser beyond its YAML Config.
type Option func(*Parser)

// WithFingerprinter sets the fingerprinter used for revocation events that carry
// the token itself. Without one such events are counted as malformed and dropped.
func WithFingerprinter(f Fingerprinter) Option { return func(p *Parser) { p.fp = f } }

// WithClock sets the clock that gives the ingest time (default time.Now): the time
// of token uses whose record carries none, and the reference for year-less dates.
func WithClock(now func() time.Time) Option { return func(p *Parser) { p.now = now } }

// Parser extracts fields from log records. It is safe for concurrent use.
type Parser struct {
	keys           map[string]keyInfo
	trustedProxies []netip.Prefix
	loc            *time.Location
	layout         string
	fp             Fingerprinter
	now            func() time.Time
	iis            iisLayouts
	warnNoFP       sync.Once
}

// New returns a Parser for cfg.
func New(cfg Config, opts ...Option) (*Parser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, err := loadZone(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("parse.time_zone: %w", err)
	}
	p := &Parser{
		keys:   buildKeys(cfg.Fields),
		loc:    loc,
		layout: cfg.TimeLayout,
		now:    time.Now,
	}
	for _, s := range cfg.TrustedProxies {
		pfx, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("parse.trusted_proxies: %q: %w", s, err)
		}
		p.trustedProxies = append(p.trustedProxies, pfx)
	}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// Parse fills r.Fields from r.Raw, detecting the format of this one record, sets
// r.Parsed and adds FlagMalformed, FlagInvalidUTF8 or FlagBinary to r.Flags when
// they apply. It never fails: what cannot be parsed structurally is searched as
// plain text. Field values that contain one of r.Findings' credentials have it
// replaced by the finding's redacted form, so no field carries a raw token.
func (p *Parser) Parse(r *tokenwatch.Record) {
	p.parse(r, p.now())
}

func (p *Parser) parse(r *tokenwatch.Record, ref time.Time) {
	defer func() {
		if v := recover(); v != nil {
			// Never let one record stop the pipeline. The panic value may quote the
			// record, so it is not logged.
			slog.Error("BUG: parser panicked; record kept as plain text", "source", r.Origin.Source, "offset", r.Origin.Offset)
			malformedCounter(reasonInternal).Inc()
			r.Fields = tokenwatch.Fields{Format: formatNames[fmtPlain]}
			r.Flags |= tokenwatch.FlagMalformed
			r.Parsed = true
		}
	}()
	st := pstate{p: p, ref: ref, source: r.Origin.Source, f: &r.Fields}
	r.Fields = tokenwatch.Fields{}
	raw := r.Raw
	if !utf8.Valid(raw) {
		r.Flags |= tokenwatch.FlagInvalidUTF8
		malformedCounter(reasonInvalidUTF8).Inc()
	}
	var format formatID
	if isBinary(raw) {
		r.Flags |= tokenwatch.FlagBinary
		malformedCounter(reasonBinary).Inc()
		st.plain(raw)
		format = fmtPlain
	} else {
		format = st.detect(raw, 0)
	}
	if st.malformed != "" {
		r.Flags |= tokenwatch.FlagMalformed
		malformedCounter(st.malformed).Inc()
	}
	r.Fields.Format = formatName(format, st.syslog)
	parsedCounter(r.Fields.Format).Inc()
	redactFields(r)
	r.Parsed = true
}

// redactFields replaces any credential of r found inside a field value by its
// redacted form.
func redactFields(r *tokenwatch.Record) {
	f := &r.Fields
	for i := range r.Findings {
		fd := &r.Findings[i]
		if fd.Start < 0 || fd.End > len(r.Raw) || fd.Start >= fd.End {
			continue
		}
		tok := string(r.Raw[fd.Start:fd.End])
		red := fd.Redacted
		if red == "" {
			red = "[REDACTED]"
		}
		for _, s := range []*string{&f.UserAgent, &f.User, &f.Path, &f.Service, &f.Host, &f.Method} {
			if *s != "" && strings.Contains(*s, tok) {
				*s = strings.ReplaceAll(*s, tok, red)
			}
		}
	}
}

// Process implements tokenwatch.Stage. For records of kind auth and app it parses
// every record with findings (unless already Parsed) and appends one TokenUse per
// finding to b.Uses. Records of kind revocation are parsed as revocation events
// into b.Revocations and yield no uses. It also remembers IIS "#Fields:" headers
// of every record it sees. Process never fails except on a cancelled context.
func (p *Parser) Process(ctx context.Context, b *tokenwatch.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ingest := p.now()
	for i := range b.Records {
		r := &b.Records[i]
		if r.Kind == tokenwatch.KindRevocation {
			p.revocation(r, ingest, b)
			continue
		}
		if len(r.Raw) > 0 && r.Raw[0] == '#' {
			p.iis.observe(r.Origin.Source, r.Raw)
		}
		if len(r.Findings) == 0 {
			continue
		}
		if !r.Parsed {
			p.parse(r, ingest)
		}
		t := r.Fields.Time
		if t.IsZero() {
			t = ingest
		}
		for j := range r.Findings {
			fd := &r.Findings[j]
			b.Uses = append(b.Uses, tokenwatch.TokenUse{
				Fingerprint:   fd.Fingerprint,
				Kind:          fd.Kind,
				Rule:          fd.Rule,
				Redacted:      fd.Redacted,
				Leak:          r.Kind == tokenwatch.KindApp,
				Time:          t,
				IP:            r.Fields.IP,
				UserAgent:     r.Fields.UserAgent,
				User:          r.Fields.User,
				Method:        r.Fields.Method,
				Path:          r.Fields.Path,
				Status:        r.Fields.Status,
				Service:       r.Fields.Service,
				Host:          r.Fields.Host,
				Scheme:        fd.Scheme,
				Param:         fd.Param,
				DPoPProof:     r.Fields.DPoPProof,
				HeadersLogged: r.Fields.HeadersLogged,
				JWT:           fd.JWT,
				Sealed:        fd.Sealed,
				Origin:        r.Origin,
				Index:         j,
			})
		}
	}
	return nil
}

// pstate is the state of parsing one record.
type pstate struct {
	p         *Parser
	ref       time.Time
	source    string
	f         *tokenwatch.Fields
	malformed string // first malformed reason
	syslog    bool
}

func (st *pstate) flag(reason string) {
	if st.malformed == "" {
		st.malformed = reason
	}
}

// Setters fill a field only when it is still empty: the most specific parser runs
// first, wrappers (syslog, CRI) and fallbacks fill the gaps.

func (st *pstate) setTime(t time.Time) {
	if st.f.Time.IsZero() && !t.IsZero() {
		st.f.Time = t
	}
}

func (st *pstate) setTimeBytes(b []byte) {
	if !st.f.Time.IsZero() || len(b) == 0 {
		return
	}
	if t, ok := st.p.parseTime(b, st.ref); ok {
		st.f.Time = t
	}
}

func (st *pstate) setIP(a netip.Addr) {
	if !st.f.IP.IsValid() && a.IsValid() {
		st.f.IP = a
	}
}

func setStr(dst *string, b []byte, max int) {
	b = trimSpace(b)
	if *dst != "" || len(b) == 0 || isDash(b) {
		return
	}
	*dst = toString(b, max)
}

func (st *pstate) setUA(b []byte)      { setStr(&st.f.UserAgent, b, maxUAField) }
func (st *pstate) setUser(b []byte)    { setStr(&st.f.User, b, maxShortField) }
func (st *pstate) setService(b []byte) { setStr(&st.f.Service, b, maxShortField) }

func (st *pstate) setHost(b []byte) {
	setStr(&st.f.Host, stripHostPort(trimSpace(b)), maxShortField)
}

func (st *pstate) setMethod(b []byte) {
	b = trimSpace(b)
	if st.f.Method != "" || len(b) == 0 || len(b) > 16 {
		return
	}
	var buf [16]byte
	for i, c := range b {
		c = upper(c)
		if c < 'A' || c > 'Z' {
			if c != '-' && c != '_' {
				return
			}
		}
		buf[i] = c
	}
	st.f.Method = string(buf[:len(b)])
}

// setPath stores the path of a request target, never its query string.
func (st *pstate) setPath(b []byte) {
	path, host := stripQuery(trimSpace(b))
	if len(host) > 0 {
		st.setHost(host)
	}
	setStr(&st.f.Path, path, maxPathField)
}

func (st *pstate) setStatus(n int) {
	if st.f.Status == 0 && n >= 100 && n <= 999 {
		st.f.Status = n
	}
}

// setRequestLine parses "METHOD target PROTO" (PROTO optional).
func (st *pstate) setRequestLine(b []byte) {
	b = trimSpace(b)
	i := 0
	for i < len(b) && b[i] != ' ' {
		i++
	}
	if !isMethod(b[:i]) {
		return
	}
	st.setMethod(b[:i])
	rest := trimSpace(b[i:])
	j := 0
	for j < len(rest) && rest[j] != ' ' {
		j++
	}
	if j > 0 {
		st.setPath(rest[:j])
	}
}

// parseTime parses a time field: the configured layout first, then ParseTime's forms.
func (p *Parser) parseTime(b []byte, ref time.Time) (time.Time, bool) {
	if p.layout != "" && len(b) <= maxTimeLen {
		if t, err := time.ParseInLocation(p.layout, string(trimSpace(b)), p.loc); err == nil {
			return t, true
		}
	}
	return parseTimeRef(b, p.loc, ref)
}
