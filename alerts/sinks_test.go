package alerts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/tokenwatch/tokenwatch"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestTemplatesGolden renders every built-in template for an alert with
// characters that need escaping; each must be valid JSON and match its golden.
func TestTemplatesGolden(t *testing.T) {
	a := testAlert(3, tokenwatch.AlertLeakedTokenReplay)
	a.Update = 2
	a.Summary = "Leaked token \"eyJhbG…Qssw\" replayed from <AS64500> & Tor\nexit node."
	for _, name := range TemplateNames() {
		t.Run(name, func(t *testing.T) {
			got, err := RenderTemplate(name, &a, map[string]string{"label": "tokenwatch"})
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("template %s renders invalid JSON: %v\n%s", name, err, got)
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, got, "", "  ")
			golden := filepath.Join("testdata", "template_"+name+".golden.json")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("template %s differs from %s (run go test -update):\n%s", name, golden, pretty.Bytes())
			}
		})
	}
	t.Run("shape", func(t *testing.T) {
		check := func(name string, keys ...string) {
			b, _ := RenderTemplate(name, &a, nil)
			var v map[string]any
			json.Unmarshal(b, &v)
			for _, k := range keys {
				if _, ok := v[k]; !ok {
					t.Errorf("%s: no %q", name, k)
				}
			}
		}
		check("splunk_soar", "name", "label", "severity", "source_data_identifier", "artifacts")
		check("xsoar", "name", "type", "severity", "details", "rawJson")
		check("slack", "text", "blocks")
		check("raw", "id", "type", "severity", "fingerprint", "evidence", "summary")
		b, _ := RenderTemplate("xsoar", &a, nil)
		var x struct{ Severity float64 }
		json.Unmarshal(b, &x)
		if x.Severity != 3 {
			t.Errorf("xsoar severity = %v, want 3 for high", x.Severity)
		}
		b, _ = RenderTemplate("splunk_soar", &a, nil)
		var s struct {
			SDI string `json:"source_data_identifier"`
		}
		json.Unmarshal(b, &s)
		if s.SDI != a.ID {
			t.Errorf("splunk source_data_identifier = %q, want the alert id", s.SDI)
		}
	})
}

// TestSecretRotation: with two secrets the header carries two signatures and a
// receiver that knows only one of them accepts.
func TestSecretRotation(t *testing.T) {
	newSecret := "whsec_" + "c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="
	s, err := newWebhookSink(sinkDefaults(SinkConfig{Name: "w", Type: SinkWebhook, URL: "https://soar.example/hook", Secrets: []string{testSecret, newSecret}}))
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{Alert: testAlert(1, "token_leak")}
	r, err := s.build(env, "msg_x", time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, sec := range []string{testSecret, newSecret} {
		if err := verifyStandardWebhook(sec, r.Header, r.Body, time.Now()); err != nil {
			t.Fatalf("secret %s: %v", sec[:10], err)
		}
	}
	if err := verifyStandardWebhook("whsec_"+"b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVk", r.Header, r.Body, time.Now()); err == nil {
		t.Fatal("an unknown secret verified")
	}
	tampered := append(bytes.Clone(r.Body), ' ')
	if err := verifyStandardWebhook(testSecret, r.Header, tampered, time.Now()); err == nil {
		t.Fatal("a tampered body verified")
	}
}

type recorder struct {
	mu sync.Mutex
	d  []Delivery
}

func (r *recorder) RecordDelivery(_ context.Context, d Delivery) error {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.d...)
}

const plantedToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJQTEFOVEVELVNFQ1JFVCJ9.PLANTED+secret/sig=="

