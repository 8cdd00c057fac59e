package alerts

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// revokePlaceholder stands for the token in dry runs.
const revokePlaceholder = "[SEALED-TOKEN-NOT-OPENED]"

// revokeSink revokes the alert's token at the issuer's RFC 7009 endpoint.
type revokeSink struct {
	cfg    SinkConfig
	sealer *Sealer
}

func newRevokeSink(cfg SinkConfig, sealer *Sealer) (*revokeSink, error) {
	if sealer == nil {
		return nil, fmt.Errorf("sink %s: rfc7009 needs alerts.sealing_key", cfg.Name)
	}
	return &revokeSink{cfg: cfg, sealer: sealer}, nil
}

func (r *revokeSink) config() *SinkConfig { return &r.cfg }

func (r *revokeSink) accepts(env *Envelope) (bool, string) {
	if len(env.Sealed) == 0 {
		return false, "no sealed token in the envelope (revocation not configured when the token was seen, or not a revocable credential)"
	}
	if !revocableBy(&r.cfg, env.Alert.Kind, env.Alert.Issuer) {
		return false, fmt.Sprintf("a %s credential of issuer %q is not revoked by this sink (issuer, match_any_issuer, kinds)", env.Alert.Kind, env.Alert.Issuer)
	}
	return true, ""
}

// build returns the RFC 7009 section 2.1 request:
//
//	POST <endpoint>
//	Content-Type: application/x-www-form-urlencoded
//	Authorization: Basic base64(urlenc(client_id):urlenc(client_secret))   (client_secret_basic)
//
//	token=<token>&token_type_hint=<hint>[&client_id=…&client_secret=…]    (client_secret_post)
//
// The body holds the token in clear: outRequest.Secret makes the dispatcher wipe
// it after sending. In a dry run the token is never opened.
func (r *revokeSink) build(env *Envelope, _ string, _ time.Time, dry bool) (*outRequest, error) {
	var token []byte
	if dry {
		token = []byte(revokePlaceholder)
	} else {
		fp, err := tokenwatch.ParseFingerprint(env.Alert.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("alert %s: fingerprint: %w", env.Alert.ID, err)
		}
		token, err = r.sealer.Open(env.Sealed, fp)
		if err != nil {
			return nil, fmt.Errorf("alert %s: %w", env.Alert.ID, err)
		}
	}
	body := make([]byte, 0, 3*len(token)+128)
	body = append(body, "token="...)
	body = appendFormEscape(body, token)
	clear(token)
	if r.cfg.TokenTypeHint != "" {
		body = append(body, "&token_type_hint="...)
		body = appendFormEscape(body, []byte(r.cfg.TokenTypeHint))
	}
	h := make(http.Header, 4+len(r.cfg.Headers))
	for k, v := range r.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Accept", "application/json")
	switch r.cfg.AuthMethod {
	case "client_secret_post":
		body = append(body, "&client_id="...)
		body = appendFormEscape(body, []byte(r.cfg.ClientID))
		if r.cfg.ClientSecret != "" {
			body = append(body, "&client_secret="...)
			if dry {
				body = append(body, "[redacted]"...)
			} else {
				body = appendFormEscape(body, []byte(r.cfg.ClientSecret))
			}
		}
	default: // client_secret_basic, RFC 6749 section 2.3.1
		cred := appendFormEscape(nil, []byte(r.cfg.ClientID))
		cred = append(cred, ':')
		cred = appendFormEscape(cred, []byte(r.cfg.ClientSecret))
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(cred))
	}
	return &outRequest{Method: http.MethodPost, URL: r.cfg.URL, Header: h, Body: body, Secret: !dry}, nil
}

// classify: 200 (any 2xx) revoked; 503 and other 5xx/429 retry (Retry-After
// honoured); 400 unsupported_token_type, invalid_client and the like are dead
// letters carrying the OAuth error.
func (r *revokeSink) classify(status int, h http.Header, body []byte) result {
	res := classifyHTTP(status, h, body, time.Now())
	if res.Outcome != OutcomeDelivered {
		// Only the OAuth error fields are kept: a faulty endpoint could echo the
		// request, and the request held the token.
		res.Err = fmt.Sprintf("HTTP %d", status)
		if e := oauthError(body); e != "" {
			res.Err += ": " + e
		}
	}
	return res
}
