package detect

import (
	"encoding/base64"
	"strings"
	"testing"
)

// ruleCases: every rule with its true positives (the credential between «»)
// and its false positives (lines that must give no finding at all), gitleaks
// style. TestRulesCatalogue checks every rule of Rules() has both.
var ruleCases = []struct {
	rule string
	tp   []string
	fp   []string
}{
	{"jwt.compact", []string{
		"token «" + jwtHS + "» accepted",
		"«" + jwtRS + "»",
		"spaced header «" + mkJWT(`{ "alg": "RS256", "typ": "JWT" }`, `{"sub":"x"}`, sig43) + "»",
		"pretty header «" + mkJWT("{\n  \"alg\": \"RS256\"\n}", `{"sub":"x"}`, sig43) + "»",
		`{"jwt":"«` + jwtHS + `»"}`,
		"alg none: «" + jwtNone + "» end",
		"padded: «" + base64.URLEncoding.EncodeToString([]byte(`{"alg":"HS256","ab":1}`)) + "." + base64.URLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + "." + sig43 + "»",
	}, []string{
		"header only eyJhbGciOiJIUzI1NiJ9 and nothing else",
		"truncated " + jwtHS[:60],
		"two parts " + b64u(`{"alg":"HS256"}`) + "." + b64u(`{"sub":"x"}`),
		"no alg " + mkJWT(`{"typ":"JWT"}`, `{"sub":"x"}`, sig43),
		"header not json " + b64u(`{"alg":"HS256"`) + "." + b64u(`{"sub":"x"}`) + "." + sig43,
		"empty signature without alg none " + mkJWT(`{"alg":"RS256"}`, `{"sub":"x"}`, ""),
		"base64 json blob eyJmb28iOiJiYXIifQ== in a log",
		"inside a word xeyJhbGciOiJIUzI1NiJ9." + b64u(`{"sub":"x"}`) + "." + sig43,
	}},
	{"jwt.jwe", []string{
		"enc «" + jwe5 + "»",
	}, []string{
		"jwe without enc " + b64u(`{"alg":"dir"}`) + "..aXYtMDEyMzQ1Njc4OWFi.Y2lwaGVydGV4dA.dGFnLTAxMjM0NTY3ODlhYg",
	}},
	{"authorization.bearer", []string{
		"Authorization: Bearer «mF_9.B5f-4.1JqM»",
		"authorization: bearer «2YotnFZFEjr1zCsicMWpAA»",
		"AUTHORIZATION: BEARER «2YotnFZFEjr1zCsicMWpAA»",
		`"Authorization":"Bearer «tGzv3JOkF0XG5Qx2TlKWIA»"`,
		"Bearer «8c3f1a2b-9d4e-4f5a-b6c7-d8e9f0a1b2c3»",
		"Bearer  «AbCdEfGhIjKlMnOpQrSt123»\r",
		"Authorization: Bearer «3pwWfAT2W3xxxVb1afVBp9mF.iMqdl09Dyof2BCKjYo»",
	}, []string{
		"Authorization: Bearer <token>",
		"Authorization: Bearer ${TOKEN}",
		"Authorization: Bearer {{token}}",
		"Authorization: Bearer xxx",
		"Authorization: Bearer xxxxxxxxxxxxxxxxxxxx",
		"Authorization: Bearer REDACTED",
		"Authorization: Bearer ***",
		"Authorization: Bearer null",
		"Authorization: Bearer undefined",
		"Authorization: Bearer ...",
		"Authorization: Bearer <redacted>",
		"Authorization: Bearer [FILTERED]",
		"Authorization: Bearer [REDACTED:bearer:1a2b3c4d]",
		"Authorization: Bearer 2YotnF…AA",
		"the bearer of this message is trusted",
		"Bearer authentication is required for this endpoint",
		"WWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\"",
		"Bearer short1",
	}},
	{"authorization.dpop", []string{
		"Authorization: DPoP «Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU»",
		"authorization: dpop «Kz8mXK1EalYznwHLC1fBAo4Ljp»",
	}, []string{
		"DPoP: proof header present",
		"DPoP <token>",
	}},
	{"authorization.token", []string{
		"Authorization: token «Zx9yW8vU7tS6rQ5pO4nM3lK2»",
		`curl -H "Authorization: token «a1B2c3D4e5F6g7H8i9J0k1L2»" https://api.example.com`,
	}, []string{
		"invalid token provided by client",
		"token expired at 12:00 for user alice",
		"Authorization: token <your-token>",
	}},
	{"authorization.basic", []string{
		"Authorization: Basic «dXNlcjpwYXNzd29yZA==»",
		"authorization: basic «YWxhZGRpbjpvcGVuc2VzYW1l»",
		"AUTHORIZATION: Basic «YmFja3VwOiM0azA0RjZheFZWeHZ2ZCNj»",
		`"authorization":"Basic «QWxhZGRpbjpvcGVuIHNlc2FtZQ==»"`,
	}, []string{
		"Authorization: Basic dXNlcm5hbWU=",
		"Authorization: Basic Og==",
		"WWW-Authenticate: Basic realm=\"Restricted\"",
		"Basic auth enabled for admin endpoints",
		"Authorization: Basic ***",
		"Authorization: Basic dXNlcjoqKio=",
	}},
	{"oauth.access_token", []string{
		"GET /cb#access_token=«2YotnFZFEjr1zCsicMWpAA»&token_type=bearer",
		`{"access_token":"«SlAV32hkKG4z8Pq2xM1nL0»","token_type":"Bearer"}`,
		`accessToken: «SlAV32hkKG4z8Pq2xM1nL0»`,
		`<access_token>«SlAV32hkKG4z8Pq2xM1nL0»</access_token>`,
		`access_token = '«SlAV32hkKG4z8Pq2xM1nL0»'`,
	}, []string{
		`{"access_token":"","token_type":"Bearer"}`,
		`access_token=null`,
		`{"access_token":"<redacted>"}`,
		`access_token expired for user alice`,
		`access_token=[REDACTED:oauth_access_token:1a2b3c4d]`,
		`{"access_token_expires_in":3600}`,
	}},
	{"oauth.refresh_token", []string{
		`grant_type=refresh_token&refresh_token=«tGzv3JOkF0XG5Qx2TlKWIA»`,
		`{"refresh_token": "«8xLOxBtZp8abcdEF1234»"}`,
		`refreshToken=«8xLOxBtZp8abcdEF1234»`,
	}, []string{
		`grant_type=refresh_token&client_id=web`,
		`refresh_token=REDACTED`,
	}},
	{"oauth.id_token", []string{
		`id_token_hint=«Ab12Cd34Ef56Gh78Ij90Kl»&post_logout_redirect_uri=x`,
	}, []string{
		`id_token=${ID_TOKEN}`,
	}},
	{"oauth.code", []string{
		"GET /callback?code=«SplxlOBeZQQYbYS6WxSbIA»&state=xyz HTTP/1.1",
		"POST /token grant_type=authorization_code&code=«Qcb0Orv1zh30vL1MPRsbm»&redirect_uri=https%3A%2F%2Fapp",
		`{"code":"«4/0AX4XfWh7Qw9K2»","redirect_uri":"https://app/cb"}`,
	}, []string{
		`{"code":500,"message":"internal error"}`,
		"exit code=137 after OOM",
		"status_code=200 code=E1234567",
		"GET /callback?code=200&state=xyz",
	}},
	{"oauth.client_secret", []string{
		`client_id=web&client_secret=«7Fjfp0ZBr1KtDRbnfVdmIw»&grant_type=client_credentials`,
		`{"clientSecret":"«7Fjfp0ZBr1KtDRbnfVdmIw»"}`,
	}, []string{
		`client_secret=changeme`,
		`client_secret_expires_at=0`,
		`"client_secret": "********"`,
	}},
	{"param.token", []string{
		`GET /download?token=«f9a8b7c6d5e4f3a2b1c0d9e8»&file=x HTTP/1.1`,
		`X-Auth-Token: «f9a8b7c6d5e4f3a2b1c0d9e8»`,
		`x-amz-security-token=«IQoJb3JpZ2luX2VjEJr2»`,
		`{"api_token":"«f9a8b7c6d5e4f3a2b1c0d9e8»"}`,
	}, []string{
		`csrf_token=f9a8b7c6d5e4f3a2b1c0d9e8`,
		`{"next_page_token":"CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA"}`,
		`X-CSRF-Token: f9a8b7c6d5e4f3a2b1c0d9e8`,
		`token_type=Bearer&expires_in=3600`,
		`{"tokens_used":1234,"max_tokens":4096}`,
		`token=abc`,
		`token="some words here"`,
	}},
	{"cookie.session", []string{
		"Cookie: theme=dark; sessionid=«AbCdEf0123456789XyZ»",
		"Set-Cookie: JSESSIONID=«8A3F9C2E1B7D4F60A9E3C1B2D4F6A8C0»; Path=/; HttpOnly",
		"cookie: connect.sid=«s%3AAbCdEf0123456789XyZ.sig123»; lang=en",
	}, []string{
		"Cookie: theme=dark; lang=en-US",
		"Cookie: csrftoken=AbCdEf0123456789XyZabc",
		"Set-Cookie: sessionid=deleted; Max-Age=0",
		"Cookie: session=<redacted>",
	}},
	{"github.classic_pat", []string{
		"GITHUB_TOKEN=«" + ghToken("ghp_", "abcdefghijklmnopqrstuvwxyz0123") + "»",
		"push with «" + ghToken("ghp_", "ZYXWVUTSRQPONMLKJIHGFEDCBA9876") + "» failed",
	}, []string{
		"bad checksum ghp_abcdefghijklmnopqrstuvwxyz0123456789",
		"too short ghp_abcdefghij",
		"inside xghp_" + ghToken("", "abcdefghijklmnopqrstuvwxyz0123"),
	}},
	{"github.oauth", []string{"«" + ghToken("gho_", "0123456789abcdefghijABCDEFGHIJ") + "»"}, []string{"gho_16C7e42F292c6912E7710c838347Ae178B4a"}},
	{"github.user_to_server", []string{"«" + ghToken("ghu_", "0123456789abcdefghijABCDEFGHIJ") + "»"}, []string{"ghu_16C7e42F292c6912E7710c838347Ae178B4a"}},
	{"github.server_to_server", []string{"x-access-token:«" + ghToken("ghs_", "0123456789abcdefghijABCDEFGHIJ") + "»@github.com"}, []string{"ghs_16C7e42F292c6912E7710c838347Ae178B4a"}},
	{"github.refresh_token", []string{"«" + ghToken("ghr_", "0123456789abcdefghijABCDEFGHIJ") + "»"}, []string{"ghr_16C7e42F292c6912E7710c838347Ae178B4a"}},
	{"github.fine_grained_pat", []string{
		"«github_pat_" + fill("11ABCDEFG0abc", 22) + "_" + fill("xYz0123456789AbCdEf", 59) + "»",
	}, []string{
		"github_pat_" + fill("11ABCDEFG0abc", 22) + "_" + fill("xYz0123456789AbCdEf", 30),
		"github_pat_example",
	}},
	{"gitlab.pat", []string{"PRIVATE-TOKEN: «glpat-xYz12AbCdEfGhIjKlMnO»", "git clone https://oauth2:«glpat-S0bb1cg-SafPTgXlWqf-»@gitlab.example.com/a.git", "«glpat-AbCdEfGhIjKlMnOpQrStUvWx.01.0z1a2b3c4»"}, []string{"glpat-short", "glpat-"}},
	{"slack.token", []string{"«xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx»", "token=«xoxp-1234567890-1234567890-1234567890123-0123456789abcdef0123456789abcdef»"}, []string{"xoxb-not-a-token", "xoxb-"}},
	{"google.oauth_access_token", []string{"Authorization: Bearer «ya29.a0AfH6SMBx3kQ9Zr7LmN2pQ4sT6vW8yZ0bC1dE3fG5hJ7k»"}, []string{"ya29.short"}},
	{"google.api_key", []string{"key=«AIza" + fill("SyD-9tSrke72PouQMnMX_a7eZ", 35) + "»"}, []string{"AIza" + fill("SyD", 20)}},
	{"stripe.secret_key", []string{"«sk_live_4eC39HqLyjWDarjtT1zdp7dc»", "«sk_test_4eC39HqLyjWDarjtT1zdp7dc»"}, []string{"sk_live_short", "task_live_4eC39HqLyjWDarjtT1zdp7dc"}},
	{"stripe.restricted_key", []string{"«rk_live_4eC39HqLyjWDarjtT1zdp7dc»"}, []string{"rk_live_"}},
	{"npm.access_token", []string{"//registry.npmjs.org/:_authToken=«" + ghToken("npm_", "AbCdEfGhIjKlMnOpQrStUvWxYz0123") + "»"}, []string{"npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_install_done"}},
	{"aws.access_key_id", []string{"aws_access_key_id=«AKIAQYLPMN5HHHFPZAM2»", "«ASIAY34FZKBOKMUTVV7A» session"}, []string{"AKIAIOSFODNN7EXAMPL", "AKIAQYLPMN5HHHFPZAM21", "XAKIAQYLPMN5HHHFPZAM2", "docs example: AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
	{"aws.secret_access_key", []string{"aws_secret_access_key = «wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLQKE»", `"SecretAccessKey": "«wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLQKE»"`}, []string{"aws_secret_access_key = tooshort", "aws_secret_access_key=" + strings.Repeat("a", 40), "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
	{"sendgrid.api_key", []string{"«SG." + fill("ngeVfQFYQlKU0ufo8x5d1A", 22) + "." + fill("TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr", 43) + "»"}, []string{"SG.short.value", "USG.ngeVfQFYQlKU0ufo8x5d1A"}},
	{"openai.api_key", []string{"OPENAI_API_KEY=«sk-proj-" + fill("Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7_-", 100) + "»", "«sk-" + fill("Ab3dE6gH9jK2mN5pQ8sT", 20) + "T3BlbkFJ" + fill("uV1wX2yZ3aB4cD5eF6gH", 20) + "»"}, []string{"sk-proj-short", "task-proj-" + fill("Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7_-", 100)}},
	{"anthropic.api_key", []string{"x-api-key: «sk-ant-api03-" + fill("Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7_-", 93) + "AA»"}, []string{"sk-ant-api03-short"}},
	{"huggingface.token", []string{"«hf_" + fill("AbCdEfGhIjKlMnOpQrStUvWxYz", 34) + "»"}, []string{"hf_" + fill("AbCd", 20), "hf_" + fill("AbCd012", 34)}},
	{"shopify.token", []string{"«shpat_" + fill("0123456789abcdef", 32) + "»"}, []string{"shpat_" + fill("0123456789abcdefg", 32)}},
	{"digitalocean.token", []string{"«dop_v1_" + fill("0123456789abcdef", 64) + "»"}, []string{"dop_v1_" + fill("0123456789abcdef", 63)}},
	{"pypi.token", []string{"password = «pypi-AgEIcHlwaS5vcmc" + fill("CJGE4NmMtNjE2Ny00YjA0LWE3MzEtZjBiYzY0", 60) + "»"}, []string{"pypi-AgEIcHlwaS5vcmc-short"}},
	{"curl.user", []string{
		"curl -u «deploy:yLcVk08rjlO7Pj» https://ci.example.com/api/json",
		"+ curl -sS --user «admin:S3cr3t!pw» -X POST https://api.example.com/v1",
		"curl -u«alice:wonderland42» https://x",
		"curl --user=«alice:wonderland42» https://x",
		"curl -u '«alice:p@ss w0rd;|&»' https://x",
		`curl -u "«alice:wonderland42»" https://x`,
		"/usr/bin/curl -fsSLu '«bob:Tr0ub4dor&3»' https://x",
		"curl -u «bob:Tr0ub4dor»&3 https://x",
		"$ curl -XPOST -H 'Accept: */*' -u «ci-bot:9f8e7d6c5b» https://x | jq .",
		"curl --proxy-user «proxy:Pr0xyPass» -x http://proxy:3128 https://x",
		"curl -U «proxy:Pr0xyPass» https://x",
		"curl -u «:s3cr3tT0ken» https://x",
		`{"log":"+ curl -u \"«svc:hK9#mQ2%»\" https://x\n","stream":"stderr"}`,
		`{"cmd":"curl -s -u «svc:hK9mQ2xZ»"}`,
		"2026-01-01T00:00:00Z stdout F + curl --fail -u «admin:admin» http://jenkins:8080/crumbIssuer",
		"curl -H 'X-Trace: 1' --user «elastic:Zq1Lm7Wx9» -- https://es:9200/_cat/indices",
	}, []string{
		"curl -u user https://x",
		"curl -u : --negotiate https://x",
		"curl -u user: https://x",
		"curl -u $USER:$PASS https://x",
		`curl -u "${U}:${P}" https://x`,
		`curl -u "$USER:$PASS" https://x`,
		"curl -u 'user:$PASS' https://x",
		"curl -u user:<password> https://x",
		"curl -u 'user:<password>' https://x",
		"curl -u user:xxx https://x",
		"curl -u user:xxxxxxxx https://x",
		"curl -u user:REDACTED https://x",
		"curl -u user:*** https://x",
		"curl -u '***' https://x",
		"curl -u [REDACTED:cli_password:1a2b3c4d] https://x",
		"curl -u 'user:[REDACTED:cli_password:1a2b3c4d]' https://x",
		"curl -u ![REDACTED:jwt:cfd6faaf] https://x",
		"curl -u user:pw[REDACTED:jwt:cfd6faaf] https://x",
		"curl -u user:pass https://x",
		"curl -u username:password https://x",
		"curl -u USERNAME:PASSWORD https://x",
		"curl -u elastic:changeme https://x",
		"curl -u foo:bar https://x",
		"curl -u 1000:1000 https://x",
		"curl -u user:`cat pw` https://x",
		"curl -u user:pa'ss word' https://x",
		`curl -u user:pa\$s https://x`,
		"curl -u user:ab…yz https://x",
		"curl -XPUT https://x",
		"curl -dfoo:barbaz https://x",
		"curl -H 'Authorization: x' -o out.txt https://x",
		"curl -- -u user:S3cr3tpw",
		"curl https://x | sudo -u root tee /etc/x",
		"curl https://x; docker run -u 1000:1000 img",
		"sudo -u root whoami",
		"ps -u user:group",
		"docker run -u 1000:1000 alpine id",
		"top -u admin:wheel",
		"git log -u",
		"pip install -U requests",
		"libcurl -u admin:S3cr3tpw",
		"mycurl -u admin:S3cr3tpw",
		"run curl -u to authenticate",
		"curl/8.4.0 -u admin:S3cr3tpw",
		"curl -u http://example.com/x",
		"curl -s https://x # -u admin:S3cr3tpw",
	}},
	{"wget.password", []string{
		"wget --user=alice --password=«wonderland42» https://x/file.tar.gz",
		"wget --http-user alice --http-password «wonderland42» https://x",
		"wget --password '«p@ss w0rd»' ftp://x/f",
		"wget --ftp-password=«Ftp-Pa55» ftp://x/f",
		`wget -q -O - --proxy-user=p --proxy-password="«Pr0xyPass»" https://x`,
	}, []string{
		"wget --password= https://x",
		"wget --ask-password --user=alice https://x",
		"wget --password=$WGET_PASSWORD https://x",
		"wget --password='${PASS}' https://x",
		"wget --password=password https://x",
		"wget --password=xxxx https://x",
		"wget --password=[REDACTED:cli_password:1a2b3c4d] https://x",
		"wget -U Mozilla/5.0 https://x",
		"wget --user=alice https://x",
		"wget https://x && echo --password=S3cr3tpw",
		`GET /account/reset-password?user=alice HTTP/1.1" 200`,
	}},
	{"url.userinfo", []string{
		"connecting to postgres://app:«S3cr3tPw»@db:5432/orders?sslmode=disable",
		"MONGO_URL=mongodb+srv://u:«Xk9vQ2mZ7w»@cluster0.ab1cd.mongodb.net/",
		"redis://:«r3d1sPassw0rd»@cache.internal:6379/0",
		"amqp://svc:«Rabb1tMQ-pw»@rabbit:5672/vhost",
		"git clone https://deploy:«hK9mQ2xZp4»@git.example.com/org/repo.git",
		"ftp://backup:«Ftp-Pa55w0rd»@files.example.com/dump.sql.gz",
		"smtp://mailer:«M41l3rPw!»@smtp.example.com:587",
		"dsn=postgres://app:«p%40ss%3Aw0rd»@db/x",
		`{"dsn":"postgres://app:«S3cr3tPw»@db:5432/x","level":"info"}`,
		`DATABASE_URL='mysql://root:«My5qlR00t»@127.0.0.1:3306/app'`,
		"proxy http://user:«p@ss!w0rd»@proxy:3128 tried",
	}, []string{
		"GET https://user@example.com/ 200",
		"ssh://git@github.com/org/repo.git",
		"git@github.com:org/repo.git",
		"postgres://app:@db:5432/x",
		"postgres://app@db:5432/x",
		"postgres://app:${DB_PASSWORD}@db:5432/x",
		"postgres://app:$PASS@db:5432/x",
		"postgres://app:<password>@db:5432/x",
		"postgres://app:xxx@db:5432/x",
		"postgres://app:***@db:5432/x",
		"postgres://app:********@db:5432/x",
		"postgres://app:REDACTED@db:5432/x",
		"postgres://app:password@db:5432/x",
		"postgres://user:pass@db:5432/x",
		"amqp://guest:guest@localhost:5672/",
		"redis://:changeme@cache:6379",
		"postgres://app:abc@db:5432/x",
		"postgres://app:[REDACTED:url_password:1a2b3c4d]@db:5432/x",
		"postgres://app:pw[REDACTED:url_password:1a2b3c4d]@db:5432/x",
		"http://[::1]:8080/health",
		"http://host:8080/a@b",
		"http://host:8080/users/bob:S3cr3tPw@example.com",
		"https://example.com/search?q=a:S3cr3tPw@b",
		"https://example.com#a:S3cr3tPw@b",
		"http://host:8080@evil.example.com/",
		"C://dir/a:S3cr3tPw@b",
		"://a:S3cr3tPw@host",
		"mailto:bob@example.com",
		"postgres://app:S3cr3tPw@ then nothing",
		`{"url":"https://api.example.com/v1/users/me","email":"a:b@c.d"}`,
	}},
}

func TestRules(t *testing.T) {
	s := newTestScanner(t)
	for _, rc := range ruleCases {
		t.Run(rc.rule, func(t *testing.T) {
			for _, tp := range rc.tp {
				line, start, end := marked(t, tp)
				fs := s.Scan([]byte(line), nil)
				if len(fs) != 1 || fs[0].Rule != rc.rule || fs[0].Start != start || fs[0].End != end {
					t.Errorf("true positive %q:\n got %s\nwant %s[%d:%d]", tp, describe(fs), rc.rule, start, end)
				}
			}
			for _, fp := range rc.fp {
				if fs := s.Scan([]byte(fp), nil); len(fs) != 0 {
					t.Errorf("false positive %q: got %s", fp, describe(fs))
				}
			}
		})
	}
}

func TestRulesCatalogue(t *testing.T) {
	seen := map[string]int{}
	for _, rc := range ruleCases {
		if len(rc.tp) == 0 || len(rc.fp) == 0 {
			t.Errorf("rule %s needs true and false positives", rc.rule)
		}
		seen[rc.rule]++
	}
	kinds := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.Rule] != 1 {
			t.Errorf("rule %s has %d case entries, want 1", r.Rule, seen[r.Rule])
		}
		if r.Kind == "" || r.Description == "" {
			t.Errorf("rule %s lacks kind or description", r.Rule)
		}
		kinds[r.Kind] = true
		delete(seen, r.Rule)
	}
	for r := range seen {
		t.Errorf("case for unknown rule %s", r)
	}
}