func testSealer(t testing.TB) *Sealer {
	s, err := NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// revokeBatch returns a batch whose alert's token use carries the sealed token
// and a JWT exp.
func revokeBatch(t testing.TB, s *Sealer, n int, exp time.Time) *tokenwatch.Batch {
	return revokeBatchToken(t, s, n, exp, plantedToken)
}

func revokeBatchToken(t testing.TB, s *Sealer, n int, exp time.Time, token string) *tokenwatch.Batch {
	a := testAlert(n, tokenwatch.AlertLeakedTokenReplay)
	fp, _ := tokenwatch.ParseFingerprint(a.Fingerprint)
	return &tokenwatch.Batch{
		Records: []tokenwatch.Record{{Raw: []byte("GET /api Authorization: Bearer " + plantedToken)}},
		Uses: []tokenwatch.TokenUse{{
			Fingerprint: fp, Kind: "jwt", Sealed: s.Seal([]byte(token), fp),
			JWT: &tokenwatch.JWTInfo{Iss: a.Issuer, Exp: exp.Unix()},
		}},
		Alerts: []tokenwatch.Alert{a},
	}
}

func revokeConfig(dir, url, method string) Config {
	c := fastConfig(dir, SinkConfig{
		Name: "idp", Type: SinkRFC7009, URL: url, Issuer: "https://idp.example",
		ClientID: "tokenwatch client", ClientSecret: "s3cr:t&", AuthMethod: method, TokenTypeHint: "access_token",
		Timeout: time.Minute,
	})
	c.SealingKey = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
	return c
}

func enqueueBatch(t testing.TB, c Config, b *tokenwatch.Batch) {
	t.Helper()
	q, err := NewFileQueue(c.Outbox.File)
	if err != nil {
		t.Fatal(err)
	}
	ob := NewOutbox(c, q)
	if err := ob.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	ob.Close(context.Background())
}

func TestRevocationFormAndAuth(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			rc := newReceiver(t, nil)
			dir := t.TempDir()
			c := revokeConfig(dir, rc.URL+"/oauth2/revoke", method)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			s := testSealer(t)
			enqueueBatch(t, c, revokeBatch(t, s, 1, time.Now().Add(time.Hour)))
			stop := startDispatcher(t, c, s)
			waitFor(t, 30*time.Second, "revocation", func() bool { return len(rc.ok()) == 1 })
			stop()
			r := rc.ok()[0]
			if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Fatalf("Content-Type = %q", ct)
			}
			form, err := url.ParseQuery(string(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			if form.Get("token") != plantedToken || form.Get("token_type_hint") != "access_token" {
				t.Fatalf("form = %v", form)
			}
			req := &http.Request{Header: r.Header}
			user, pass, basic := req.BasicAuth()
			switch method {
			case "client_secret_basic":
				// RFC 6749 2.3.1: client id and secret are form-encoded before base64.
				if !basic || user != "tokenwatch+client" || pass != "s3cr%3At%26" || form.Has("client_secret") {
					t.Fatalf("basic auth = %q %q %v, form %v", user, pass, basic, form)
				}
			case "client_secret_post":
				if basic || form.Get("client_id") != "tokenwatch client" || form.Get("client_secret") != "s3cr:t&" {
					t.Fatalf("post auth: basic %v form %v", basic, form)
				}
			}
		})
	}
}

