package parse

import "strings"

// field identifies a value the key-based parsers (JSON, logfmt) collect.
type field uint8

const (
	fNone field = iota
	fTime
	fIP        // direct peer address
	fClient    // an address already resolved by the logging system (Okta, Caddy client_ip)
	fXFF       // X-Forwarded-For list
	fForwarded // RFC 7239 Forwarded header
	fUA
	fUser
	fMethod
	fPath
	fRequest // request line "GET /p HTTP/1.1"
	fStatus
	fService
	fHost
	fDPoP
	fMessage    // embedded text message, parsed when the record lacks request fields
	fOutcome    // Okta outcome.result
	fAuth0Type  // Auth0 event type code
	fRespStatus // a status nested in a response object (Auth0 details.response.statusCode)
	// Revocation events only (revocationKeys).
	fJTI
	fIssuer
	fToken
	fFingerprint
	fReason
	numFields
)

// marker bits note keys that identify a JSON dialect.
type marker uint16

const (
	mkECS marker = 1 << iota
	mkTimestampAt
	mkEnvoy
	mkOktaPublished
	mkOktaEvent
	mkAuth0Log
	mkAuth0Date
	mkAuth0Type
	mkNginx
	mkCaddy
)

// keyInfo is what a JSON path or logfmt key means.
type keyInfo struct {
	field  field
	prio   uint8 // lower wins; 1 is reserved for configured mappings
	marker marker
}

// builtinKeys lists, per field and in priority order, the keys that carry it in
// the supported dialects. JSON paths are dotted and lower-case; they also match
// logfmt keys and flattened JSON keys ("source.ip": ...).
var builtinKeys = []struct {
	field field
	keys  []string
	base  uint8 // priority of the first key; 0 means 2
}{
	{fTime, []string{
		"@timestamp", "timestamp", "time", "ts", "start_time", "published", "date",
		"time_iso8601", "time_local", "datetime", "eventtime", "event_time", "event.created",
		"logged_at", "msec", "data.date", "t",
	}, 0},
	{fIP, []string{
		"downstream_direct_remote_address", "downstream_remote_address",
		"remote_addr", "source.ip", "source.address", "client.ip", "client.address",
		"client_ip", "clientip", "remote_ip", "remoteip", "request.remote_ip", "request.remote_addr",
		"request.remoteaddr", "request.remoteaddress", "req.remoteaddress", "req.ip", "remote", "ip", "ip_address", "ipaddress", "c-ip", "src_ip", "srcip",
		"peer.address", "peer_ip", "network.client.ip", "data.ip", "realip_remote_addr", "request.ipchain.ip",
	}, 0},
	{fClient, []string{"client.ipaddress", "request.client_ip"}, 0},
	{fXFF, []string{
		"x_forwarded_for", "http_x_forwarded_for", "x-forwarded-for", "xff", "forwarded_for",
		"network.forwarded_ip", "http.request.headers.x-forwarded-for",
	}, 0},
	{fForwarded, []string{"forwarded", "http_forwarded"}, 0},
	{fUA, []string{
		"user_agent.original", "user_agent", "http_user_agent", "useragent", "user-agent", "ua",
		"client.useragent.rawuseragent", "http.user_agent", "agent", "data.user_agent",
	}, 0},
	{fUser, []string{
		"user.name", "user", "username", "user_name", "remote_user", "actor.alternateid",
		"user.id", "user_id", "userid", "principal", "subject", "sub", "uid", "request.user_id",
		"data.user_name", "data.user_id", "cs-username",
	}, 0},
	{fMethod, []string{
		"http.request.method", "method", "request_method", "http_method", "http.method",
		"verb", "request.method", "req.method", "details.request.method", "data.details.request.method", "cs-method",
	}, 0},
	{fPath, []string{
		"url.path", "path", "uri", "request_uri", "url.original", "request.uri", "request.path", "request.url",
		"req.url", "req.path", "request_path",
		"http.url", "url", "http.target", "debugcontext.debugdata.requesturi",
		"details.request.path", "data.details.request.path", "cs-uri-stem",
	}, 0},
	{fRequest, []string{"request", "request_line", "http.request.line"}, 0},
	{fStatus, []string{
		"http.response.status_code", "status", "status_code", "statuscode", "response_code",
		"http_status", "http.status_code", "response.status", "response.status_code", "response.statuscode",
		"res.statuscode", "res.status", "sc-status",
	}, 0},
	{fRespStatus, []string{"details.response.statuscode", "data.details.response.statuscode"}, 0},
	{fService, []string{
		"service.name", "service", "service_name", "upstream_cluster", "app", "app_name",
		"application", "component", "program", "syslog.appname", "s-sitename",
	}, 0},
	{fHost, []string{
		"url.domain", "authority", ":authority", "http_host", "host", "request.host", "server_name",
		"vhost", "http.host", "cs-host",
	}, 0},
	// Machine names rank below a logged Host request header (prio 200).
	{fHost, []string{"hostname", "data.hostname", "host.name"}, 210},
	{fDPoP, []string{"dpop", "http_dpop", "dpop_proof", "request_dpop", "req_dpop", "x_dpop", "cs(dpop)"}, 0},
	{fMessage, []string{"message", "msg", "log", "event.original"}, 0},
	{fOutcome, []string{"outcome.result"}, 0},
	{fAuth0Type, []string{"type", "data.type"}, 0},
}

