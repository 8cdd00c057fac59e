//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// plantedTokens are credentials of many kinds, each unique to this test run.
func plantedTokens(run string) map[string]string {
	exp := time.Now().Add(48 * time.Hour)
	return map[string]string{
		"jwt-auth":      fakeJWT("plant-auth-"+run, exp),
		"jwt-leak":      fakeJWT("plant-leak-"+run, exp),
		"jwt-query":     fakeJWT("plant-query-"+run, exp),
		"bearer-opaque": "opq" + run + "Zk3m9QwErTyUiOpAsDfGhJkL",
		"access-token":  "at" + run + "x8Kq2LmN4pR7sT1vW3yZ5bC",
		"refresh-token": "rt" + run + "aB3dE5fG7hJ9kL2mN4pQ6rS",
		"stripe":        "sk_live_" + run + "4eC39HqLyjWDarjtT1zdp7dc",
		"gitlab":        "glpat-" + run + "Xy9zAbCdEfGhIjKl",
		"aws-id":        "AKIA" + strings.Map(func(r rune) rune { return 'A' + r%16 }, run[:4]) + "ZZQWERTYUIOP",
		"aws-secret":    "wJalrXUtnFEMI/K7MDENG+bPxRfiCY" + run[:4] + "EXAMPL",
		"slack":         "xoxb-1234567890-" + run + "-AbCdEfGhIjKlMnOpQrStUvWx",
	}
}