// TestRevocationNothingAfterExpiry: the endpoint answers 503 with Retry-After
// until after the token expired; the dispatcher stops at the expiry and the
// outcome is "expired". An already-expired token is never sent.
func TestRevocationNothingAfterExpiry(t *testing.T) {
	// The dispatcher's clock is the test's: the endpoint answers 503 with
	// Retry-After twice, and on its second request time jumps past the token's
	// expiry. The dispatcher must then stop: no third request.
	var mu sync.Mutex
	var skew time.Duration
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	exp := time.Now().Add(time.Hour)
	rc := newReceiver(t, func(i int, r *http.Request, b []byte) (int, map[string]string, time.Duration) {
		if i == 1 {
			mu.Lock()
			skew = 2 * time.Hour
			mu.Unlock()
		}
		return 503, map[string]string{"Retry-After": "0"}, 0
	})
	dir := t.TempDir()
	c := revokeConfig(dir, rc.URL, "client_secret_basic")
	s := testSealer(t)
	b := revokeBatch(t, s, 1, exp)
	const expiredToken = "expired-token-value-0123456789"
	b2 := revokeBatchToken(t, s, 2, time.Now().Add(-time.Minute), expiredToken)
	b.Uses = append(b.Uses, b2.Uses...)
	b.Alerts = append(b.Alerts, b2.Alerts...)
	enqueueBatch(t, c, b)
	rec := &recorder{}
	stop := startDispatcher(t, c, s, WithRecorder(rec), withClock(clock))
	waitFor(t, 30*time.Second, "both deliveries finished", func() bool { return len(rec.all()) == 2 })
	stop()
	for _, d := range rec.all() {
		if d.Outcome != OutcomeExpired {
			t.Fatalf("delivery %+v, want outcome expired", d)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (none once the token expired)", len(reqs))
	}
	for _, r := range reqs {
		form, _ := url.ParseQuery(string(r.Body))
		if form.Get("token") != plantedToken {
			t.Fatalf("a request carried another token than the live one (the expired token was sent?)")
		}
	}
}

// TestRevocationErrorsDeadLetter: 400 unsupported_token_type is a dead letter
// carrying the OAuth error and the sealed token (for replay), never the token.
func TestRevocationErrorsDeadLetter(t *testing.T) {
	rc := newReceiver(t, nil)
	rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		w.Write([]byte(`{"error":"unsupported_token_type","error_description":"cannot revoke ` + plantedToken + `"}`))
	})
	dir := t.TempDir()
	c := revokeConfig(dir, rc.URL, "client_secret_post")
	s := testSealer(t)
	enqueueBatch(t, c, revokeBatch(t, s, 1, time.Now().Add(time.Hour)))
	stop := startDispatcher(t, c, s)
	waitFor(t, 30*time.Second, "dead letter", func() bool { return len(readDeadLetters(t, c.DeadLetter.File)) == 1 })
	stop()
	dl := readDeadLetters(t, c.DeadLetter.File)[0]
	if !strings.HasPrefix(dl.Error, "HTTP 400: unsupported_token_type") || len(dl.Envelope.Sealed) == 0 {
		t.Fatalf("dead letter = %+v", dl)
	}
}

func pemKey(t testing.TB, alg string) (string, any) {
	switch alg {
	case "ES256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), &k.PublicKey
	default:
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		der := x509.MarshalPKCS1PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})), &k.PublicKey
	}
}

