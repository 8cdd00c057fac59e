package detect

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvFingerprintKey is the environment variable that overrides every other source
// of the fingerprint key.
const EnvFingerprintKey = "TOKENWATCH_FINGERPRINT_KEY"

// MinKeyLen is the minimum fingerprint key length in bytes after decoding.
const MinKeyLen = 16

// DefaultMaxTokenLen is the longest credential value the scanner reports, in bytes
// of the line. Longer runs are skipped as blobs.
const DefaultMaxTokenLen = 16384

// Config is the "detect" section of the tokenwatch configuration file.
type Config struct {
	// FingerprintKey is the HMAC key of fingerprints, in the syntax of ParseKey
	// ("hex:…", "base64:…" or a raw string of at least 16 bytes). Usually given
	// as "${TOKENWATCH_FINGERPRINT_KEY}"; the environment variable itself
	// overrides it anyway. Empty: use KeyFile.
	FingerprintKey string `yaml:"fingerprint_key"`
	// KeyFile is where the generated key is kept when no key is configured.
	// Empty: $XDG_STATE_HOME/tokenwatch/fingerprint.key, or
	// ~/.local/state/tokenwatch/fingerprint.key when XDG_STATE_HOME is unset.
	KeyFile string `yaml:"key_file"`
	// MaxTokenLen is the longest credential reported, in bytes (default 16384;
	// 0 means the default).
	MaxTokenLen int `yaml:"max_token_len"`
}

// DefaultConfig returns the defaults: no configured key (environment, then the
// key file), default key file location, 16384-byte tokens.
func DefaultConfig() Config {
	return Config{MaxTokenLen: DefaultMaxTokenLen}
}

// Validate checks c; messages name the YAML field and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.MaxTokenLen != 0 && (c.MaxTokenLen < 64 || c.MaxTokenLen > 1<<20) {
		errs = append(errs, fmt.Errorf("detect.max_token_len: %d is out of range; set it between 64 and 1048576 (default %d)", c.MaxTokenLen, DefaultMaxTokenLen))
	}
	if c.FingerprintKey != "" {
		if _, err := ParseKey(c.FingerprintKey); err != nil {
			errs = append(errs, fmt.Errorf("detect.fingerprint_key: %w; use \"hex:<64 hex digits>\", \"base64:<…>\" or a random string of at least %d bytes, or leave it empty to use a generated key", err, MinKeyLen))
		}
	}
	if c.KeyFile != "" {
		if st, err := os.Stat(c.KeyFile); err == nil && !st.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("detect.key_file: %q is not a regular file; point it at a file (created if missing) or leave it empty for the default", c.KeyFile))
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("detect.key_file: %w; make the file readable or leave it empty for the default", err))
		}
	}
	return errors.Join(errs...)
}

// Options returns the scanner options c describes, given the resolved key.
func (c Config) Options(key []byte) []Option {
	opts := []Option{WithKey(key)}
	if c.MaxTokenLen > 0 {
		opts = append(opts, WithMaxTokenLen(c.MaxTokenLen))
	}
	return opts
}

// ParseKey decodes a fingerprint key given in configuration or in
// TOKENWATCH_FINGERPRINT_KEY:
//
//	hex:<hex digits>       hex-decoded (e.g. the output of `openssl rand -hex 32`)
//	base64:<std base64>    base64-decoded (standard alphabet, padded or not)
//	anything else          the raw bytes of the string
//
// The decoded key must be at least MinKeyLen bytes. The explicit prefix avoids
// guessing: a 64-character hex string without "hex:" is used as 64 raw bytes.
func ParseKey(s string) ([]byte, error) {
	var key []byte
	switch {
	case strings.HasPrefix(s, "hex:"):
		k, err := hex.DecodeString(strings.TrimSpace(s[4:]))
		if err != nil {
			return nil, errors.New("key after \"hex:\" is not valid hex")
		}
		key = k
	case strings.HasPrefix(s, "base64:"):
		v := strings.TrimRight(strings.TrimSpace(s[7:]), "=")
		k, err := base64.RawStdEncoding.DecodeString(v)
		if err != nil {
			return nil, errors.New("key after \"base64:\" is not valid base64")
		}
		key = k
	default:
		key = []byte(s)
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("key is %d bytes, shorter than the minimum %d", len(key), MinKeyLen)
	}
	return key, nil
}

// DefaultKeyFile returns the default location of the generated key:
// $XDG_STATE_HOME/tokenwatch/fingerprint.key, else
// $HOME/.local/state/tokenwatch/fingerprint.key.
func DefaultKeyFile(getenv func(string) string) (string, error) {
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "tokenwatch", "fingerprint.key"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate fingerprint key file: %w; set detect.key_file or TOKENWATCH_FINGERPRINT_KEY", err)
		}
		home = h
	}
	return filepath.Join(home, ".local", "state", "tokenwatch", "fingerprint.key"), nil
}

// LoadKey resolves the fingerprint key, in this order:
//
//  1. the environment variable TOKENWATCH_FINGERPRINT_KEY (syntax of ParseKey);
//  2. configured (detect.fingerprint_key, same syntax);
//  3. the key file stateFile (DefaultKeyFile when empty): 64 hex digits; if the
//     file does not exist it is created once with 32 random bytes, mode 0600,
//     its directory mode 0700.
//
// from says where the key came from: "env TOKENWATCH_FINGERPRINT_KEY",
// "config detect.fingerprint_key", "file <path>" or "generated <path>". getenv is
// os.Getenv in production. The key itself never appears in an error.
func LoadKey(configured string, stateFile string, getenv func(string) string) (key []byte, from string, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvFingerprintKey); v != "" {
		k, err := ParseKey(v)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvFingerprintKey, err)
		}
		return k, "env " + EnvFingerprintKey, nil
	}
	if configured != "" {
		k, err := ParseKey(configured)
		if err != nil {
			return nil, "", fmt.Errorf("detect.fingerprint_key: %w", err)
		}
		return k, "config detect.fingerprint_key", nil
	}
	if stateFile == "" {
		if stateFile, err = DefaultKeyFile(getenv); err != nil {
			return nil, "", err
		}
	}
	if k, err := readKeyFile(stateFile); err == nil {
		return k, "file " + stateFile, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	k, err := createKeyFile(stateFile)
	if err != nil {
		return nil, "", err
	}
	return k, "generated " + stateFile, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fingerprint key file %s: %w", path, err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < MinKeyLen {
		return nil, fmt.Errorf("fingerprint key file %s: want at least %d hex-encoded bytes; delete it to generate a new key (fingerprints will change)", path, MinKeyLen)
	}
	return k, nil
}

// createKeyFile writes a new random key with O_EXCL, so two processes starting at
// once agree on one key: the loser reads the winner's file.
func createKeyFile(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create fingerprint key directory: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate fingerprint key: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return waitKeyFile(path)
		}
		return nil, fmt.Errorf("create fingerprint key file %s: %w", path, err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("write fingerprint key file %s: %w", path, err)
	}
	// Link fails if path appeared meanwhile: then the existing key wins.
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("install fingerprint key file %s: %w", path, err)
	}
	os.Remove(tmp)
	return key, nil
}

// waitKeyFile handles a concurrent creator holding the temporary file: the key
// file appears once it finishes; a stale temporary file is reported.
func waitKeyFile(path string) ([]byte, error) {
	for range 50 {
		if k, err := readKeyFile(path); err == nil {
			return k, nil
		}
		sleepShort()
	}
	return nil, fmt.Errorf("fingerprint key file %s: %s.tmp exists but no key appeared; remove the stale .tmp file", path, path)
}
