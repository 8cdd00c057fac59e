package alerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Event type URIs (OpenID CAEP 1.0 and RISC 1.0).
const (
	EventSessionRevoked       = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventCredentialChange     = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	EventCredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
)

var ssfEventURI = map[string]string{
	"session-revoked":       EventSessionRevoked,
	"credential-change":     EventCredentialChange,
	"credential-compromise": EventCredentialCompromise,
}

// ssfSink pushes RFC 8417 Security Event Tokens per RFC 8935.
type ssfSink struct {
	cfg    SinkConfig
	signer jose.Signer
}

func loadSigningKey(cfg SinkConfig) (crypto.Signer, error) {
	data := []byte(cfg.KeyPEM)
	if cfg.KeyFile != "" {
		var err error
		data, err = os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %v; point it to a PEM private key (ES256: P-256, RS256: RSA 2048+)", err)
		}
	}
	if len(data) == 0 {
		return nil, errors.New("key_file and key_pem are empty; set one to the PEM private key that signs the SETs")
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("key_file/key_pem: no PEM block found; use a PEM private key")
	}
	var key any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("key_file/key_pem: parse %s: %v", blk.Type, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if cfg.Alg != "ES256" || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key_file/key_pem: an EC key needs alg ES256 and curve P-256 (alg is %s)", cfg.Alg)
		}
		return k, nil
	case *rsa.PrivateKey:
		if cfg.Alg != "RS256" || k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("key_file/key_pem: an RSA key needs alg RS256 and at least 2048 bits (alg is %s)", cfg.Alg)
		}
		return k, nil
	}
	return nil, fmt.Errorf("key_file/key_pem: %T is not an EC P-256 or RSA key", key)
}

func newSSFSink(cfg SinkConfig) (*ssfSink, error) {
	key, err := loadSigningKey(cfg)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	opts := (&jose.SignerOptions{}).WithType("secevent+jwt")
	sg, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(cfg.Alg),
		Key:       jose.JSONWebKey{Key: key, KeyID: cfg.Kid, Algorithm: cfg.Alg},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("sink %s: SET signer: %w", cfg.Name, err)
	}
	return &ssfSink{cfg: cfg, signer: sg}, nil
}

func (s *ssfSink) config() *SinkConfig { return &s.cfg }

// accepts every alert: without issuer, subject or jti the subject falls back
// to an opaque identifier holding the fingerprint.
func (s *ssfSink) accepts(*Envelope) (bool, string) { return true, "" }

// subject builds the RFC 9493 subject identifier in the configured format,
// falling back when the alert lacks the members: iss_sub needs issuer and
// subject, jwt_id needs issuer and jti; the last resort is an opaque identifier
// holding the token fingerprint.
func (s *ssfSink) subject(env *Envelope) map[string]any {
	a := &env.Alert
	issSub := func() map[string]any {
		if a.Issuer != "" && a.Subject != "" {
			return map[string]any{"format": "iss_sub", "iss": a.Issuer, "sub": a.Subject}
		}
		return nil
	}
	jwtID := func() map[string]any {
		if a.Issuer != "" && a.JTI != "" {
			return map[string]any{"format": "jwt_id", "iss": a.Issuer, "jti": a.JTI}
		}
		return nil
	}
	opaque := map[string]any{"format": "opaque", "id": a.Fingerprint}
	switch s.cfg.SubjectFormat {
	case "complex":
		c := map[string]any{"format": "complex"}
		if u := issSub(); u != nil {
			c["user"] = u
		}
		if sess := jwtID(); sess != nil {
			c["session"] = sess
		} else {
			c["session"] = opaque
		}
		if a.ClientID != "" {
			c["application"] = map[string]any{"format": "opaque", "id": a.ClientID}
		}
		return c
	case "jwt_id":
		if j := jwtID(); j != nil {
			return j
		}
		if u := issSub(); u != nil {
			return u
		}
	default:
		if u := issSub(); u != nil {
			return u
		}
		if j := jwtID(); j != nil {
			return j
		}
	}
	return opaque
}

// SETClaims returns the claims of the SET for env: iss, aud, iat, jti (the
// delivery id, stable across retries), txn (the alert id), sub_id (SSF 1.0) and
// one event per configured type, each also carrying the subject member the CAEP
// and RISC event definitions name.
func (s *ssfSink) SETClaims(env *Envelope, id string, now time.Time) map[string]any {
	a := &env.Alert
	sub := s.subject(env)
	events := map[string]any{}
	for _, e := range s.cfg.Events {
		ev := map[string]any{
			"subject":         sub,
			"event_timestamp": a.EventTime.Unix(),
		}
		switch e {
		case "session-revoked":
			ev["initiating_entity"] = "policy"
			ev["reason_admin"] = map[string]string{"en": a.Summary}
		case "credential-change":
			ev["credential_type"] = s.cfg.CredentialType
			ev["change_type"] = "revoke"
			ev["initiating_entity"] = "policy"
			ev["reason_admin"] = map[string]string{"en": a.Summary}
		case "credential-compromise":
			ev["credential_type"] = s.cfg.CredentialType
			ev["reason_admin"] = map[string]string{"en": a.Summary}
		}
		events[ssfEventURI[e]] = ev
	}
	var aud any = s.cfg.Audience
	if len(s.cfg.Audience) == 1 {
		aud = s.cfg.Audience[0]
	}
	return map[string]any{
		"iss":    s.cfg.SETIssuer,
		"aud":    aud,
		"iat":    now.Unix(),
		"jti":    id,
		"txn":    a.ID,
		"sub_id": sub,
		"events": events,
	}
}

func (s *ssfSink) build(env *Envelope, id string, now time.Time, _ bool) (*outRequest, error) {
	payload, err := json.Marshal(s.SETClaims(env, id, now))
	if err != nil {
		return nil, fmt.Errorf("encode SET: %w", err)
	}
	obj, err := s.signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("sign SET: %w", err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("serialize SET: %w", err)
	}
	h := make(http.Header, 3+len(s.cfg.Headers))
	for k, v := range s.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/secevent+jwt")
	h.Set("Accept", "application/json")
	return &outRequest{Method: http.MethodPost, URL: s.cfg.URL, Header: h, Body: []byte(compact)}, nil
}

// classify per RFC 8935: 202 accepted; 400 with {"err","description"} is a dead
// letter carrying that error; 5xx/429 retry.
func (s *ssfSink) classify(status int, h http.Header, body []byte) result {
	res := classifyHTTP(status, h, body, time.Now())
	if res.Outcome != OutcomeDelivered {
		if e := oauthError(body); e != "" {
			res.Err = fmt.Sprintf("HTTP %d: %s", status, e)
		}
	}
	return res
}
