// Package scenario generates deterministic, realistic traffic with planted token
// incidents and benign look-alikes, and scores tokenwatch's alerts against it.
//
// Generate writes, for one seed:
//
//	auth-nginx.log     nginx JSON access logs of an API gateway (Authorization logged)
//	auth-envoy.log     Envoy JSON access logs of an edge proxy
//	app.log            application logs of several services (a few leak credentials)
//	revocations.jsonl  revocation events (jti, iss, time)
//	city.mmdb asn.mmdb MaxMind-format databases matching every address used
//	truth.json         what was planted: incidents that must alert, benign traps
//	                   that must not, each with the token's fingerprint
//
// Evaluate compares alerts (the DESIGN.md alert JSON) with truth.json and reports
// detection rate, false alerts and detection delay. Times are event times from a
// fixed origin, so the same seed gives the same files byte for byte.
package scenario
