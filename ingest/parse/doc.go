// Package parse owns log-record parsing for tokenwatch: it detects the format of
// each record on its own (JSON with its nginx, ECS, Envoy, Okta, Auth0 and Caddy
// dialects; nginx/Apache combined and common; IIS W3C; Envoy text; logfmt; syslog
// RFC 5424/3164 and CRI envelopes; plain text) and extracts the fields later
// stages need into tokenwatch.Fields: event time, client IP after trusted-proxy
// X-Forwarded-For handling, user agent, user, method, path without query string,
// status, service, host, and whether request headers (and a DPoP proof) were
// logged. As a Stage it turns records with findings into TokenUses and revocation
// records into Revocations. docs/formats.md documents detection order and fields.
//
// Parsing runs only for records that carry findings, so it may allocate, but it is
// linear in the record size, never recursive without bound, and never fails or
// panics on hostile input: malformed records are flagged, counted and searched as
// plain text.
//
// The package must not log, count or label anything by record content: records
// hold credentials in clear. Field values that contain a found credential carry its
// redacted form instead, and revocation tokens are fingerprinted and forgotten.
package parse
