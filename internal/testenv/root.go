package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// repoRoot returns the directory holding go.mod, found by walking up from the
// working directory (a test binary runs in its package's folder).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// scriptMu serialises the server scripts: two tests restarting one server at
// once would race on its pid file.
var scriptMu sync.Mutex

// runScript runs scripts/NAME with args from the repo root and returns its
// combined output. env entries are added to the environment.
func runScript(ctx context.Context, env []string, name string, args ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	scriptMu.Lock()
	defer scriptMu.Unlock()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "scripts", name)}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("scripts/%s %v: %w", name, args, err)
	}
	return out.String(), nil
}

// skipUnless returns the value of the environment variable key, or skips tb.
func skipUnless(tb testing.TB, key, what string) string {
	tb.Helper()
	v := os.Getenv(key)
	if v == "" {
		tb.Skipf("%s not set: no test %s (run `make test` or `make servers-up`)", key, what)
	}
	return v
}
