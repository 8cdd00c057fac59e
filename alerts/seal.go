package alerts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/tokenwatch/tokenwatch"
)

// sealVersion prefixes every sealed value so the format can change.
const sealVersion = 1

// ErrSealed is returned when a sealed value cannot be opened (wrong key, wrong
// fingerprint, or tampered bytes). It never carries any of the value.
var ErrSealed = errors.New("sealed token does not open: wrong key, wrong fingerprint or tampered")

// Sealer seals token values with AES-256-GCM for RFC 7009 revocation.
//
// Sealed format: 1 version byte (1), 12-byte random nonce, ciphertext and 16-byte
// tag. The associated data is the token's 16-byte fingerprint, so a sealed value
// moved onto another alert does not open. A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("sealing key: %d bytes, AES-256 needs 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// NewSealerFromConfig returns the Sealer for c's sealing key (environment first).
func NewSealerFromConfig(c Config, getenv func(string) string) (*Sealer, error) {
	k, err := c.sealingKey(getenv)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return NewSealer(k)
}

// Seal returns the sealed form of token bound to fp. token is not retained.
func (s *Sealer) Seal(token []byte, fp tokenwatch.Fingerprint) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(token)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return s.aead.Seal(out, out[1:1+ns], token, fp[:])
}

// Open returns the token sealed in sealed for fp. The caller owns the result and
// must clear it as soon as it has been used.
func (s *Sealer) Open(sealed []byte, fp tokenwatch.Fingerprint) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrSealed
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], fp[:])
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}
