package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultUserAgent is sent when no WithUserAgent option is given.
const DefaultUserAgent = "tokenwatch/dev"

// Outcomes of one delivery attempt or of a whole delivery.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeDead      = "dead"
	OutcomeGone      = "gone"
	OutcomeSkipped   = "skipped"
	OutcomeExpired   = "expired"
	OutcomeDisabled  = "disabled"
)

// outRequest is one HTTP request a sink wants sent.
type outRequest struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Secret: Body holds a token in clear; it is wiped once sent and never printed.
	Secret bool
}

// result is the classification of one attempt.
type result struct {
	Outcome    string
	Status     int
	RetryAfter time.Duration // 0: none given
	Err        string        // the error text for logs and dead letters (never a token)
}

// sink is one configured endpoint.
type sink interface {
	config() *SinkConfig
	// accepts reports whether env concerns this sink; when not, reason says why
	// (recorded as outcome skipped).
	accepts(env *Envelope) (ok bool, reason string)
	// build returns the request delivering env with the given webhook id. With
	// dry set the request must not contain any secret value (the RFC 7009 token
	// is replaced by a placeholder and never opened).
	build(env *Envelope, webhookID string, now time.Time, dry bool) (*outRequest, error)
	// classify maps a response to an outcome.
	classify(status int, h http.Header, body []byte) result
}

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		// Never follow redirects: a 3xx is an answer (dead letter), and following
		// one could send a signed body or a token somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send performs r with the sink's timeout and returns the status, headers and
// up to 64 KiB of the response body.
func send(ctx context.Context, c *http.Client, r *outRequest, timeout time.Duration, ua string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header = r.Header.Clone()
	req.Header.Set("User-Agent", ua)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, scrubURLError(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, body, nil
}

// scrubURLError keeps the cause of a transport error but not the endpoint's
// path and query, which can be a credential themselves (a Slack webhook URL).
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timeout: %w", err)
	}
	return err
}

// redactURL keeps the scheme and host of raw: logs and dead letters name the
// endpoint without its path, which may hold a secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[endpoint]"
	}
	if u.Path == "" && u.RawQuery == "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// classifyHTTP is the common mapping: 2xx delivered, 410 gone, 408/425/429/5xx
// retry, anything else dead.
func classifyHTTP(status int, h http.Header, body []byte, now time.Time) result {
	r := result{Status: status}
	switch {
	case status >= 200 && status < 300:
		r.Outcome = OutcomeDelivered
		return r
	case status == http.StatusGone:
		r.Outcome = OutcomeGone
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500:
		r.Outcome = OutcomeRetry
		r.RetryAfter = parseRetryAfter(h.Get("Retry-After"), now)
	default:
		r.Outcome = OutcomeDead
	}
	r.Err = fmt.Sprintf("HTTP %d: %s", status, bodySnippet(body))
	return r
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 10.2.3); 0 when
// absent or unparsable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// bodySnippet returns a short printable excerpt of a response body.
func bodySnippet(b []byte) string {
	const max = 300
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != ' ' {
			return ' '
		}
		return r
	}, s)
}

// oauthError extracts "error: description" from an RFC 6749 5.2 style body.
func oauthError(body []byte) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Err         string `json:"err"`
		Desc        string `json:"description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	code, desc := e.Error, e.Description
	if code == "" {
		code, desc = e.Err, e.Desc
	}
	if code == "" {
		return ""
	}
	if desc != "" {
		return code + ": " + desc
	}
	return code
}

// appendFormEscape appends b escaped for application/x-www-form-urlencoded.
func appendFormEscape(dst, b []byte) []byte {
	const hexd = "0123456789ABCDEF"
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hexd[c>>4], hexd[c&15])
		}
	}
	return dst
}
