package alerts

import (
	"context"
	"slices"

	"github.com/tokenwatch/tokenwatch"
)

// DefaultRevocableKinds are the credential kinds an rfc7009 sink revokes unless
// its kinds key says otherwise: OAuth access and refresh tokens.
var DefaultRevocableKinds = []string{"jwt", "bearer", "oauth_access_token", "oauth_refresh_token"}

// SealStage runs right after the scanner: for every finding that an rfc7009 sink
// could revoke (its kind is one of the sink's kinds, and its JWT issuer is the
// sink's issuer, or the sink matches any issuer) it seals the token value from
// Record.Raw into Finding.Sealed. From there the value travels only sealed: the
// parser copies it to the token use, the anomaly engine to the alert, the outbox
// into the envelope when the alert is routed to a revocation sink.
//
// Records without findings cost nothing; only revocable findings allocate.
type SealStage struct {
	sealer *Sealer
	sinks  []SinkConfig
}

// NewSealStage returns the seal stage for cfg, or nil when cfg has no rfc7009
// sink (nothing needs a token value).
func NewSealStage(cfg Config, sealer *Sealer) *SealStage {
	var sinks []SinkConfig
	for _, s := range cfg.Sinks {
		if s.Type == SinkRFC7009 {
			sinks = append(sinks, sinkDefaults(s))
		}
	}
	if len(sinks) == 0 {
		return nil
	}
	if sealer == nil {
		panic("BUG: alerts.NewSealStage with rfc7009 sinks and no sealer")
	}
	return &SealStage{sealer: sealer, sinks: sinks}
}

// Process implements tokenwatch.Stage.
func (s *SealStage) Process(_ context.Context, b *tokenwatch.Batch) error {
	for i := range b.Records {
		r := &b.Records[i]
		for j := range r.Findings {
			f := &r.Findings[j]
			if f.Sealed != nil || f.Start < 0 || f.End > len(r.Raw) || f.Start >= f.End || !s.revocable(f) {
				continue
			}
			f.Sealed = s.sealer.Seal(r.Raw[f.Start:f.End], f.Fingerprint)
		}
	}
	return nil
}

func (s *SealStage) revocable(f *tokenwatch.Finding) bool {
	for i := range s.sinks {
		if revocableBy(&s.sinks[i], f.Kind, jwtIssuer(f.JWT)) {
			return true
		}
	}
	return false
}

func jwtIssuer(j *tokenwatch.JWTInfo) string {
	if j == nil {
		return ""
	}
	return j.Iss
}

// revocableBy reports whether the rfc7009 sink c revokes a credential of this
// kind and issuer.
func revocableBy(c *SinkConfig, kind, issuer string) bool {
	if !slices.Contains(c.Kinds, kind) {
		return false
	}
	return c.MatchAnyIssuer || (issuer != "" && issuer == c.Issuer)
}
