// Package telemetry serves tokenwatch's operational endpoints: /metrics
// (Prometheus, default registry), /healthz (the process is alive) and /readyz
// (every readiness check registered by a component passes: Kafka connected,
// ClickHouse reachable, …).
//
// It owns the HTTP server and the readiness registry only. It must not define
// other packages' metrics (each package registers its own on the default
// registerer) and must never expose a token, an IP or a user: check errors
// are shown as their components write them, and components write none of those.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the `telemetry:` section of the configuration.
type Config struct {
	// Listen is the host:port of the HTTP server; "" disables it. Bind to a
	// non-loopback address (":9464") to let a Prometheus on another host scrape.
	Listen string `yaml:"listen"`
	// CheckTimeout bounds each readiness check of a /readyz request.
	CheckTimeout time.Duration `yaml:"check_timeout"`
	// ShutdownTimeout bounds the graceful shutdown of the server.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultListen is the default address (9464: the port Prometheus' registry
// of exporter ports lists for OpenTelemetry-style exporters; free on most hosts).
const DefaultListen = "127.0.0.1:9464"

// DefaultConfig returns the defaults documented in docs/metrics.md.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, CheckTimeout: 2 * time.Second, ShutdownTimeout: 5 * time.Second}
}

// Validate reports the first invalid setting, naming its YAML path and the fix.
func (c Config) Validate() error {
	if c.Listen != "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil || port == "" {
			return fmt.Errorf("telemetry.listen: %q is not host:port; use e.g. %q, \":9464\" for all interfaces, or \"\" to disable", c.Listen, DefaultListen)
		}
		_ = host
	}
	if c.CheckTimeout <= 0 {
		return fmt.Errorf("telemetry.check_timeout: %v; use a positive duration such as 2s", c.CheckTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("telemetry.shutdown_timeout: %v; use a positive duration such as 5s", c.ShutdownTimeout)
	}
	return nil
}

// Check is a readiness check: nil when the component is ready.
type Check func(ctx context.Context) error

var (
	checkUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenwatch_telemetry_check_up",
		Help: "Result of the last readiness check, by check name (1 ok, 0 failing).",
	}, []string{"check"})
	buildInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokenwatch_telemetry_build_info",
		Help: "Always 1; labels carry the tokenwatch version and the Go version.",
	}, []string{"version", "goversion"})
)

// SetBuildInfo publishes tokenwatch_telemetry_build_info for version.
func SetBuildInfo(version string) { buildInfo.WithLabelValues(version, runtime.Version()).Set(1) }

// Server is the telemetry HTTP server. Checks may be added before or after
// Start; the zero value is not usable, use New.
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	checks map[string]Check

	srv *http.Server
	ln  net.Listener
}

// New returns a server for cfg (which must be valid). log may be nil.
func New(cfg Config, log *slog.Logger) *Server {
	if err := cfg.Validate(); err != nil {
		panic("BUG: telemetry.New with invalid config: " + err.Error())
	}
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, log: log.With("component", "telemetry"), checks: map[string]Check{}}
}

// AddCheck registers a readiness check under name ("kafka", "clickhouse").
// Registering a name twice is a bug.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.checks[name]; dup {
		panic("BUG: telemetry readiness check registered twice: " + name)
	}
	s.checks[name] = c
}

// Handler returns the endpoints' handler (for tests and for embedding).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.DefaultGatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}

type result struct {
	name string
	err  error
}

// Ready runs every check concurrently, each bounded by check_timeout, and
// returns the results sorted by name.
func (s *Server) Ready(ctx context.Context) []result {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make([]Check, len(names))
	sort.Strings(names)
	for i, n := range names {
		checks[i] = s.checks[n]
	}
	s.mu.Unlock()
	res := make([]result, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
			defer cancel()
			err := runCheck(cctx, checks[i])
			res[i] = result{names[i], err}
			v := 1.0
			if err != nil {
				v = 0
			}
			checkUp.WithLabelValues(names[i]).Set(v)
		}()
	}
	wg.Wait()
	return res
}

// runCheck runs c, turning a check that ignores its context into a timeout.
func runCheck(ctx context.Context, c Check) error {
	done := make(chan error, 1)
	go func() { done <- c(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("check timed out: %w", ctx.Err())
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	res := s.Ready(r.Context())
	var sb strings.Builder
	ok := true
	for _, x := range res {
		if x.err != nil {
			ok = false
			fmt.Fprintf(&sb, "%s: %s\n", x.name, oneLine(x.err.Error()))
		} else {
			fmt.Fprintf(&sb, "%s: ok\n", x.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if len(res) == 0 {
		sb.WriteString("ok (no checks registered)\n")
	}
	_, _ = w.Write([]byte(sb.String()))
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// Start listens on cfg.Listen and serves in the background. With an empty
// Listen it does nothing.
func (s *Server) Start() error {
	if s.cfg.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("telemetry listen %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.ln, s.srv = ln, srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("telemetry server stopped", "err", err)
		}
	}()
	s.log.Info("telemetry listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on ("" before Start or when disabled).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server gracefully, waiting at most shutdown_timeout for
// in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}

// Run starts the server and shuts it down when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Shutdown(context.WithoutCancel(ctx))
}