// markerKeys identify dialects; a key may be a marker and a field key at once.
var markerKeys = []struct {
	key    string
	marker marker
}{
	{"ecs.version", mkECS}, {"source.ip", mkECS}, {"user_agent.original", mkECS},
	{"http.request.method", mkECS}, {"http.response.status_code", mkECS}, {"url.original", mkECS},
	{"url.path", mkECS}, {"event.dataset", mkECS}, {"log.level", mkECS},
	{"@timestamp", mkTimestampAt},
	{"downstream_remote_address", mkEnvoy}, {"downstream_direct_remote_address", mkEnvoy},
	{"upstream_cluster", mkEnvoy}, {"response_flags", mkEnvoy}, {"upstream_host", mkEnvoy},
	{"x_envoy_upstream_service_time", mkEnvoy}, {"response_code_details", mkEnvoy},
	{"published", mkOktaPublished}, {"eventtype", mkOktaEvent},
	{"log_id", mkAuth0Log}, {"data.log_id", mkAuth0Log},
	{"date", mkAuth0Date}, {"data.date", mkAuth0Date}, {"type", mkAuth0Type}, {"data.type", mkAuth0Type},
	{"remote_addr", mkNginx}, {"time_local", mkNginx}, {"time_iso8601", mkNginx}, {"request_uri", mkNginx},
	{"http_user_agent", mkNginx}, {"body_bytes_sent", mkNginx}, {"request_time", mkNginx},
	{"upstream_response_time", mkNginx}, {"http_x_forwarded_for", mkNginx},
	{"request.remote_ip", mkCaddy}, {"request.client_ip", mkCaddy}, {"resp_headers", mkCaddy},
}

// headerFields maps request header names (lower case, '_' written as '-') to
// fields, for headers logged as an object.
var headerFields = map[string]field{
	"user-agent":      fUA,
	"x-forwarded-for": fXFF,
	"forwarded":       fForwarded,
	"dpop":            fDPoP,
	"host":            fHost,
	":authority":      fHost,
}

// headerObjectNames are the keys of objects holding request headers.
var headerObjectNames = map[string]bool{
	"headers": true, "request_headers": true, "req_headers": true, "requestheaders": true,
	"http_request_headers": true, "request.headers": true,
}

// maxKeyPath is the longest key path the JSON walker looks up; longer paths
// cannot match any key and are not tracked.
const maxKeyPath = 256

// buildKeys returns the key table with the configured mappings applied.
func buildKeys(m FieldMap) map[string]keyInfo {
	keys := make(map[string]keyInfo, 256)
	for _, fk := range builtinKeys {
		base := fk.base
		if base == 0 {
			base = 2
		}
		for i, k := range fk.keys {
			if _, dup := keys[k]; dup {
				panic("BUG: parse key listed twice: " + k)
			}
			keys[k] = keyInfo{field: fk.field, prio: base + uint8(i)}
		}
	}
	for _, mk := range markerKeys {
		ki := keys[mk.key]
		ki.marker |= mk.marker
		keys[mk.key] = ki
	}
	for _, e := range m.entries() {
		if e.path == "" {
			continue
		}
		k := strings.ToLower(e.path)
		ki := keys[k]
		ki.field, ki.prio = e.field, 1
		keys[k] = ki
	}
	return keys
}
