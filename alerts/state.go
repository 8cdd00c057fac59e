package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// stateStore persists the endpoints disabled by HTTP 410, keyed by a hash of the
// sink's whole configuration: changing anything in the sink's config (URL,
// secret, template, …) gives a new hash and so re-enables it.
type stateStore struct {
	path string

	mu       sync.Mutex
	Disabled map[string]disabledEndpoint `json:"disabled"`
}

type disabledEndpoint struct {
	Sink   string    `json:"sink"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

func openState(path string) (*stateStore, error) {
	s := &stateStore{path: path, Disabled: map[string]disabledEndpoint{}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read alerts state file %s: %w", path, err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("alerts state file %s is not valid JSON (%v); fix or delete it", path, err)
	}
	if s.Disabled == nil {
		s.Disabled = map[string]disabledEndpoint{}
	}
	return s, nil
}

func (s *stateStore) disabled(hash string) (disabledEndpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.Disabled[hash]
	return d, ok
}

func (s *stateStore) disable(hash string, d disabledEndpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Disabled[hash] = d
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode alerts state: %w", err)
	}
	return writeFileAtomic(s.path, b)
}

// writeFileAtomic writes b to path via a fsynced temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// sinkHash identifies a sink's configuration.
func sinkHash(c *SinkConfig) string {
	b, err := json.Marshal(c)
	if err != nil {
		panic("BUG: sink config does not marshal: " + err.Error())
	}
	return hashStrings("sink-config-v1", string(b))[:32]
}
