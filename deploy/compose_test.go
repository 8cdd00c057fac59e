// Tests of the deployment files (docker-compose.yml, Dockerfile, deploy/):
// Docker cannot run here, so they check what can be checked without it —
// every file parses, every local path exists, and ports, hosts and
// credentials agree between docker-compose.yml, deploy/tokenwatch.yaml,
// deploy/prometheus.yml, the Grafana provisioning and the config docs.
package deploy_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/config"
	"github.com/tokenwatch/tokenwatch/telemetry"
)

type compose struct {
	Services map[string]struct {
		Image string
		Build *struct {
			Context    string
			Dockerfile string
		}
		Command     []string
		Environment map[string]string
		Ports       []string
		Volumes     []string
		DependsOn   yaml.Node `yaml:"depends_on"`
	}
	Volumes map[string]any
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadCompose(t *testing.T) compose {
	var c compose
	readYAML(t, "docker-compose.yml", &c)
	return c
}

// published returns the container port published for a host port ("9000:9000").
func published(ports []string) map[string]string {
	out := map[string]string{}
	for _, p := range ports {
		hp := strings.SplitN(p, ":", 2)
		if len(hp) == 2 {
			out[hp[1]] = hp[0]
		}
	}
	return out
}

func TestComposeServicesAndFiles(t *testing.T) {
	c := loadCompose(t)
	for _, s := range []string{"kafka", "clickhouse", "tokenwatch", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	images := map[string]*regexp.Regexp{
		"kafka":      regexp.MustCompile(`^apache/kafka:4\.[1-9]`),
		"clickhouse": regexp.MustCompile(`^clickhouse/clickhouse-server:(2[4-9]|[3-9]\d)\.`),
		"grafana":    regexp.MustCompile(`^grafana/grafana:`),
		"prometheus": regexp.MustCompile(`^prom/prometheus:`),
	}
	for s, re := range images {
		if !re.MatchString(c.Services[s].Image) {
			t.Errorf("service %s image %q, want %s", s, c.Services[s].Image, re)
		}
	}
	tw := c.Services["tokenwatch"]
	if tw.Build == nil {
		t.Fatal("tokenwatch is not built from the repository")
	}
	if _, err := os.Stat(filepath.Join("..", tw.Build.Context, tw.Build.Dockerfile)); err != nil {
		t.Errorf("tokenwatch build: %v", err)
	}
	// Every bind mount's source exists; every named volume is declared.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s uses undeclared volume %s", name, src)
			}
		}
	}
	if !strings.Contains(c.Services["grafana"].Environment["GF_INSTALL_PLUGINS"], "grafana-clickhouse-datasource") {
		t.Error("grafana does not install grafana-clickhouse-datasource")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"FROM golang:", "AS build", "CGO_ENABLED=0", "./cmd/tokenwatch", "FROM gcr.io/distroless/", "USER nonroot", "EXPOSE 9464", `ENTRYPOINT ["/usr/local/bin/tokenwatch"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The Go version of the build stage is the module's.
	gomod, _ := os.ReadFile("../go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil || !strings.Contains(s, "FROM golang:"+string(m[1])) {
		t.Errorf("Dockerfile build stage is not golang:%s (go.mod)", m[1])
	}
	ig, err := os.ReadFile("../.dockerignore")
	if err != nil || !strings.Contains(string(ig), ".cache") {
		t.Errorf(".dockerignore must exclude .cache (test servers): %v", err)
	}
}

// deployConfig loads deploy/tokenwatch.yaml as tokenwatch would in the container.
func deployConfig(t *testing.T) config.Config {
	b, err := os.ReadFile("tokenwatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, "deploy/tokenwatch.yaml", func(k string) string {
		return map[string]string{"CLICKHOUSE_PASSWORD": "secret"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("deploy/tokenwatch.yaml is invalid: %v", err)
	}
	return cfg
}

func TestTokenwatchConfigMatchesCompose(t *testing.T) {
	c := loadCompose(t)
	cfg := deployConfig(t)
	tw := c.Services["tokenwatch"]

	// The config file is mounted where the command reads it.
	cfgPath := tw.Command[len(tw.Command)-1]
	mounted := false
	for _, v := range tw.Volumes {
		if strings.HasPrefix(v, "./deploy/tokenwatch.yaml:"+cfgPath) {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("deploy/tokenwatch.yaml is not mounted at %s", cfgPath)
	}

	// ClickHouse: the service name and the native port, and the user/password
	// the server is created with.
	if len(cfg.ClickHouse.Addr) != 1 || cfg.ClickHouse.Addr[0] != "clickhouse:9000" {
		t.Errorf("clickhouse.addr = %v, want [clickhouse:9000]", cfg.ClickHouse.Addr)
	}
	ch := c.Services["clickhouse"]
	if ch.Environment["CLICKHOUSE_USER"] != cfg.ClickHouse.Username || ch.Environment["CLICKHOUSE_DB"] != cfg.ClickHouse.Database {
		t.Errorf("clickhouse user/db %q/%q, config %q/%q", ch.Environment["CLICKHOUSE_USER"], ch.Environment["CLICKHOUSE_DB"], cfg.ClickHouse.Username, cfg.ClickHouse.Database)
	}
	if ch.Environment["CLICKHOUSE_PASSWORD"] != tw.Environment["CLICKHOUSE_PASSWORD"] {
		t.Error("clickhouse and tokenwatch services get different CLICKHOUSE_PASSWORD")
	}
	if published(ch.Ports)["9000"] == "" || published(ch.Ports)["8123"] == "" {
		t.Errorf("clickhouse ports %v: publish 9000 (native) and 8123 (HTTP)", ch.Ports)
	}

	// Kafka: brokers are the advertised in-network listener.
	adv := c.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
	for _, b := range append(append([]string{}, cfg.Ingest.Kafka.Brokers...), cfg.Alerts.Outbox.Brokers...) {
		if !strings.Contains(adv, "://"+b) {
			t.Errorf("broker %s is not an advertised listener (%s)", b, adv)
		}
	}

	// Telemetry: listens on all interfaces on the port Prometheus scrapes and
	// compose publishes; the same port as the documented default.
	_, port, err := net.SplitHostPort(cfg.Telemetry.Listen)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(cfg.Telemetry.Listen)
	if host != "" && host != "0.0.0.0" {
		t.Errorf("telemetry.listen %q is not reachable from the prometheus container", cfg.Telemetry.Listen)
	}
	_, defPort, _ := net.SplitHostPort(telemetry.DefaultListen)
	if port != defPort || published(tw.Ports)[port] != port {
		t.Errorf("telemetry port %s: default %s, compose publishes %v", port, defPort, tw.Ports)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus.yml", &prom)
	found := false
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "tokenwatch" { // the rules select job="tokenwatch"
			continue
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				found = found || tg == "tokenwatch:"+port
			}
		}
	}
	if !found {
		t.Errorf("prometheus does not scrape job tokenwatch at tokenwatch:%s", port)
	}
	// The rule file Prometheus loads is the one compose mounts.
	mountedRules := map[string]bool{}
	for _, v := range c.Services["prometheus"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mountedRules[parts[1]] = true
		}
	}
	for _, r := range prom.RuleFiles {
		if !mountedRules[r] {
			t.Errorf("prometheus rule file %s is not mounted by docker-compose.yml", r)
		}
	}
}

func TestGrafanaProvisioningMatchesCompose(t *testing.T) {
	c := loadCompose(t)
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
			JSONData       map[string]any    `yaml:"jsonData"`
			Secure         map[string]string `yaml:"secureJsonData"`
		}
	}
	readYAML(t, "dashboards/grafana/provisioning/datasources/tokenwatch.yaml", &ds)
	cfg := deployConfig(t)
	g := c.Services["grafana"]
	for _, d := range ds.Datasources {
		switch d.Type {
		case "grafana-clickhouse-datasource":
			addr := net.JoinHostPort(d.JSONData["host"].(string), strings.TrimSpace(yamlString(d.JSONData["port"])))
			if addr != cfg.ClickHouse.Addr[0] || d.JSONData["protocol"] != "native" {
				t.Errorf("grafana ClickHouse datasource %s (%v), tokenwatch writes to %s", addr, d.JSONData["protocol"], cfg.ClickHouse.Addr[0])
			}
			if d.JSONData["username"] != cfg.ClickHouse.Username || d.JSONData["defaultDatabase"] != cfg.ClickHouse.Database {
				t.Errorf("grafana ClickHouse user/db %v/%v", d.JSONData["username"], d.JSONData["defaultDatabase"])
			}
			env := strings.Trim(strings.TrimPrefix(d.Secure["password"], "$"), "{}")
			if g.Environment[env] == "" {
				t.Errorf("grafana datasource password ${%s} is not set in the grafana service", env)
			}
		case "prometheus":
			if d.URL != "http://prometheus:"+published(c.Services["prometheus"].Ports)["9090"] {
				t.Errorf("grafana Prometheus url %s", d.URL)
			}
		}
	}
	// The dashboard provider's path is where compose mounts the JSON.
	var prov struct {
		Providers []struct{ Options struct{ Path string } }
	}
	readYAML(t, "dashboards/grafana/provisioning/dashboards/tokenwatch.yaml", &prov)
	ok := false
	for _, v := range g.Volumes {
		ok = ok || v == "./dashboards/grafana/dashboards:"+prov.Providers[0].Options.Path+":ro"
	}
	if !ok {
		t.Errorf("grafana does not mount the dashboards at %s", prov.Providers[0].Options.Path)
	}
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

// TestDocsPorts checks docs/dashboards.md names the ports compose publishes.
func TestDocsPorts(t *testing.T) {
	b, err := os.ReadFile("../docs/dashboards.md")
	if err != nil {
		t.Fatal(err)
	}
	c := loadCompose(t)
	for name, s := range c.Services {
		for host := range invert(published(s.Ports)) {
			if !strings.Contains(string(b), ":"+host) {
				t.Errorf("docs/dashboards.md does not mention port %s of service %s", host, name)
			}
		}
	}
}

func invert(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[v] = k
	}
	return out
}
