package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/tokenwatch/tokenwatch/enrich/geotest"
)

// lateBy is how long after their event time the out-of-order lines arrive.
const lateBy = 40 * time.Second

func (g *gen) write(dir string) error {
	g.truth.Lines = map[string]int{}
	type keyed struct {
		arrive time.Time
		e      event
	}
	var nginx, envoy []keyed
	for _, e := range g.auth {
		if e.via == "envoy" {
			envoy = append(envoy, keyed{e.t, e})
		} else {
			nginx = append(nginx, keyed{e.t, e})
		}
	}
	for _, e := range g.lateNginx {
		nginx = append(nginx, keyed{e.t.Add(lateBy), e})
	}
	for _, s := range [][]keyed{nginx, envoy} {
		sort.SliceStable(s, func(i, j int) bool { return s[i].arrive.Before(s[j].arrive) })
	}
	sort.SliceStable(g.app, func(i, j int) bool { return g.app[i].t.Before(g.app[j].t) })
	sort.SliceStable(g.revs, func(i, j int) bool { return g.revs[i].t.Before(g.revs[j].t) })

	err := writeLines(dir, FileNginx, g.truth.Lines, len(nginx), func(w *bufio.Writer, i int) { nginxLine(w, nginx[i].e) })
	if err == nil {
		err = writeLines(dir, FileEnvoy, g.truth.Lines, len(envoy), func(w *bufio.Writer, i int) { envoyLine(w, envoy[i].e) })
	}
	if err == nil {
		err = writeLines(dir, FileApp, g.truth.Lines, len(g.app), func(w *bufio.Writer, i int) { w.WriteString(g.app[i].text) })
	}
	if err == nil {
		err = writeLines(dir, FileRevocations, g.truth.Lines, len(g.revs), func(w *bufio.Writer, i int) {
			fmt.Fprintf(w, `{"jti":%q,"iss":%q,"time":%q,"reason":"user logout"}`, g.revs[i].jti, Issuer, g.revs[i].t.Format(time.RFC3339))
		})
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, FilePolicy), []byte(PolicyYAML), 0o644)
	}
	if err == nil {
		err = geotest.WriteCity(filepath.Join(dir, FileCityDB), geotest.GeoLite2, geotest.World)
	}
	if err == nil {
		err = geotest.WriteASN(filepath.Join(dir, FileASNDB), geotest.GeoLite2, geotest.World)
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(g.truth, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileTruth), append(b, '\n'), 0o644)
}

func writeLines(dir, name string, counts map[string]int, n int, line func(*bufio.Writer, int)) error {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		line(w, i)
		w.WriteByte('\n')
	}
	counts[name] = n
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// nginxLine writes an nginx `log_format ... escape=json` access log line, the
// Authorization header included (as API gateways configured for auditing do).
func nginxLine(w *bufio.Writer, e event) {
	remote, xff := e.ip, "-"
	if e.proxy != "" {
		remote, xff = e.proxy, e.ip
	}
	auth := "-"
	switch e.scheme {
	case "":
		auth = "Bearer " + e.token
	case "-":
	default:
		auth = e.scheme + " " + e.token
	}
	fmt.Fprintf(w, `{"time_iso8601":"%s","remote_addr":"%s","http_x_forwarded_for":"%s","request_method":"%s","request_uri":"%s%s","server_protocol":"HTTP/1.1","status":"%d","body_bytes_sent":"%d","request_time":"0.0%02d","http_user_agent":%s,"http_authorization":"%s","host":"api.example.com","service":"%s"}`,
		e.t.Format("2006-01-02T15:04:05-07:00"), remote, xff, e.method, e.path, e.query, e.status, 200+len(e.path)*13, len(e.ua)%90, strconv.Quote(e.ua), auth, e.service)
}

// envoyLine writes an Envoy JSON access log line with the Authorization header
// added through %REQ(AUTHORIZATION)%.
func envoyLine(w *bufio.Writer, e event) {
	remote := e.ip
	if len(remote) > 0 && remote[0] != '[' && containsColon(remote) {
		remote = "[" + remote + "]"
	}
	fmt.Fprintf(w, `{"start_time":"%s","method":"%s","path":"%s","protocol":"HTTP/2","response_code":%d,"response_flags":"-","bytes_received":0,"bytes_sent":%d,"duration":%d,"x_forwarded_for":null,"user_agent":%s,"request_id":"%08x-77aa-4b1c-9e2f-%012x","authority":"edge.example.com","upstream_host":"10.1.4.%d:8080","upstream_cluster":"%s","downstream_remote_address":"%s:%d","authorization":"Bearer %s"}`,
		e.t.Format("2006-01-02T15:04:05.000Z"), e.method, e.path, e.status, 100+len(e.path)*7, 3+len(e.ua)%40, strconv.Quote(e.ua), e.t.Unix()&0xffffffff, e.t.UnixNano()&0xffffffffffff, 1+len(e.path)%200, e.service, remote, 40000+e.t.Second()*100, e.token)
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}
