package integration

import (
	"strings"
	"testing"
)

// TestAdaptPublicKeys checks that the public-key subdirectives, the jwks
// block with every option among them, produce the documented JSON.
func TestAdaptPublicKeys(t *testing.T) {
	cases := []struct {
		name  string
		block string
		want  string
	}{
		{
			name: "jwks block with every option, and a bare one",
			block: `webhook_verify jws {
		jwks http://127.0.0.1:9/jwks.json {
			refresh 10m
			min_refresh 45s
			stale_for 2h
			timeout 5s
			trust_roots /etc/caddy/partner-roots.pem
		}
		jwks https://keys.example/.well-known/jwks.json
		algorithm EdDSA ES256
	}`,
			want: `{"handler":"webhook_verify","preset":"jws",
		"jwks":[{"url":"http://127.0.0.1:9/jwks.json","refresh":600000000000,
			"min_refresh":45000000000,"stale_for":7200000000000,"timeout":5000000000,
			"trust_roots":"/etc/caddy/partner-roots.pem"},
			{"url":"https://keys.example/.well-known/jwks.json"}],
		"algorithm":"EdDSA ES256"}`,
		},
		{
			name: "raw signatures with public keys and a key ID header",
			block: `webhook_verify {
		public_key /etc/caddy/partner.pem partner-2026
		public_key {env.PARTNER_OLD_KEY}
		jwks https://keys.example/jwks.json {
			refresh 1h
		}
		key_id_header X-Key-Id
		algorithm ecdsa-p256-sha256
		signature_format der
		signature_header X-Signature
		signature_encoding base64
		signed_content "{timestamp}.{body}"
		timestamp_header X-Timestamp
	}`,
			want: `{"handler":"webhook_verify",
		"public_keys":[{"value":"/etc/caddy/partner.pem","key_id":"partner-2026"},
			{"value":"{env.PARTNER_OLD_KEY}"}],
		"jwks":[{"url":"https://keys.example/jwks.json","refresh":3600000000000}],
		"key_id_header":"X-Key-Id","algorithm":"ecdsa-p256-sha256","signature_format":"der",
		"signature_header":"X-Signature","signature_encoding":"base64",
		"signed_content":"{timestamp}.{body}","timestamp_header":"X-Timestamp"}`,
		},
		{
			name: "compact JWS with its body hash claim",
			block: `webhook_verify {
		jwks https://keys.example/jwks.json
		signature_header X-Token
		signature_format jws_compact
		body_hash_claim body_sha256
		algorithm ES384
	}`,
			want: `{"handler":"webhook_verify",
		"jwks":[{"url":"https://keys.example/jwks.json"}],
		"signature_header":"X-Token","signature_format":"jws_compact",
		"body_hash_claim":"body_sha256","algorithm":"ES384"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectAdapted(t, tc.block, tc.want) })
	}
}

// TestJWKSConfigErrors checks that a bad jwks block fails to adapt or to
// load, with an error that names the option at fault.
func TestJWKSConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		jwks  string
		error string
	}{
		{"no url", "jwks {\n\trefresh 1m\n}", "wrong argument count"},
		{"two urls", "jwks https://a.example/k https://b.example/k", "wrong argument count"},
		{"unknown option", "jwks https://a.example/k {\n\trefreshh 1m\n}",
			`jwks: unrecognized option "refreshh"`},
		{"bad duration", "jwks https://a.example/k {\n\tstale_for soon\n}",
			`jwks stale_for: invalid duration "soon"`},
		{"duration without a value", "jwks https://a.example/k {\n\ttimeout\n}",
			"wrong argument count"},
		{"trust_roots with two files", "jwks https://a.example/k {\n\ttrust_roots a b\n}",
			"wrong argument count"},
		{"plain http to another host", "jwks http://keys.example/jwks.json",
			`jwks: source 1: url: "http://keys.example/jwks.json" must be https ` +
				`(plain http only to a loopback address)`},
		{"min_refresh above refresh", "jwks https://a.example/k {\n\trefresh 1m\n" +
			"\tmin_refresh 2m\n}", "jwks: source 1: min_refresh: 2m0s is longer than refresh 1m0s"},
		{"negative timeout", "jwks https://a.example/k {\n\ttimeout -1s\n}",
			"jwks: source 1: timeout: must not be negative, got -1s"},
		{"credentials in the url", "jwks https://user:pw@a.example/k",
			"jwks: source 1: url: credentials in the URL are not accepted"},
		{"missing trust_roots file", "jwks https://a.example/k {\n" +
			"\ttrust_roots /nonexistent/webhook-verify/roots.pem\n}",
			"jwks: source 1: trust_roots: open /nonexistent/webhook-verify/roots.pem: " +
				"no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			site := "\twebhook_verify jws {\n" + tc.jwks + "\n}\n\trespond ok"
			_, err := tryStart(t, site, nil)
			if err == nil {
				t.Fatal("the configuration loaded")
			}
			if !strings.Contains(err.Error(), tc.error) {
				t.Errorf("error %q does not contain %q", err, tc.error)
			}
		})
	}
}
