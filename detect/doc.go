// Package detect is the credential scanner of tokenwatch: it finds bearer
// credentials (JWTs, Authorization header values, OAuth parameters, cookies and
// well-known prefixed API tokens) in raw log bytes, decodes the non-secret parts
// of JWTs, and names every credential by its keyed fingerprint and a redacted
// preview.
//
// How a line is scanned: one pass of a multi-pattern anchor matcher over the raw
// bytes (see prefilter.go) yields candidate offsets ("eyJ", "bearer", "token",
// "ghp_", …); hand-written validators then confirm or reject each candidate in
// place. Nothing is lower-cased or copied for a clean line and a clean line
// allocates nothing. Encoded credentials (URL-encoded, JSON-escaped) are decoded
// into a per-scan scratch buffer so the fingerprint of a token is the same
// wherever it appears.
//
// What the package must not do: it never logs, returns in an error, or stores
// a credential in clear. A Finding locates the credential by byte offsets into
// the caller's line and identifies it by Fingerprint and Redacted only. It does
// no I/O except LoadKey, which reads and creates the fingerprint key file.
//
// The anomaly engine (detect/anomaly) is a separate package.
package detect
