package detect

// Kinds reported in Finding.Kind. A JWT is reported as KindJWT / KindJWE whatever
// context carried it (Authorization header, access_token parameter, cookie); the
// context is in Finding.Scheme and Finding.Param.
const (
	KindJWT                = "jwt"
	KindJWE                = "jwe"
	KindBearer             = "bearer"
	KindBasic              = "basic"
	KindOAuthAccessToken   = "oauth_access_token"
	KindOAuthRefreshToken  = "oauth_refresh_token"
	KindOAuthIDToken       = "oauth_id_token"
	KindOAuthCode          = "oauth_code"
	KindOAuthClientSecret  = "oauth_client_secret"
	KindToken              = "token"
	KindSessionCookie      = "session_cookie"
	KindGitHubPAT          = "github_pat"
	KindGitHubOAuth        = "github_oauth"
	KindGitHubUserToServer = "github_user_to_server"
	KindGitHubServer       = "github_server_to_server"
	KindGitHubRefresh      = "github_refresh_token"
	KindGitHubFineGrained  = "github_fine_grained_pat"
	KindGitLabPAT          = "gitlab_pat"
	KindSlackToken         = "slack_token"
	KindGoogleOAuth        = "google_oauth_access_token"
	KindGoogleAPIKey       = "google_api_key"
	KindStripeSecret       = "stripe_secret_key"
	KindStripeRestricted   = "stripe_restricted_key"
	KindNPMToken           = "npm_token"
	KindAWSAccessKeyID     = "aws_access_key_id"
	KindAWSSecretKey       = "aws_secret_access_key"
	KindSendGrid           = "sendgrid_api_key"
	KindOpenAI             = "openai_api_key"
	KindAnthropic          = "anthropic_api_key"
	KindHuggingFace        = "huggingface_token"
	KindShopify            = "shopify_token"
	KindDigitalOcean       = "digitalocean_token"
	KindPyPI               = "pypi_token"
	KindCLIPassword        = "cli_password"
	KindURLPassword        = "url_password"
)

// RuleInfo describes one detection rule.
type RuleInfo struct {
	Kind        string `json:"kind"`
	Rule        string `json:"rule"`
	Description string `json:"description"`
}

