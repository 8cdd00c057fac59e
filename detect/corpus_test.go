package detect

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
)

// The benchmark corpus: realistic, clean-heavy mixed log lines (nginx/Apache
// combined, Envoy, JSON app logs, logfmt, Java and Python stack traces, k8s CRI
// lines, curl/CI output) with hard negatives (UUIDs, hex digests, base64 blobs,
// the words token/code/secret/bearer in prose) and, at a given rate, a line that
// carries a credential. Deterministic for a seed.

type corpusGen struct {
	r *rand.Rand
}

func newCorpusGen(seed uint64) *corpusGen {
	return &corpusGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *corpusGen) hex(n int) string {
	b := make([]byte, (n+1)/2)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return hex.EncodeToString(b)[:n]
}

func (g *corpusGen) uuid() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

func (g *corpusGen) b64(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (g *corpusGen) alnum(n int) string {
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = a[g.r.IntN(len(a))]
	}
	return string(b)
}

func (g *corpusGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *corpusGen) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 10+g.r.IntN(200), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *corpusGen) ts() string {
	return fmt.Sprintf("2026-11-25T%02d:%02d:%02d.%03dZ", g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.r.IntN(1000))
}

var (
	paths  = []string{"/api/v1/users/%d/orders", "/healthz", "/static/js/app.%s.js", "/api/v2/search?q=shoes&page=%d", "/checkout/cart/%d", "/metrics", "/login", "/oauth2/userinfo", "/api/v1/products/%d/reviews?sort=desc&limit=20"}
	agents = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"curl/8.4.0", "okhttp/4.12.0", "kube-probe/1.28", "Go-http-client/1.1", "python-requests/2.31.0",
	}
	javaFrames = []string{"com.example.payments.service.PaymentService.process(PaymentService.java:%d)", "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:%d)", "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:%d)", "io.netty.channel.AbstractChannelHandlerContext.invokeChannelRead(AbstractChannelHandlerContext.java:%d)", "com.example.auth.TokenValidator.validate(TokenValidator.java:%d)"}
)

func (g *corpusGen) path() string {
	p := g.pick(paths...)
	if bytes.Contains([]byte(p), []byte("%s")) {
		return fmt.Sprintf(p, g.hex(8))
	}
	if bytes.Contains([]byte(p), []byte("%d")) {
		return fmt.Sprintf(p, g.r.IntN(100000))
	}
	return p
}

