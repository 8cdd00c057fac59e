package scenario

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
)

var b64 = base64.RawURLEncoding

// claims of a generated JWT.
type claims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id,omitempty"`
	Azp      string `json:"azp,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	AtHash   string `json:"at_hash,omitempty"`
	Cnf      *cnf   `json:"cnf,omitempty"`
}

// cnf is the RFC 7800 confirmation claim (RFC 9449 DPoP key thumbprint).
type cnf struct {
	JKT string `json:"jkt"`
}

// makeJWT returns a compact JWS with a random (unverifiable) signature of the
// length alg would give; alg "none" gives an empty signature.
func makeJWT(r *rand.Rand, alg string, c claims) string {
	hdr := map[string]string{"alg": alg, "typ": "JWT"}
	if alg != "none" {
		hdr["kid"] = "k" + itoa(int64(r.IntN(4)+1))
	}
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(c)
	tok := b64.EncodeToString(h) + "." + b64.EncodeToString(p) + "."
	sigLen := map[string]int{"RS256": 256, "ES256": 64, "HS256": 32}[alg]
	if sigLen > 0 {
		sig := make([]byte, sigLen)
		for i := range sig {
			sig[i] = byte(r.UintN(256))
		}
		tok += b64.EncodeToString(sig)
	}
	return tok
}

// opaque returns an opaque access token of n URL-safe characters.
func opaque(r *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// Fingerprint computes the DESIGN.md fingerprint: lowercase hex of the first 16
// bytes of HMAC-SHA256(key, token). The generator computes it independently of
// package detect so the scoring checks the product against the contract.
func Fingerprint(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
