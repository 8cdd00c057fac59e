package alerts

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// TemplateData is what a webhook body template sees.
type TemplateData struct {
	Alert *tokenwatch.Alert
	// WebhookID is the delivery id (also in the webhook-id header).
	WebhookID string
	// Sink is the sink name.
	Sink string
	// Vars are the sink's template_vars.
	Vars map[string]string
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	// soarSeverity maps to Splunk SOAR's default severities (low, medium, high).
	"soarSeverity": func(s tokenwatch.Severity) string {
		switch s {
		case tokenwatch.SeverityCritical, tokenwatch.SeverityHigh:
			return "high"
		case tokenwatch.SeverityMedium:
			return "medium"
		}
		return "low"
	},
	// xsoarSeverity maps to Cortex XSOAR's numeric severity (0.5 info … 4 critical).
	"xsoarSeverity": func(s tokenwatch.Severity) string {
		switch s {
		case tokenwatch.SeverityInfo:
			return "0.5"
		case tokenwatch.SeverityLow:
			return "1"
		case tokenwatch.SeverityMedium:
			return "2"
		case tokenwatch.SeverityHigh:
			return "3"
		case tokenwatch.SeverityCritical:
			return "4"
		}
		return "0"
	},
	// slackEscape escapes the three characters Slack mrkdwn reserves.
	"slackEscape": func(s string) string {
		return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	},
	"updateNote": func(n int) string {
		if n == 0 {
			return ""
		}
		return " · update " + strconv.Itoa(n)
	},
}

// TemplateNames lists the built-in body templates.
func TemplateNames() []string { return append([]string(nil), templateNames...) }

// loadTemplate returns the built-in template name, or the file when file is set.
func loadTemplate(name, file string) (*template.Template, error) {
	var src []byte
	var err error
	if file != "" {
		src, err = os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read template file %s: %w", file, err)
		}
		name = file
	} else {
		src, err = templateFS.ReadFile("templates/" + name + ".tmpl")
		if err != nil {
			return nil, fmt.Errorf("built-in template %q: %w", name, err)
		}
	}
	t, err := template.New(name).Option("missingkey=zero").Funcs(templateFuncs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", name, err)
	}
	return t, nil
}

// RenderTemplate renders the named built-in template for a (for previews and tests).
func RenderTemplate(name string, a *tokenwatch.Alert, vars map[string]string) ([]byte, error) {
	t, err := loadTemplate(name, "")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, TemplateData{Alert: a, WebhookID: WebhookID(a.ID, a.Update, "preview"), Sink: "preview", Vars: vars})
	return bytes.TrimSpace(buf.Bytes()), err
}

// decodeSecret decodes a Standard Webhooks secret "whsec_<base64>".
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, fmt.Errorf("a Standard Webhooks secret starts with whsec_ followed by base64; generate one with `echo whsec_$(openssl rand -base64 32)`")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("the part after whsec_ must be base64 of at least 16 bytes; generate one with `echo whsec_$(openssl rand -base64 32)`")
	}
	return k, nil
}

// Signer signs webhook requests per the Standard Webhooks specification.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a Signer for the given whsec_ secrets; every secret signs, so
// receivers can rotate.
func NewSigner(secrets []string) (*Signer, error) {
	s := &Signer{}
	for i, sec := range secrets {
		k, err := decodeSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Sign returns the webhook-signature header value: space-separated
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", one per secret.
func (s *Signer) Sign(id string, ts int64, body []byte) string {
	var out []byte
	for i, k := range s.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write(strconv.AppendInt(nil, ts, 10))
		m.Write([]byte{'.'})
		m.Write(body)
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, m.Sum(nil))
	}
	return string(out)
}

type webhookSink struct {
	cfg    SinkConfig
	tmpl   *template.Template
	signer *Signer
}

func newWebhookSink(cfg SinkConfig) (*webhookSink, error) {
	t, err := loadTemplate(cfg.Template, cfg.TemplateFile)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	sg, err := NewSigner(cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	return &webhookSink{cfg: cfg, tmpl: t, signer: sg}, nil
}

func (w *webhookSink) config() *SinkConfig              { return &w.cfg }
func (w *webhookSink) accepts(*Envelope) (bool, string) { return true, "" }
func (w *webhookSink) classify(st int, h http.Header, b []byte) result {
	return classifyHTTP(st, h, b, time.Now())
}

func (w *webhookSink) build(env *Envelope, id string, now time.Time, _ bool) (*outRequest, error) {
	var buf bytes.Buffer
	a := env.Alert
	a.Sealed = nil
	if err := w.tmpl.Execute(&buf, TemplateData{Alert: &a, WebhookID: id, Sink: w.cfg.Name, Vars: w.cfg.TemplateVars}); err != nil {
		return nil, fmt.Errorf("render template for sink %s: %w", w.cfg.Name, err)
	}
	body := bytes.TrimSpace(buf.Bytes())
	h := make(http.Header, 4+len(w.cfg.Headers))
	for k, v := range w.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", w.cfg.ContentType)
	ts := now.Unix()
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if len(w.signer.keys) > 0 {
		h.Set("webhook-signature", w.signer.Sign(id, ts, body))
	}
	return &outRequest{Method: http.MethodPost, URL: w.cfg.URL, Header: h, Body: body}, nil
}
