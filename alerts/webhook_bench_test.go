package alerts

import (
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

func BenchmarkSign(b *testing.B) {
	s, _ := NewSigner([]string{testSecret})
	a := testAlert(1, tokenwatch.AlertLeakedTokenReplay)
	body, _ := RenderTemplate("raw", &a, nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Sign("msg_0123456789abcdef0123456789abcdef", 1795593601, body)
	}
}

// BenchmarkWebhookBuild renders a template and signs it: the per-attempt CPU
// cost of a webhook delivery.
func BenchmarkWebhookBuild(b *testing.B) {
	for _, tmpl := range TemplateNames() {
		b.Run(tmpl, func(b *testing.B) {
			w, err := newWebhookSink(sinkDefaults(SinkConfig{Name: "w", Type: SinkWebhook, URL: "https://x/y", Secrets: []string{testSecret}, Template: tmpl}))
			if err != nil {
				b.Fatal(err)
			}
			env := &Envelope{Alert: testAlert(1, tokenwatch.AlertLeakedTokenReplay)}
			for i := range 19 {
				env.Alert.Evidence = append(env.Alert.Evidence, testAlert(i+2, "x").Evidence...)
			}
			r, _ := w.build(env, "msg_x", time.Now(), false)
			b.SetBytes(int64(len(r.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.build(env, "msg_x", time.Now(), false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
