package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/tokenwatch/tokenwatch/telemetry"
)

// A component registers a readiness check; /readyz reports it.
func ExampleServer_AddCheck() {
	s := telemetry.New(telemetry.DefaultConfig(), nil)
	s.AddCheck("clickhouse", func(context.Context) error { return errors.New("dial tcp 127.0.0.1:9000: connection refused") })
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body, _ := io.ReadAll(rec.Body)
	fmt.Print(rec.Code, " ", string(body))
	// Output: 503 clickhouse: dial tcp 127.0.0.1:9000: connection refused
}
