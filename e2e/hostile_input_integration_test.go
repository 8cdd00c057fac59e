//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// fakeJWT is a signed-looking HS256 JWT of the scenario's issuer, unique by id.
func fakeJWT(id string, exp time.Time) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc.EncodeToString([]byte(fmt.Sprintf(`{"iss":"https://idp.example.com","sub":"user-%s","jti":"%s","exp":%d,"iat":%d}`, id, id, exp.Unix(), exp.Add(-time.Hour).Unix())))
	sig := make([]byte, 32)
	for i := range sig {
		sig[i] = byte(rand.IntN(256))
	}
	return h + "." + p + "." + enc.EncodeToString(sig)
}

// leakLine is an application log line that leaks tok (a token_leak incident).
func leakLine(svc, tok string) string {
	return fmt.Sprintf(`{"ts":"%s","level":"debug","service":%q,"msg":"upstream call","headers":{"authorization":"Bearer %s"}}`,
		time.Now().UTC().Format(time.RFC3339Nano), svc, tok)
}

// raiseMaxMessageBytes lets a topic hold messages of up to 16 MiB.
func raiseMaxMessageBytes(t *testing.T, topic string) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(testenv.KafkaBrokers(t)...), Timeout: 10 * time.Second}
	resp, err := c.IncrementalAlterConfigs(context.Background(), &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "max.message.bytes", Value: "16777216", ConfigOperation: kafka.ConfigOperationSet}},
		}},
	})
	if err != nil {
		t.Fatalf("alter %s: %v", topic, err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			t.Fatalf("alter %s: %v", topic, r.Error)
		}
	}
}

// TestHostileInput produces malformed and hostile records to an application
// log topic — random bytes, a 10 MB line, invalid UTF-8, JSON nested 100,000
// levels deep, JWTs with a 1 MB and a 64 KB header, NUL bytes — most of them
// carrying a credential so the parser sees them, then one valid leak. tokenwatch
// must not crash or stall (the group reaches the end of the topic), must count
// the bad records on /metrics, and must still raise the valid leak's alert.
func TestHostileInput(t *testing.T) {
	tr := scenarioTraffic(t) // for the GeoIP databases and policy of the config
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.CreateTopic(t, "e2e-hostile", 2)
	raiseMaxMessageBytes(t, topic)
	topics := &topicSet{names: map[string]string{"app": topic}, parts: map[string]int{topic: 2}, kinds: map[string]string{topic: "app"}}

	exp := time.Now().Add(24 * time.Hour)
	tok := func(id string) string { return fakeJWT("hostile-"+id, exp) }
	var msgs [][]byte
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 { // random bytes, 1 B to 8 KiB
		b := make([]byte, 1+rng.IntN(8<<10))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		msgs = append(msgs, b)
	}
	// 10 MB line (cut at ingest.max_record_bytes = 4 MiB), a credential at its start.
	big := []byte(`{"service":"hostile","authorization":"Bearer ` + tok("big") + `","blob":"`)
	big = append(big, bytes.Repeat([]byte("A"), 10<<20)...)
	msgs = append(msgs, append(big, '"', '}'))
	// Invalid UTF-8 around a credential.
	msgs = append(msgs, []byte("{\"service\":\"hostile\",\"msg\":\"\xff\xfe\xc3\x28 bad \xe2\x82\",\"authorization\":\"Bearer "+tok("utf8")+"\"}"))
	// JSON nested 100,000 levels, a credential at the bottom.
	var nest bytes.Buffer
	for range 100000 {
		nest.WriteString(`{"a":`)
	}
	nest.WriteString(`"Bearer ` + tok("deep") + `"`)
	nest.Write(bytes.Repeat([]byte("}"), 100000))
	msgs = append(msgs, nest.Bytes())
	nest.Reset() // unterminated nesting, a credential inside
	nest.WriteString(strings.Repeat(`{"headers":[`, 100000) + `"Bearer ` + tok("open") + `"`)
	msgs = append(msgs, nest.Bytes())
	// JWTs with giant headers (1 MB and 64 KB of header JSON).
	for _, n := range []int{1 << 20, 64 << 10} {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + strings.Repeat("k", n) + `"}`))
		msgs = append(msgs, []byte(`{"service":"hostile","authorization":"Bearer `+h+`.eyJzdWIiOiJ4In0.c2ln"}`))
	}
	// NUL bytes around a credential.
	msgs = append(msgs, []byte("{\"service\":\"hostile\",\"msg\":\"a\x00\x00\x00b\",\"authorization\":\"Bearer "+tok("nul")+"\"}"))
	msgs = append(msgs, bytes.Repeat([]byte{0}, 1<<20))
	// Then the valid incident.
	valid := tok("valid")
	msgs = append(msgs, []byte(leakLine("payments", valid)))

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchSize: 1,
		BatchBytes: 16 << 20, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var km []kafka.Message
	for _, m := range msgs {
		km = append(km, kafka.Message{Value: m})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, m := range km { // one at a time: the big ones must not share a request
		writeMessages(ctx, t, w, []kafka.Message{m})
	}

	r := newRun(t, "hostile", tr, topics, false)
	r.cfg.telemetry = freeAddr(t)
	r.cfg.ingestExtra = "  max_record_bytes: 4194304\n"
	r.start(t)
	r.waitDone2(t)

	// The valid leak after the garbage was detected and delivered.
	_, alerts, _, problems := r.cfg.hook.delivered()
	for _, p := range problems {
		t.Error(p)
	}
	found := false
	for _, a := range alerts {
		found = found || a.Type == "token_leak" && a.Service == "payments"
	}
	if !found {
		t.Errorf("the valid leak after the hostile input raised no token_leak alert; delivered: %+v", alerts)
	}
}

// waitDone2 waits for the end of the topic, reads the counters while the
// process still runs, then stops it.
func (r *twRun) waitDone2(t *testing.T) {
	t.Helper()
	waitFor(t, r.name+": every record committed and every alert delivered", 3*time.Minute, func() bool {
		if r.p.exited() {
			t.Fatalf("tokenwatch exited (crashed?) on hostile input: %v\n%s", r.p.err, tail(r.logPath))
		}
		return caughtUp(t, r.cfg)
	}, func() string { return tail(r.logPath) })
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"tokenwatch_ingest_records_truncated_total", []string{`source_type="kafka"`}},
		{"tokenwatch_ingest_records_malformed_total", []string{`reason="invalid_utf8"`}},
		{"tokenwatch_ingest_records_malformed_total", []string{`reason="json_`}}, // json_depth or json_syntax
		{"tokenwatch_ingest_records_malformed_total", []string{`reason="binary"`}},
	} {
		v, err := metric(r.cfg.telemetry, c.name, c.labels...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s%v = %v", c.name, c.labels, v)
		if v < 1 {
			t.Errorf("%s%v = %v, want >= 1", c.name, c.labels, v)
		}
	}
	for _, reason := range []string{"json_depth", "json_syntax", "json_trailing"} {
		v, _ := metric(r.cfg.telemetry, "tokenwatch_ingest_records_malformed_total", `reason="`+reason+`"`)
		t.Logf("malformed %s: %v", reason, v)
	}
	n, _ := metric(r.cfg.telemetry, "tokenwatch_ingest_records_total", `source_type="kafka"`)
	t.Logf("records read: %v", n)
	r.p.stop(t, r.logPath)
}