// cleanLine returns one credential-free line.
func (g *corpusGen) cleanLine() string {
	switch g.r.IntN(12) {
	case 0, 1:
		return fmt.Sprintf(`%s - - [25/Nov/2026:08:%02d:%02d +0000] "%s %s HTTP/1.1" %d %d "https://shop.example.com/" "%s"`,
			g.ip(), g.r.IntN(60), g.r.IntN(60), g.pick("GET", "POST", "PUT"), g.path(), 200+g.r.IntN(4)*100, g.r.IntN(90000), g.pick(agents...))
	case 2:
		return fmt.Sprintf(`[%s] "%s %s HTTP/2" %d - 0 %d %d %d "%s" "%s" "%s" "backend.default.svc:8080" "%s:8080"`,
			g.ts(), g.pick("GET", "POST"), g.path(), 200, g.r.IntN(9000), g.r.IntN(300), g.r.IntN(300), g.ip(), g.pick(agents...), g.uuid(), g.ip())
	case 3, 4:
		return fmt.Sprintf(`{"ts":"%s","level":"%s","service":"%s","trace_id":"%s","span_id":"%s","msg":"%s","order_id":"%s","amount":%d.%02d,"currency":"EUR","duration_ms":%d}`,
			g.ts(), g.pick("info", "info", "debug", "warn"), g.pick("checkout", "cart", "catalog", "auth-gateway"), g.hex(32), g.hex(16),
			g.pick("order placed", "cache miss", "request completed", "token validated for subject", "payment authorized", "retrying upstream call"), g.uuid(), g.r.IntN(500), g.r.IntN(100), g.r.IntN(2000))
	case 5:
		return fmt.Sprintf("\tat "+g.pick(javaFrames...), 20+g.r.IntN(900))
	case 6:
		return fmt.Sprintf(`%s stdout F I1125 08:14:05.%06d       1 controller.go:%d] "Reconciling" pod="default/web-%s-%s" generation=%d resourceVersion="%d"`,
			g.ts(), g.r.IntN(1000000), g.r.IntN(900), g.hex(9), g.hex(5), g.r.IntN(40), g.r.IntN(9999999))
	case 7:
		return fmt.Sprintf(`time=%s level=info msg="%s" user=%s request_id=%s status_code=%d latency=%dms`,
			g.ts(), g.pick("token refreshed", "session started", "exit code 0", "secret rotated by operator", "bearer auth enabled", "code review passed"), g.pick("alice", "bob", "svc-batch"), g.uuid(), 200+g.r.IntN(3), g.r.IntN(900))
	case 8:
		return fmt.Sprintf(`Traceback (most recent call last): File "/srv/app/handlers/%s.py", line %d, in handle: raise ValueError("invalid checksum %s")`, g.pick("orders", "users", "auth"), g.r.IntN(500), g.hex(40))
	case 9:
		return fmt.Sprintf(`%s INFO  [main] c.e.cache.BlobStore - stored object sha256=%s size=%d etag="%s" payload=%s`, g.ts(), g.hex(64), g.r.IntN(1<<20), g.hex(32), g.b64(30+g.r.IntN(30)))
	case 10:
		return fmt.Sprintf(`#%d 12.34 Step %d/%d : RUN go build -o /out/app ./cmd/app && echo "build %s done"`, g.r.IntN(99), g.r.IntN(20), 20, g.hex(12))
	default:
		return fmt.Sprintf(`%s app[%d]: GET %s from %s took %dms (cache=%s, user_agent="%s")`, g.ts(), g.r.IntN(9999), g.path(), g.ip(), g.r.IntN(900), g.pick("hit", "miss"), g.pick(agents...))
	}
}

func (g *corpusGen) jwt() string {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"RS256","kid":"%s","typ":"JWT"}`, g.hex(8))))
	pay := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"iss":"https://idp.example.com","sub":"%s","aud":"api","exp":%d,"iat":%d,"scope":"read write","jti":"%s"}`, g.uuid(), 1790000000+g.r.IntN(1000), 1789990000, g.hex(16))))
	return hdr + "." + pay + "." + g.b64url(256)
}

func (g *corpusGen) b64url(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// credLine returns a line carrying one credential.
func (g *corpusGen) credLine() string {
	switch g.r.IntN(6) {
	case 0:
		return fmt.Sprintf(`%s - - [25/Nov/2026:08:14:05 +0000] "GET /api/v1/me?access_token=%s HTTP/1.1" 200 512 "-" "%s"`, g.ip(), g.jwt(), g.pick(agents...))
	case 1:
		return fmt.Sprintf(`{"ts":"%s","level":"debug","msg":"outgoing request","headers":{"Authorization":"Bearer %s","Accept":"application/json"}}`, g.ts(), g.jwt())
	case 2:
		return fmt.Sprintf(`curl -s -H "Authorization: Bearer %s" https://api.example.com/v1/orders`, g.alnum(40))
	case 3:
		return fmt.Sprintf(`time=%s level=warn msg="token exchange" refresh_token=%s client_id=web`, g.ts(), g.alnum(48))
	case 4:
		return fmt.Sprintf(`%s stdout F Cookie: _ga=GA1.2.%d; session=%s; theme=dark`, g.ts(), g.r.IntN(1<<30), g.b64url(32))
	default:
		return fmt.Sprintf(`{"event":"login","id_token":"%s","user":"alice"}`, g.jwt())
	}
}

// corpus returns n lines with one credential line every credEvery lines
// (0: none).
func corpus(seed uint64, n, credEvery int) [][]byte {
	g := newCorpusGen(seed)
	lines := make([][]byte, n)
	for i := range lines {
		if credEvery > 0 && i%credEvery == credEvery/2 {
			lines[i] = []byte(g.credLine())
		} else {
			lines[i] = []byte(g.cleanLine())
		}
	}
	return lines
}