// TestNoRawTokenAnywhere plants raw tokens in auth and application logs on
// Kafka and then searches everything tokenwatch wrote — the findings file,
// the dispatcher's state files, every column of every row of every
// ClickHouse table (as text), every message of the outbox and dead-letter
// topics (a second sink refuses every alert with 400, so the dead-letter
// topic fills), every webhook request (headers and body) and tokenwatch's own
// stdout/stderr — for any planted token, in clear or URL-encoded: zero hits.
func TestNoRawTokenAnywhere(t *testing.T) {
	tr := scenarioTraffic(t)
	run := fmt.Sprintf("%x", time.Now().UnixNano()%0xffffffff)[:8]
	tokens := plantedTokens(run)

	auth := testenv.CreateTopic(t, "e2e-notoken-auth", 2)
	app := testenv.CreateTopic(t, "e2e-notoken-app", 2)
	topics := &topicSet{names: map[string]string{"auth": auth, "app": app}, parts: map[string]int{auth: 2, app: 2}, kinds: map[string]string{auth: "auth", app: "app"}}
	now := time.Now().UTC()
	ts := now.Format(time.RFC3339)
	var recs []trafficRecord
	for i, ip := range []string{"203.0.113.7", "198.51.100.23", "1.128.0.1", "81.2.69.142"} {
		// Auth logs (JSON access log with the Authorization header, nginx
		// combined with the token in the query).
		recs = append(recs,
			trafficRecord{file: "auth", raw: []byte(fmt.Sprintf(`{"time":"%s","remote_addr":"%s","method":"GET","path":"/v1/orders","status":200,"service":"orders","user_agent":"curl/8.%d","request_headers":{"authorization":"Bearer %s","x-api-key":"%s"}}`, ts, ip, i, tokens["jwt-auth"], tokens["stripe"]))},
			trafficRecord{file: "auth", raw: []byte(fmt.Sprintf(`%s - - [%s] "GET /callback?access_token=%s&id_token=%s HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64)"`, ip, now.Format("02/Jan/2006:15:04:05 -0700"), url.QueryEscape(tokens["access-token"]), tokens["jwt-query"]))},
			trafficRecord{file: "auth", raw: []byte(fmt.Sprintf(`{"time":"%s","remote_addr":"%s","method":"POST","path":"/api","status":201,"service":"billing","request_headers":{"authorization":"Bearer %s"}}`, ts, ip, tokens["bearer-opaque"]))},
		)
	}
	recs = append(recs,
		trafficRecord{file: "app", raw: []byte(leakLine("payments", tokens["jwt-leak"]))},
		trafficRecord{file: "app", raw: []byte(fmt.Sprintf(`{"ts":"%s","level":"error","service":"auth","msg":"refresh failed","response":{"refresh_token":"%s","access_token":"%s"}}`, ts, tokens["refresh-token"], tokens["access-token"]))},
		trafficRecord{file: "app", raw: []byte(fmt.Sprintf(`%s ERROR deploy: using GITLAB_TOKEN=%s STRIPE_KEY=%s slack=%s`, ts, tokens["gitlab"], tokens["stripe"], tokens["slack"]))},
		trafficRecord{file: "app", raw: []byte(fmt.Sprintf(`%s WARN aws config aws_access_key_id=%s aws_secret_access_key=%s`, ts, tokens["aws-id"], tokens["aws-secret"]))},
		trafficRecord{file: "app", raw: []byte(fmt.Sprintf(`%s DEBUG GET /v1/me?access_token=%s Authorization: Bearer %s`, ts, url.QueryEscape(tokens["access-token"]), tokens["jwt-auth"]))},
	)
	produce(t, topics, recs, 0, len(recs))

	r := newRun(t, "notoken", tr, topics, true)
	r.cfg.telemetry = freeAddr(t)
	refuser := newReceiver(t)
	refuser.status = func() int { return http.StatusBadRequest }
	r.cfg.extraSinks = []string{fmt.Sprintf("{name: refuser, type: webhook, url: %q, secrets: [%q]}", refuser.url(), refuser.secret)}
	r.cfg.extraSinkNames = []string{"refuser"}
	r.start(t)
	waitFor(t, "every record committed, every alert delivered or dead-lettered", 3*time.Minute, func() bool {
		if r.p.exited() {
			t.Fatalf("tokenwatch exited: %v\n%s", r.p.err, tail(r.logPath))
		}
		return caughtUp(t, r.cfg)
	}, func() string { return tail(r.logPath) })
	// /metrics is part of what tokenwatch writes.
	resp, err := http.Get("http://" + r.cfg.telemetry + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.p.stop(t, r.logPath)

	// Gather everything tokenwatch wrote.
	blobs := map[string][]byte{"/metrics": metricsText}
	err = filepath.Walk(r.cfg.stateDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || path == r.cfgPath {
			return err
		}
		b, err := os.ReadFile(path)
		blobs["file "+filepath.Base(path)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{r.cfg.outbox, r.cfg.dlq} {
		var all bytes.Buffer
		msgs := readTopic(t, topic)
		for _, m := range msgs {
			all.Write(m.Key)
			all.WriteByte('\n')
			for _, h := range m.Headers {
				all.WriteString(h.Key + "=" + string(h.Value) + "\n")
			}
			all.Write(m.Value)
			all.WriteByte('\n')
		}
		blobs["topic "+topic] = all.Bytes()
		if len(msgs) == 0 {
			t.Errorf("topic %s is empty: the search would prove nothing", topic)
		}
	}
	tables := clickhouseText(t, r.cfg.db)
	for name, text := range tables {
		blobs["clickhouse "+name] = text
	}
	for _, rc := range []*receiver{r.cfg.hook, refuser} {
		rc.mu.Lock()
		blobs["webhook requests "+rc.url()] = bytes.Join(rc.bodies, []byte("\n"))
		rc.mu.Unlock()
	}

	// The search would prove nothing if tokenwatch had seen nothing.
	for _, want := range []string{"file findings.jsonl", "clickhouse token_events", "clickhouse findings", "clickhouse alerts", "file tokenwatch.log"} {
		if len(blobs[want]) == 0 {
			t.Errorf("%s is empty", want)
		}
	}
	// Positive control: the same search finds every token in the source topics.
	var src bytes.Buffer
	for _, topic := range []string{auth, app} {
		for _, m := range readTopic(t, topic) {
			src.Write(m.Value)
			src.WriteByte('\n')
		}
	}
	for kind, tok := range tokens {
		if !bytes.Contains(src.Bytes(), []byte(tok)) && !bytes.Contains(src.Bytes(), []byte(url.QueryEscape(tok))) {
			t.Errorf("control: planted %s token not found in the source topics", kind)
		}
	}
	var sizes []string
	total := 0
	for name, b := range blobs {
		sizes = append(sizes, fmt.Sprintf("%s %d B", name, len(b)))
		total += len(b)
	}
	t.Logf("searched %d sources, %d bytes: %s", len(blobs), total, strings.Join(sizes, "; "))
	for kind, tok := range tokens {
		forms := map[string]string{"raw": tok, "query-escaped": url.QueryEscape(tok), "path-escaped": url.PathEscape(tok)}
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			forms["JWT payload"] = parts[1]
		}
		for form, s := range forms {
			for name, b := range blobs {
				if i := bytes.Index(b, []byte(s)); i >= 0 {
					t.Errorf("planted %s token (%s form) found in %s at byte %d", kind, form, name, i)
				}
			}
		}
	}
}

// clickhouseText returns every table of the run's database as text: SELECT *
// of each table in TabSeparated over the HTTP interface (every column, as the
// server renders it).
func clickhouseText(t *testing.T, db *chDB) map[string][]byte {
	t.Helper()
	host, _, err := net.SplitHostPort(db.addr)
	if err != nil {
		t.Fatal(err)
	}
	port := os.Getenv("CLICKHOUSE_HTTP_PORT")
	if port == "" {
		port = "18123"
	}
	query := func(q string) []byte {
		resp, err := http.Post("http://"+net.JoinHostPort(host, port)+"/", "text/plain", strings.NewReader(q))
		if err != nil {
			t.Fatalf("clickhouse HTTP: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("clickhouse HTTP %s: %d %s", q, resp.StatusCode, b)
		}
		return b
	}
	out := map[string][]byte{}
	names := strings.Fields(string(query("SELECT name FROM system.tables WHERE database = '" + db.name + "' FORMAT TabSeparated")))
	if len(names) < 5 {
		t.Fatalf("database %s has tables %v", db.name, names)
	}
	for _, name := range names {
		out[name] = query("SELECT * FROM " + db.name + "." + name + " FORMAT TabSeparatedWithNames")
	}
	return out
}
