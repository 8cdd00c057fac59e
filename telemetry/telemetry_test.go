package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerEndpoints(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.CheckTimeout = 50 * time.Millisecond
	s := New(cfg, nil)
	SetBuildInfo("test")
	kafkaErr := errors.New("no broker reachable")
	var kafkaDown atomic.Bool
	kafkaDown.Store(true)
	s.AddCheck("clickhouse", func(context.Context) error { return nil })
	s.AddCheck("kafka", func(context.Context) error {
		if kafkaDown.Load() {
			return kafkaErr
		}
		return nil
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "kafka: no broker reachable") || !strings.Contains(body, "clickhouse: ok") {
		t.Errorf("/readyz with kafka down = %d %q", code, body)
	}
	kafkaDown.Store(false)
	if code, body := get(t, base+"/readyz"); code != 200 || body != "clickhouse: ok\nkafka: ok\n" {
		t.Errorf("/readyz all up = %d %q", code, body)
	}
	code, body = get(t, base+"/metrics")
	for _, want := range []string{`tokenwatch_telemetry_check_up{check="kafka"} 1`, `tokenwatch_telemetry_build_info{goversion=`, "go_goroutines"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q (status %d)", want, code)
		}
	}
}

func TestReadyzTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CheckTimeout = 20 * time.Millisecond
	s := New(cfg, nil)
	block := make(chan struct{})
	defer close(block)
	s.AddCheck("stuck", func(context.Context) error { <-block; return nil }) // ignores its context
	res := s.Ready(context.Background())
	if len(res) != 1 || res[0].err == nil || !errors.Is(res[0].err, context.DeadlineExceeded) {
		t.Fatalf("stuck check result = %+v, want a timeout", res)
	}
}

func TestRunShutsDownOnCancel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	addr := s.Addr()
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still answers after Run returned")
	}
}

func TestDuplicateCheckPanics(t *testing.T) {
	s := New(DefaultConfig(), nil)
	s.AddCheck("x", func(context.Context) error { return nil })
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG:") {
			t.Fatalf("recover() = %v, want a BUG panic", r)
		}
	}()
	s.AddCheck("x", func(context.Context) error { return nil })
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mut  func(*Config)
		want string
	}{
		"default":        {func(*Config) {}, ""},
		"disabled":       {func(c *Config) { c.Listen = "" }, ""},
		"all interfaces": {func(c *Config) { c.Listen = ":9464" }, ""},
		"no port":        {func(c *Config) { c.Listen = "localhost" }, "telemetry.listen"},
		"zero timeout":   {func(c *Config) { c.CheckTimeout = 0 }, "telemetry.check_timeout"},
		"zero shutdown":  {func(c *Config) { c.ShutdownTimeout = 0 }, "telemetry.shutdown_timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