// TestSSFPush: SETs verify with go-jose against the public key, carry typ
// secevent+jwt and kid, the configured events and RFC 9493 subjects, and are
// POSTed as application/secevent+jwt; 202 is success.
func TestSSFPush(t *testing.T) {
	for _, tc := range []struct {
		alg, format string
		events      []string
		wantSubject map[string]any
	}{
		{"ES256", "iss_sub", []string{"credential-compromise"}, map[string]any{"format": "iss_sub", "iss": "https://idp.example", "sub": "user-1"}},
		{"RS256", "jwt_id", []string{"session-revoked", "credential-change"}, map[string]any{"format": "jwt_id", "iss": "https://idp.example", "jti": "jti-1"}},
		{"ES256", "complex", []string{"session-revoked"}, map[string]any{
			"format":      "complex",
			"user":        map[string]any{"format": "iss_sub", "iss": "https://idp.example", "sub": "user-1"},
			"session":     map[string]any{"format": "jwt_id", "iss": "https://idp.example", "jti": "jti-1"},
			"application": map[string]any{"format": "opaque", "id": "web"},
		}},
	} {
		t.Run(tc.alg+"/"+tc.format, func(t *testing.T) {
			rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 202, nil, 0 })
			keyPEM, pub := pemKey(t, tc.alg)
			dir := t.TempDir()
			c := fastConfig(dir, SinkConfig{
				Name: "ssf", Type: SinkSSF, URL: rc.URL + "/events", SETIssuer: "https://tokenwatch.example",
				Audience: []string{"https://receiver.example"}, Alg: tc.alg, KeyPEM: keyPEM, Kid: "tw-1",
				Events: tc.events, SubjectFormat: tc.format, Headers: map[string]string{"Authorization": "Bearer receiver-token"},
			})
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			enqueue(t, c, testAlert(1, tokenwatch.AlertLeakedTokenReplay))
			stop := startDispatcher(t, c, nil)
			waitFor(t, 30*time.Second, "SET", func() bool { return len(rc.ok()) == 1 })
			stop()
			r := rc.ok()[0]
			if ct := r.Header.Get("Content-Type"); ct != "application/secevent+jwt" {
				t.Fatalf("Content-Type = %q", ct)
			}
			if r.Header.Get("Authorization") != "Bearer receiver-token" {
				t.Fatal("configured header missing")
			}
			jws, err := jose.ParseSignedCompact(string(r.Body), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.alg)})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := jws.Verify(pub)
			if err != nil {
				t.Fatalf("SET does not verify: %v", err)
			}
			h := jws.Signatures[0].Header
			if h.KeyID != "tw-1" || h.ExtraHeaders["typ"] != "secevent+jwt" || h.Algorithm != tc.alg {
				t.Fatalf("header = %+v", h)
			}
			var claims map[string]any
			json.Unmarshal(payload, &claims)
			if claims["iss"] != "https://tokenwatch.example" || claims["aud"] != "https://receiver.example" ||
				claims["txn"] != "al-0001" || claims["jti"] != WebhookID("al-0001", 0, "ssf") || claims["iat"] == nil {
				t.Fatalf("claims = %v", claims)
			}
			events := claims["events"].(map[string]any)
			if len(events) != len(tc.events) {
				t.Fatalf("events = %v", events)
			}
			for _, e := range tc.events {
				ev, ok := events[ssfEventURI[e]].(map[string]any)
				if !ok {
					t.Fatalf("event %s missing in %v", ssfEventURI[e], events)
				}
				if !jsonEqual(ev["subject"], tc.wantSubject) || !jsonEqual(claims["sub_id"], tc.wantSubject) {
					t.Fatalf("subject = %v / sub_id = %v, want %v", ev["subject"], claims["sub_id"], tc.wantSubject)
				}
				if e == "credential-change" && (ev["change_type"] != "revoke" || ev["credential_type"] == nil) {
					t.Fatalf("credential-change = %v", ev)
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestSSFErrorDeadLetter: RFC 8935 400 {"err","description"} is a dead letter
// carrying that error.
func TestSSFErrorDeadLetter(t *testing.T) {
	rc := newReceiver(t, nil)
	rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		w.Write([]byte(`{"err":"invalid_audience","description":"The audience value was invalid."}`))
	})
	keyPEM, _ := pemKey(t, "ES256")
	dir := t.TempDir()
	c := fastConfig(dir, SinkConfig{Name: "ssf", Type: SinkSSF, URL: rc.URL, SETIssuer: "https://tw", Audience: []string{"a"}, Alg: "ES256", KeyPEM: keyPEM})
	enqueue(t, c, testAlert(1, tokenwatch.AlertTokenLeak))
	stop := startDispatcher(t, c, nil)
	waitFor(t, 30*time.Second, "dead letter", func() bool { return len(readDeadLetters(t, c.DeadLetter.File)) == 1 })
	stop()
	if dl := readDeadLetters(t, c.DeadLetter.File)[0]; dl.Error != "HTTP 400: invalid_audience: The audience value was invalid." || dl.Attempts != 1 {
		t.Fatalf("dead letter = %+v", dl)
	}
}

