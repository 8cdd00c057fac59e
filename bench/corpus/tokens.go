package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
)

// Credential makers. Every value is fake (random bytes from the seeded generator)
// but has the exact shape a real one has, including valid checksums where the
// issuer defines one, so a scanner that validates checksums must accept them.

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base62Alp = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	upperNum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b64url    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b64std    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	hexLower  = "0123456789abcdef"
)

func randString(r *rand.Rand, alphabet string, n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// base62Checksum encodes the CRC32 (IEEE) of payload as 6 base62 digits
// ("0-9A-Za-z", most significant first, left-padded with '0'). This is the
// checksum GitHub (ghp_, gho_, ghu_, ghs_, ghr_) and npm (npm_) append to the
// 30 random characters of their tokens: crc32 over the ASCII of the random part,
// prefix excluded.
func base62Checksum(payload string) string {
	n := crc32.ChecksumIEEE([]byte(payload))
	var out [6]byte
	for i := 5; i >= 0; i-- {
		out[i] = base62Alp[n%62]
		n /= 62
	}
	return string(out[:])
}

// githubToken returns prefix + 30 random base62 characters + their checksum.
func githubToken(r *rand.Rand, prefix string) string {
	body := randString(r, alnum, 30)
	return prefix + body + base62Checksum(body)
}

// githubTokenBadChecksum looks exactly like githubToken but its checksum is wrong.
func githubTokenBadChecksum(r *rand.Rand, prefix string) string {
	body := randString(r, alnum, 30)
	good := base62Checksum(body)
	for {
		bad := randString(r, base62Alp, 6)
		if bad != good {
			return prefix + body + bad
		}
	}
}

// githubFineGrained returns a fine-grained PAT: github_pat_ + 22 + "_" + 59.
func githubFineGrained(r *rand.Rand) string {
	return "github_pat_11" + randString(r, upperNum[:26]+"0123456789", 20) + "_" + randString(r, alnum, 59)
}

func npmToken(r *rand.Rand) string { return githubToken(r, "npm_") }

func gitlabToken(r *rand.Rand) string {
	return "glpat-" + randString(r, alnum+"-_", 20)
}

func slackToken(r *rand.Rand) string {
	p := []string{"xoxb-", "xoxp-", "xoxa-2-", "xoxs-"}[r.IntN(4)]
	if p == "xoxb-" {
		return p + randString(r, "0123456789", 12) + "-" + randString(r, "0123456789", 13) + "-" + randString(r, alnum, 24)
	}
	return p + randString(r, "0123456789", 12) + "-" + randString(r, "0123456789", 12) + "-" + randString(r, "0123456789", 13) + "-" + randString(r, hexLower, 32)
}

func googleToken(r *rand.Rand) string {
	return "ya29." + randString(r, alnum+"-_", 150+r.IntN(60))
}

func stripeToken(r *rand.Rand) string {
	p := []string{"sk_live_", "rk_live_"}[r.IntN(2)]
	return p + randString(r, alnum, 24+r.IntN(76))
}

func awsKeyID(r *rand.Rand) string {
	p := []string{"AKIA", "ASIA"}[r.IntN(2)]
	return p + randString(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
}

func awsSecret(r *rand.Rand) string { return randString(r, b64std[:62]+"/+", 40) }

// opaqueToken is a random access/refresh token as IdPs issue them: 32–86
// characters of base64url, sometimes with dots or tildes (RFC 6750 b64token).
func opaqueToken(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0: // Okta / Auth0 style
		return randString(r, alnum, 40+r.IntN(24))
	case 1: // Keycloak-ish refresh token ids, Azure style with dots
		return randString(r, b64url, 24) + "." + randString(r, b64url, 32)
	case 2: // hex
		return randString(r, hexLower, 40+8*r.IntN(4))
	case 3: // RFC 6750 b64token chars
		return randString(r, alnum, 20) + "~" + randString(r, alnum+"-._", 22)
	default:
		return randString(r, b64url, 43)
	}
}

// basicCredential returns base64("user:password").
func basicCredential(r *rand.Rand) string {
	users := []string{"admin", "svc-deploy", "jenkins", "api", "alice@example.com", "backup"}
	pw := randString(r, alnum+"!#%", 10+r.IntN(14))
	return base64.StdEncoding.EncodeToString([]byte(users[r.IntN(len(users))] + ":" + pw))
}

// cliUser and cliPassword make the values of curl -u / wget --password
// (a password starts with a letter or digit: a leading $, %, # or * reads as
// a placeholder).
func cliUser(r *rand.Rand) string {
	users := []string{"admin", "svc-deploy", "jenkins", "api", "alice@example.com", "backup", "ci-bot"}
	return users[r.IntN(len(users))]
}

func cliPassword(r *rand.Rand) string {
	return randString(r, alnum, 1) + randString(r, alnum+"!@_-", 9+r.IntN(14))
}

// urlPassword makes a password of a URL's userinfo: no byte a URL must
// percent-encode (those are made by the url-userinfo template itself).
func urlPassword(r *rand.Rand) string {
	return randString(r, alnum, 1) + randString(r, alnum+"!_-~.", 9+r.IntN(14))
}

func uuid(r *rand.Rand) string {
	b := randBytes(r, 16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// jwtOpts choose a JWT's shape.
type jwtOpts struct {
	alg    string // RS256, HS256, ES256, none, PS512
	padded bool   // base64url with '=' padding (some libraries emit it)
	spaced bool   // header JSON with a space after '{' (does not start with eyJ)
}

var issuers = []string{
	"https://login.example.com/",
	"https://accounts.google.com",
	"https://sts.windows.net/8f1a2b3c-0d4e-4f50-9a61-72b8c9d0e1f2/",
	"https://dev-41892.okta.com/oauth2/default",
	"https://auth.acme-corp.io/realms/prod",
	"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12Cd34E",
}

var scopes = []string{"openid profile email", "read:orders write:orders", "api://default/.default", "offline_access", "repo user"}

func b64seg(b []byte, padded bool) string {
	if padded {
		return base64.URLEncoding.EncodeToString(b)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwt builds a JWS compact serialization with realistic header and claims.
// now is the corpus' fixed reference time (unix seconds).
func jwt(r *rand.Rand, now int64, o jwtOpts) string {
	kid := randString(r, b64url, 22)
	var hdr string
	switch {
	case o.spaced:
		hdr = fmt.Sprintf(`{ "alg": "%s", "typ": "JWT" }`, o.alg)
	case o.alg == "none":
		hdr = `{"alg":"none","typ":"JWT"}`
	case r.IntN(3) == 0:
		hdr = fmt.Sprintf(`{"alg":"%s","typ":"JWT"}`, o.alg)
	default:
		hdr = fmt.Sprintf(`{"alg":"%s","kid":"%s","typ":"JWT"}`, o.alg, kid)
	}
	iat := now - int64(r.IntN(86400*30))
	life := []int64{300, 900, 3600, 86400}[r.IntN(4)]
	claims := fmt.Sprintf(`{"iss":"%s","sub":"%s","aud":"%s","exp":%d,"iat":%d,"jti":"%s","client_id":"%s","scope":"%s"}`,
		issuers[r.IntN(len(issuers))], uuid(r), []string{"api", "account", "https://api.example.com"}[r.IntN(3)],
		iat+life, iat, uuid(r), randString(r, alnum, 20), scopes[r.IntN(len(scopes))])
	var sig []byte
	switch o.alg {
	case "none":
	case "HS256":
		sig = randBytes(r, 32)
	case "ES256":
		sig = randBytes(r, 64)
	case "PS512", "RS256":
		sig = randBytes(r, 256)
	default:
		sig = randBytes(r, 256)
	}
	return b64seg([]byte(hdr), o.padded) + "." + b64seg([]byte(claims), o.padded) + "." + b64seg(sig, o.padded)
}

// jwe builds a JWE compact serialization (5 parts).
func jwe(r *rand.Rand) string {
	hdr := []string{
		`{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"` + randString(r, b64url, 16) + `"}`,
		`{"alg":"dir","enc":"A128CBC-HS256"}`,
		`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"` + randString(r, b64url, 43) + `","y":"` + randString(r, b64url, 43) + `"}}`,
	}[r.IntN(3)]
	ek := ""
	if !strings.Contains(hdr, `"dir"`) {
		ek = b64seg(randBytes(r, 256), false)
		if strings.Contains(hdr, "ECDH") {
			ek = b64seg(randBytes(r, 40), false)
		}
	}
	return b64seg([]byte(hdr), false) + "." + ek + "." + b64seg(randBytes(r, 12), false) + "." +
		b64seg(randBytes(r, 80+r.IntN(400)), false) + "." + b64seg(randBytes(r, 16), false)
}