// ruleInfos is the catalogue; docs/scanner.md and `tokenwatch scan --list-rules`
// print it. rules_test.go checks every entry has true and false positives.
var ruleInfos = []RuleInfo{
	{KindJWT, "jwt.compact", "JWS compact serialization: 3 base64url parts, header decodes to a JSON object with \"alg\" (empty signature only with alg none); plain, URL-encoded (%2E) or JSON-escaped (\\u002e, \\/)"},
	{KindJWE, "jwt.jwe", "JWE compact serialization: 5 parts, header is a JSON object with \"alg\" and \"enc\""},
	{KindBearer, "authorization.bearer", "opaque token after the Bearer scheme (any case; space, +, %20 or JSON/URL-escaped forms)"},
	{KindBearer, "authorization.dpop", "opaque token after the DPoP scheme (RFC 9449)"},
	{KindBearer, "authorization.token", "opaque token after the \"token\" scheme of an Authorization header (GitHub style)"},
	{KindBasic, "authorization.basic", "Basic credentials: base64 of user:password (decoded and checked for ':')"},
	{KindOAuthAccessToken, "oauth.access_token", "access_token / accessToken parameter, JSON field, header or cookie"},
	{KindOAuthRefreshToken, "oauth.refresh_token", "refresh_token / refreshToken parameter, JSON field, header or cookie"},
	{KindOAuthIDToken, "oauth.id_token", "id_token / id_token_hint that is not a JWT (JWT values are reported as jwt)"},
	{KindOAuthCode, "oauth.code", "authorization code: code= / \"code\": only on lines with OAuth context (state=, redirect_uri, authorization_code, /callback, /authorize, oauth)"},
	{KindOAuthClientSecret, "oauth.client_secret", "client_secret / clientSecret parameter or field"},
	{KindToken, "param.token", "generic token parameter, field or header: token, auth_token, api_token, session_token, X-Auth-Token, x-amz-security-token, … (not csrf/page/next tokens)"},
	{KindSessionCookie, "cookie.session", "Cookie / Set-Cookie value whose name says session or auth (session, sid, JSESSIONID, auth, jwt, token, remember_me, …)"},
	{KindGitHubPAT, "github.classic_pat", "GitHub classic personal access token ghp_ + 36 base62, CRC32 checksum verified"},
	{KindGitHubOAuth, "github.oauth", "GitHub OAuth access token gho_ + 36 base62, CRC32 checksum verified"},
	{KindGitHubUserToServer, "github.user_to_server", "GitHub App user-to-server token ghu_ + 36 base62, CRC32 checksum verified"},
	{KindGitHubServer, "github.server_to_server", "GitHub App installation token ghs_ + 36 base62, CRC32 checksum verified"},
	{KindGitHubRefresh, "github.refresh_token", "GitHub App refresh token ghr_ + 36 base62, CRC32 checksum verified"},
	{KindGitHubFineGrained, "github.fine_grained_pat", "GitHub fine-grained personal access token github_pat_ + 22 base62 + _ + 59 base62"},
	{KindGitLabPAT, "gitlab.pat", "GitLab personal/project/group access token glpat- + 20 or more [0-9A-Za-z_.-]"},
	{KindSlackToken, "slack.token", "Slack token xoxb-/xoxp-/xoxa-/xoxo-/xoxs-/xoxr- + digit groups and a secret part"},
	{KindGoogleOAuth, "google.oauth_access_token", "Google OAuth 2.0 access token ya29. + 20 or more [0-9A-Za-z_-]"},
	{KindGoogleAPIKey, "google.api_key", "Google API key AIza + 35 [0-9A-Za-z_-]"},
	{KindStripeSecret, "stripe.secret_key", "Stripe secret key sk_live_ / sk_test_ + 24 or more alphanumerics"},
	{KindStripeRestricted, "stripe.restricted_key", "Stripe restricted key rk_live_ / rk_test_ + 24 or more alphanumerics"},
	{KindNPMToken, "npm.access_token", "npm access token npm_ + 36 base62, CRC32 checksum verified (same scheme as GitHub)"},
	{KindAWSAccessKeyID, "aws.access_key_id", "AWS access key id AKIA (long-term) or ASIA (temporary) + 16 [A-Z2-7]"},
	{KindAWSSecretKey, "aws.secret_access_key", "AWS secret access key: 40 [A-Za-z0-9/+] after aws_secret_access_key / SecretAccessKey, or right after an access key id"},
	{KindSendGrid, "sendgrid.api_key", "SendGrid API key SG. + 22 + . + 43 [0-9A-Za-z_-]"},
	{KindOpenAI, "openai.api_key", "OpenAI API key sk-proj- / sk-svcacct- / sk-admin- + 40 or more [0-9A-Za-z_-], or legacy sk- + 20 + T3BlbkFJ + 20"},
	{KindAnthropic, "anthropic.api_key", "Anthropic API key sk-ant-api03- / sk-ant-admin01- + 80 or more [0-9A-Za-z_-]"},
	{KindHuggingFace, "huggingface.token", "Hugging Face access token hf_ + 34 letters"},
	{KindShopify, "shopify.token", "Shopify token shpat_ / shpca_ / shppa_ / shpss_ + 32 hex"},
	{KindDigitalOcean, "digitalocean.token", "DigitalOcean token dop_v1_ / doo_v1_ / dor_v1_ + 64 hex"},
	{KindPyPI, "pypi.token", "PyPI API token pypi-AgEIcHlwaS5vcmc + 50 or more [0-9A-Za-z_-]"},
	{KindCLIPassword, "curl.user", "user:password given to curl -u / --user / -U / --proxy-user (also -uVALUE, --user=VALUE, quoted); fingerprinted as the Basic credential curl sends"},
	{KindCLIPassword, "wget.password", "password given to wget --password / --http-password / --ftp-password / --proxy-password (=VALUE or next word)"},
	{KindURLPassword, "url.userinfo", "password in a URL's userinfo, scheme://user:password@host (DSNs, broker and git remote URLs; %XX-encoded passwords decoded); fingerprinted as base64(user:password), the Basic credential"},
}

// Rules lists every kind and rule the scanner can report, with a one-line
// description (for docs and `tokenwatch scan --list-rules`). The slice is a copy.
func Rules() []RuleInfo {
	return append([]RuleInfo(nil), ruleInfos...)
}
