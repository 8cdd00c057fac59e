package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Limits of the JWT decoder: a header or claims set larger than these is refused
// (giant headers are an attack on parsers, never a real token).
const (
	MaxJWTHeaderLen = 4096  // decoded header bytes
	MaxJWTClaimsLen = 65536 // decoded claims bytes
)

// Errors of DecodeJWT. They never contain any part of the token.
var (
	ErrJWTFormat = errors.New("jwt: not a compact JWS (3 parts) or JWE (5 parts)")
	ErrJWTBase64 = errors.New("jwt: a part is not base64url")
	ErrJWTHeader = errors.New("jwt: header is not a JSON object with \"alg\"")
	ErrJWTClaims = errors.New("jwt: claims are not a JSON object")
	ErrJWTSize   = errors.New("jwt: header or claims exceed the size limit")
)

var b64val = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := 0; i < len(std); i++ {
		t[std[i]] = int8(i)
	}
	t['-'], t['+'] = 62, 62
	t['_'], t['/'] = 63, 63
	return t
}()

// b64Decode appends the decoding of src to dst. It accepts the URL and the
// standard alphabets, padded or not (JWTs are unpadded base64url; broken issuers
// pad or use the standard alphabet). ok is false on any other byte, on bad
// padding, or on an impossible length.
func b64Decode(dst, src []byte) ([]byte, bool) {
	n := len(src)
	for pad := 0; n > 0 && src[n-1] == '=' && pad < 2; pad++ {
		n--
	}
	if n != len(src) && len(src)%4 != 0 {
		return dst, false
	}
	src = src[:n]
	if n%4 == 1 {
		return dst, false
	}
	for len(src) >= 4 {
		a, b, c, d := b64val[src[0]], b64val[src[1]], b64val[src[2]], b64val[src[3]]
		if a|b|c|d < 0 {
			return dst, false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst = append(dst, byte(v>>16), byte(v>>8), byte(v))
		src = src[4:]
	}
	switch len(src) {
	case 2:
		a, b := b64val[src[0]], b64val[src[1]]
		if a|b < 0 {
			return dst, false
		}
		dst = append(dst, byte(uint32(a)<<2|uint32(b)>>4))
	case 3:
		a, b, c := b64val[src[0]], b64val[src[1]], b64val[src[2]]
		if a|b|c < 0 {
			return dst, false
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6
		dst = append(dst, byte(v>>16), byte(v>>8))
	}
	return dst, true
}

// DecodeJWT decodes the header and claims of a compact JWS (3 parts) or JWE
// (5 parts) without verifying anything. token is the plain compact form (no URL
// or JSON escaping). For a JWE only the header is readable; the claims are
// encrypted. For a JWS whose payload is not a JSON object, only the header is
// returned. now sets the Expired flag (exp < now).
func DecodeJWT(token []byte, now time.Time) (*tokenwatch.JWTInfo, error) {
	return decodeJWT(token, now, nil)
}

// decodeJWT is DecodeJWT decoding into buf (scratch from the scanner) so a
// finding costs no decode buffers; nothing returned points into buf.
func decodeJWT(token []byte, now time.Time, buf *[]byte) (*tokenwatch.JWTInfo, error) {
	var scratch []byte
	if buf != nil {
		scratch = (*buf)[:0]
		defer func() { *buf = scratch[:0] }()
	}
	parts := bytes.Count(token, []byte{'.'}) + 1
	if parts != 3 && parts != 5 {
		return nil, ErrJWTFormat
	}
	hEnd := bytes.IndexByte(token, '.')
	rest := token[hEnd+1:]
	pEnd := bytes.IndexByte(rest, '.')
	hdrB64, payB64 := token[:hEnd], rest[:pEnd]
	if len(hdrB64) == 0 || len(hdrB64) > MaxJWTHeaderLen*4/3+4 {
		if len(hdrB64) == 0 {
			return nil, ErrJWTFormat
		}
		return nil, ErrJWTSize
	}
	hdr, ok := b64Decode(scratch[:0], hdrB64)
	scratch = hdr
	if !ok {
		return nil, ErrJWTBase64
	}
	info := &tokenwatch.JWTInfo{}
	algSeen := false
	if !jsonFields(hdr, func(k, v []byte) {
		switch string(k) {
		case "alg":
			info.Alg, algSeen = jsonString(v), true
		case "kid":
			info.Kid = jsonString(v)
		case "typ":
			info.Typ = jsonString(v)
		case "enc":
			info.Enc = jsonString(v)
		}
	}) || !algSeen || info.Alg == "" {
		return nil, ErrJWTHeader
	}
	info.AlgNone = strings.EqualFold(info.Alg, "none")
	if parts == 5 {
		if info.Enc == "" {
			return nil, ErrJWTHeader
		}
		return info, nil
	}
	if len(payB64) > MaxJWTClaimsLen*4/3+4 {
		return nil, ErrJWTSize
	}
	pay, ok := b64Decode(scratch[:0], payB64)
	scratch = pay
	if !ok {
		return nil, ErrJWTBase64
	}
	p := bytes.TrimSpace(pay)
	if len(p) == 0 || p[0] != '{' {
		return info, nil // a JWS with a non-JSON payload: header only
	}
	var azp string
	var scope, scp []string
	if !jsonFields(p, func(k, v []byte) {
		switch string(k) {
		case "iss":
			info.Iss = jsonString(v)
		case "sub":
			info.Sub = jsonString(v)
		case "aud":
			info.Aud = jsonStrings(v, false)
		case "exp":
			info.Exp = jsonTime(v)
		case "iat":
			info.Iat = jsonTime(v)
		case "nbf":
			info.Nbf = jsonTime(v)
		case "jti":
			info.Jti = jsonString(v)
		case "client_id":
			info.ClientID = jsonString(v)
		case "azp":
			azp = jsonString(v)
		case "scope":
			scope = jsonStrings(v, true)
		case "scp":
			scp = jsonStrings(v, true)
		case "nonce":
			info.HasNonce = string(v) != "null"
		case "at_hash":
			info.HasAtHash = string(v) != "null"
		case "cnf":
			jsonFields(v, func(k, v []byte) {
				switch string(k) {
				case "jkt":
					info.CnfJKT = jsonString(v)
				case "x5t#S256":
					info.CnfX5T = jsonString(v)
				}
			})
		}
	}) {
		return nil, ErrJWTClaims
	}
	if info.ClientID == "" {
		info.ClientID = azp
	}
	info.Scope = scope
	if info.Scope == nil {
		info.Scope = scp
	}
	if info.Exp != 0 && !now.IsZero() && info.Exp < now.Unix() {
		info.Expired = true
	}
	if info.Exp != 0 && info.Iat != 0 && info.Exp > info.Iat {
		info.LifetimeSeconds = info.Exp - info.Iat
	}
	return info, nil
}

// maxClaimString bounds every string copied out of a token into a finding.
const maxClaimString = 512

func clip(s string) string {
	if len(s) > maxClaimString {
		return s[:maxClaimString]
	}
	return s
}

// jsonString returns the value of a raw JSON string ("" for anything else).
func jsonString(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return clip(string(raw[1 : len(raw)-1]))
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return clip(s)
}

// jsonStrings reads a string or an array of strings; with split, a string is
// split on spaces (OAuth scope).
func jsonStrings(raw []byte, split bool) []string {
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '"':
		s := jsonString(raw)
		if s == "" {
			return nil
		}
		if split {
			f := strings.Fields(s)
			if len(f) > 64 {
				f = f[:64]
			}
			return f
		}
		return []string{s}
	case '[':
		var out []string
		jsonArrayEach(raw, func(r []byte) {
			if s := jsonString(r); s != "" && len(out) < 64 {
				out = append(out, s)
			}
		})
		return out
	}
	return nil
}

// jsonTime reads a NumericDate: an integer, a float (truncated) or a string
// holding either. Out-of-range values give 0 (unknown).
func jsonTime(raw []byte) int64 {
	if len(raw) == 0 {
		return 0
	}
	s := string(raw)
	if raw[0] == '"' {
		s = jsonString(raw)
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f > 1<<53 || f < -(1<<53) {
		return 0
	}
	return int64(f)
}