// TestNoTokenInAnyOutput plants a token in the log record, the sealed use and
// an echoing receiver, runs the outbox, every sink type (one of them refusing,
// so a dead letter is written), a dry run and the logs, and scans everything
// produced for the token in clear, base64 or URL-escaped form. Only the RFC 7009
// request body may hold it.
func TestNoTokenInAnyOutput(t *testing.T) {
	echo := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 400, nil, 0 })
	hook := newReceiver(t, nil)
	ssf := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) { return 202, nil, 0 })
	revoke := newReceiver(t, nil)
	revoke.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := readAll(r)
		revoke.mu.Lock()
		revoke.all = append(revoke.all, received{Body: b, Status: 400})
		revoke.mu.Unlock()
		w.WriteHeader(400) // echoes the request: must not reach the dead letter
		w.Write(b)
	})
	keyPEM, _ := pemKey(t, "ES256")
	dir := t.TempDir()
	c := revokeConfig(dir, revoke.URL, "client_secret_post")
	c.Sinks = append(c.Sinks,
		SinkConfig{Name: "hook", Type: SinkWebhook, URL: hook.URL, Secrets: []string{testSecret}, Template: "slack"},
		SinkConfig{Name: "echo", Type: SinkWebhook, URL: echo.URL, Template: "splunk_soar"},
		SinkConfig{Name: "ssf", Type: SinkSSF, URL: ssf.URL, SETIssuer: "https://tw", Audience: []string{"a"}, KeyPEM: keyPEM},
	)
	c.DefaultSinks = []string{"idp", "hook", "echo", "ssf"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := testSealer(t)
	enqueueBatch(t, c, revokeBatch(t, s, 1, time.Now().Add(time.Hour)))
	logger, logs := logBuffer()
	stop := startDispatcher(t, c, s, WithLogger(logger))
	waitFor(t, 30*time.Second, "all sinks done", func() bool {
		return len(hook.ok()) == 1 && len(ssf.ok()) == 1 && len(readDeadLetters(t, c.DeadLetter.File)) == 2
	})
	stop()
	var dry bytes.Buffer
	d, err := NewDispatcher(c, nil, s, WithDryRun(&dry), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	env := readEnvelopes(t, c.Outbox.File)[0]
	if err := d.Deliver(context.Background(), &env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dry.String(), "SEALED-TOKEN-NOT-OPENED") || !strings.Contains(dry.String(), "Webhook-Signature: v1,") {
		t.Fatalf("dry run output lacks the requests:\n%s", dry.String())
	}
	if form, _ := url.ParseQuery(string(revoke.requests()[0].Body)); form.Get("token") != plantedToken {
		t.Fatal("the revocation endpoint did not get the token")
	}
	outputs := map[string][]byte{"logs": []byte(logs.String()), "dry run": dry.Bytes()}
	for _, f := range []string{c.Outbox.File, c.DeadLetter.File, c.Dispatcher.StateFile + ".cursor"} {
		b, _ := os.ReadFile(f)
		outputs[filepath.Base(f)] = b
	}
	for name, rc := range map[string]*receiver{"webhook": hook, "echo": echo, "ssf": ssf} {
		for i, r := range rc.requests() {
			var h bytes.Buffer
			r.Header.Write(&h)
			outputs[name+" request "+itoa(i)] = append(h.Bytes(), r.Body...)
		}
	}
	forms := tokenForms(plantedToken)
	for name, out := range outputs {
		for _, f := range forms {
			if bytes.Contains(out, []byte(f)) {
				t.Errorf("%s holds the token (as %q)", name, f)
			}
		}
	}
	if !bytes.Contains(outputs["outbox.jsonl"], []byte(`"sealed":`)) {
		t.Fatal("the outbox lacks the sealed token the revocation sink needs")
	}
}

func tokenForms(tok string) []string {
	return []string{tok, "PLANTED+secret", url.QueryEscape(tok), jsonB64(tok), "UExBTlRFRC1TRUNSRVQ"}
}

func jsonB64(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func readEnvelopes(t testing.TB, path string) []Envelope {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Envelope
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e Envelope
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestTransportErrorsHideEndpointPath: a Slack webhook URL's path is a secret;
// transport errors (which end up in logs and dead letters) keep only the host.
func TestTransportErrorsHideEndpointPath(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, map[string]string, time.Duration) {
		return 200, nil, time.Second // past the timeout
	})
	dir := t.TempDir()
	c := fastConfig(dir, SinkConfig{Name: "slack", Type: SinkWebhook, URL: rc.URL + "/services/T000/B000/SECRETPATH", Template: "slack", Timeout: 50 * time.Millisecond})
	c.Retry.MaxAttempts = 1
	enqueue(t, c, testAlert(1, tokenwatch.AlertTokenLeak))
	logger, logs := logBuffer()
	stop := startDispatcher(t, c, nil, WithLogger(logger))
	waitFor(t, 30*time.Second, "dead letter", func() bool { return len(readDeadLetters(t, c.DeadLetter.File)) == 1 })
	stop()
	dl := readDeadLetters(t, c.DeadLetter.File)[0]
	if !strings.Contains(dl.Error, "timeout") || strings.Contains(dl.Error+logs.String(), "SECRETPATH") {
		t.Fatalf("dead letter error %q / logs leak the endpoint path or miss the cause", dl.Error)
	}
}
