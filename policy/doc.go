// Package policy finds tokens that are issued or used badly before anyone steals
// them: lifetimes longer than policy, scopes outside a client's allowed set or
// growing between tokens, tokens presented to services that are not their
// audience, ID tokens used as API credentials, sender-constrained tokens sent as
// plain bearer tokens, refresh tokens in logs or reused from several networks,
// services that hand out many tokens in their logs ("token dispensaries"), and
// workload tokens used off their networks.
//
// It owns the policy file (YAML, validated, hot-reloaded) and the small state
// these posture findings need. Its findings are tokenwatch.Alerts of the types
// below, with severity low or info by default, flowing through the same store
// tables, alert policy and sinks as incidents, routed by severity.
//
// Like the anomaly engine it decides on event time only, so replaying a day of
// logs gives the same findings, with the same deterministic ids, as live.
package policy

// Finding types (alert types) this package raises.
const (
	TypeLifetime           = "lifetime_policy_violation"
	TypeScope              = "scope_policy_violation"
	TypeScopeEscalation    = "scope_escalation"
	TypeAudienceMismatch   = "audience_mismatch"
	TypeIDTokenAsAccess    = "id_token_as_access_token"
	TypeBoundAsBearer      = "bound_token_as_bearer"
	TypeSenderConstraint   = "sender_constraint_missing"
	TypeRefreshInLog       = "refresh_token_in_transit_log"
	TypeRefreshReuse       = "refresh_token_reuse"
	TypeDispensary         = "token_dispensary"
	TypeWorkloadOffNetwork = "workload_token_off_network"
)

// Types lists every finding type, for docs, dashboards and tests.
var Types = []string{
	TypeLifetime, TypeScope, TypeScopeEscalation, TypeAudienceMismatch, TypeIDTokenAsAccess,
	TypeBoundAsBearer, TypeSenderConstraint, TypeRefreshInLog, TypeRefreshReuse, TypeDispensary, TypeWorkloadOffNetwork,
}
