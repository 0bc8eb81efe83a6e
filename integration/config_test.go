package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// configSecret is the secret value used by the invalid configurations; no
// error may repeat it.
const configSecret = "s3cr3t-value-1"

// TestInvalidConfig checks that a bad configuration fails to load, with an
// error that names the field at fault and never shows a secret.
func TestInvalidConfig(t *testing.T) {
	t.Setenv("WEBHOOK_VERIFY_TEST_UNSET", "")
	os.Unsetenv("WEBHOOK_VERIFY_TEST_UNSET")
	many := strings.Repeat("secret "+configSecret+"\n", 17)

	cases := []struct {
		name  string
		block string
		// patch edits the handler's JSON before loading, when set.
		patch func(h map[string]any)
		field string
		// secret is a secret value the error must not contain, besides
		// configSecret.
		secret string
	}{
		{"unknown preset", "webhook_verify gitbub {\nsecret " + configSecret + "\n}",
			nil, "preset", ""},
		{"unknown algorithm", "webhook_verify {\nsecret " + configSecret +
			"\nalgorithm hmac-md5\nsignature_header X-Sig\n}", nil, "algorithm", ""},
		{"no secret", "webhook_verify github", nil, "secrets", ""},
		{"no secret in a block", "webhook_verify github {\nmax_body 1KB\n}", nil, "secrets", ""},
		{"bad hex secret", "webhook_verify github {\nsecret zz-not-hex-3141\n" +
			"secret_encoding hex\n}", nil, "secret", "zz-not-hex-3141"},
		{"odd length hex secret", "webhook_verify github {\nsecret abc0123456789\n" +
			"secret_encoding hex\n}", nil, "secret", "abc0123456789"},
		{"bad base64 whsec secret", "webhook_verify standard_webhooks {\n" +
			"secret whsec_not*base64*secret\n}", nil, "secret", "not*base64*secret"},
		{"unknown secret_encoding", "webhook_verify github {\nsecret " + configSecret +
			"\nsecret_encoding rot13\n}", nil, "secret_encoding", ""},
		{"secret from an unset environment variable", "webhook_verify github {\n" +
			"secret {env.WEBHOOK_VERIFY_TEST_UNSET}\n}", nil, "secret", ""},
		{"secret from a missing file", "webhook_verify github {\n" +
			"secret {file./nonexistent/webhook-verify/secret}\n}", nil, "secret", ""},
		{"key_id used twice", "webhook_verify github {\nsecret " + configSecret +
			" k1\nsecret other-secret-2 k1\n}", nil, "key_id", "other-secret-2"},
		{"seventeen secrets", "webhook_verify github {\n" + many + "}", nil, "secrets", ""},
		{"negative max_body", "webhook_verify github {\nsecret " + configSecret +
			"\nmax_body -1KB\n}", nil, "max_body", ""},
		{"invalid max_body", "webhook_verify github {\nsecret " + configSecret +
			"\nmax_body plenty\n}", nil, "max_body", ""},
		{"negative max_body in json", "webhook_verify github {\nsecret " + configSecret +
			"\n}", func(h map[string]any) { h["max_body"] = -1 }, "max_body", ""},
		{"invalid tolerance", "webhook_verify github {\nsecret " + configSecret +
			"\ntolerance soon\n}", nil, "tolerance", ""},
		{"negative tolerance", "webhook_verify stripe {\nsecret " + configSecret +
			"\ntolerance -1m\n}", nil, "tolerance", ""},
		{"negative replay_window", "webhook_verify stripe {\nsecret " + configSecret +
			"\nreplay_window -5m\n}", nil, "replay_window", ""},
		{"generic without signature_header", "webhook_verify {\nsecret " + configSecret +
			"\n}", nil, "signature_header", ""},
		{"unknown signature_encoding", "webhook_verify {\nsecret " + configSecret +
			"\nsignature_header X-Sig\nsignature_encoding base32\n}", nil,
			"signature_encoding", ""},
		{"timestamp not signed", "webhook_verify {\nsecret " + configSecret +
			"\nsignature_header X-Sig\ntimestamp_header X-Time\n}", nil, "timestamp_header", ""},
		{"unknown timestamp_format", "webhook_verify {\nsecret " + configSecret +
			"\nsignature_header X-Sig\ntimestamp_header X-Time\n" +
			"signed_content \"{timestamp}.{body}\"\ntimestamp_format iso8601\n}",
			nil, "timestamp_format", ""},
		{"signed_content without body", "webhook_verify {\nsecret " + configSecret +
			"\nsignature_header X-Sig\nsigned_content \"{id}\"\nid_header X-Id\n}",
			nil, "signed_content", ""},
		{"signed_content with an unknown placeholder", "webhook_verify {\nsecret " +
			configSecret + "\nsignature_header X-Sig\nsigned_content \"{nonce}.{body}\"\n}",
			nil, "signed_content", ""},
		{"signed_content with values not separated", "webhook_verify {\nsecret " +
			configSecret + "\nsignature_header X-Sig\nid_header X-Id\n" +
			"timestamp_header X-Ts\nsigned_content \"{id}{timestamp}{body}\"\n}",
			nil, "signed_content: {id} and {timestamp} must be separated", ""},
		{"tolerance too large", "webhook_verify stripe {\nsecret " + configSecret +
			"\ntolerance 1000000h\n}", nil, "tolerance", ""},
		{"replay_window too large", "webhook_verify github {\nsecret " + configSecret +
			"\nreplay_window 100000h\n}", nil, "replay_window", ""},
		{"signed_content with id but no id_header", "webhook_verify {\nsecret " +
			configSecret + "\nsignature_header X-Sig\nsigned_content \"{id}.{body}\"\n}",
			nil, "signed_content", ""},
		{"replay memory zero", "webhook_verify github {\nsecret " + configSecret +
			"\nreplay memory 0\n}", nil, "replay", ""},
		{"unknown replay store", "webhook_verify github {\nsecret " + configSecret +
			"\nreplay redis\n}", nil, "replay", ""},
		{"replay store with replay disabled", "webhook_verify github {\nsecret " +
			configSecret + "\nreplay off\n}", func(h map[string]any) {
			h["replay"] = map[string]any{"store": "memory"}
		}, "replay", ""},
		{"negative max_entries in json", "webhook_verify github {\nsecret " + configSecret +
			"\n}", func(h map[string]any) {
			h["replay"] = map[string]any{"store": "memory", "max_entries": -1}
		}, "max_entries", ""},
		{"unknown on_store_error", "webhook_verify github {\nsecret " + configSecret +
			"\non_store_error maybe\n}", nil, "on_store_error", ""},
		{"unknown option", "webhook_verify github {\nsecret " + configSecret +
			"\nsecrte other\n}", nil, "secrte", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var patch func(cfg map[string]any)
			if tc.patch != nil {
				patch = func(cfg map[string]any) {
					for _, h := range handlers(cfg) {
						tc.patch(h)
					}
				}
			}
			_, err := tryStart(t, tc.block+"\nrespond ok", patch)
			if err == nil {
				t.Fatalf("configuration loaded; want an error naming %q", tc.field)
			}
			msg := err.Error()
			t.Logf("error: %v", err)
			if !strings.Contains(msg, tc.field) {
				t.Errorf("error does not name %q: %v", tc.field, msg)
			}
			for _, s := range []string{configSecret, tc.secret} {
				if s != "" && strings.Contains(msg, s) {
					t.Errorf("error shows the secret %q: %v", s, msg)
				}
			}
		})
	}
}

// TestSecretPlaceholders checks secrets given as {env.*} and {file.*}
// placeholders: they are resolved once, when the configuration loads.
func TestSecretPlaceholders(t *testing.T) {
	t.Setenv("WEBHOOK_VERIFY_TEST_SECRET", "env-secret-4d2")
	path := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(path, []byte("file-secret-9k\n"), 0o600); err != nil {
		t.Fatalf("writing secret file: %v", err)
	}

	up := newUpstream(t)
	site := ""
	for name, secret := range map[string]string{
		"env":  "{env.WEBHOOK_VERIFY_TEST_SECRET}",
		"file": "{file." + path + "}",
	} {
		site += fmt.Sprintf("\thandle /%s {\n\t\twebhook_verify github {\n\t\t\tsecret %s\n"+
			"\t\t}\n\t\treverse_proxy %s\n\t}\n", name, secret, up.addr())
	}
	inst := startCaddy(t, site)
	t.Setenv("WEBHOOK_VERIFY_TEST_SECRET", "changed-after-load")

	cases := []struct {
		route, secret string
		want          int
	}{
		{"env", "env-secret-4d2", http.StatusOK},
		{"env", "changed-after-load", http.StatusUnauthorized},
		{"env", "{env.WEBHOOK_VERIFY_TEST_SECRET}", http.StatusUnauthorized},
		{"file", "file-secret-9k", http.StatusOK},
		{"file", "file-secret-9k\n", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s signed with %q", tc.route, tc.secret), func(t *testing.T) {
			s := senderNamed("github")
			s.name, s.secret = tc.route, tc.secret
			d := s.newDelivery(inst.base, time.Now())
			if tc.want == http.StatusOK {
				expectForwarded(t, inst, up, d, tc.want)
				return
			}
			expectRefused(t, inst, up, d, tc.want)
		})
	}
}

// TestAdapt checks that the Caddyfile syntax produces the documented JSON
// for every subdirective.
func TestAdapt(t *testing.T) {
	cases := []struct {
		name  string
		block string
		want  string
	}{
		{
			name: "every generic option",
			block: `webhook_verify {
		secret s3cr3t-one one
		secret s3cr3t-two
		secret_encoding raw
		max_body 2KB
		tolerance 90s
		replay memory 500
		replay_window 10m
		algorithm hmac-sha512
		signature_header X-Sig
		signature_prefix sha512=
		signature_encoding base64url
		signed_content "{id}.{timestamp}.{body}"
		timestamp_header X-Time
		timestamp_format unix_ms
		id_header X-Id
		on_store_error allow
	}`,
			want: `{"handler":"webhook_verify",
		"secrets":[{"value":"s3cr3t-one","key_id":"one"},{"value":"s3cr3t-two"}],
		"secret_encoding":"raw","max_body":2000,"tolerance":90000000000,
		"replay":{"store":"memory","max_entries":500},"replay_window":600000000000,
		"algorithm":"hmac-sha512","signature_header":"X-Sig","signature_prefix":"sha512=",
		"signature_encoding":"base64url","signed_content":"{id}.{timestamp}.{body}",
		"timestamp_header":"X-Time","timestamp_format":"unix_ms","id_header":"X-Id",
		"on_store_error":"allow"}`,
		},
		{
			name: "preset with replay off and placeholder secrets",
			block: `webhook_verify github {
		secret {env.GH_WEBHOOK_SECRET} current
		secret {file./run/secrets/github-hook} previous
		max_body 1MiB
		replay off
	}`,
			want: `{"handler":"webhook_verify","preset":"github",
		"secrets":[{"value":"{env.GH_WEBHOOK_SECRET}","key_id":"current"},
			{"value":"{file./run/secrets/github-hook}","key_id":"previous"}],
		"max_body":1048576,"disable_replay":true}`,
		},
		{
			name: "replay storage",
			block: `webhook_verify slack {
		secret slack-secret
		replay storage {
			cleanup_interval 1h
		}
	}`,
			want: `{"handler":"webhook_verify","preset":"slack","secrets":[{"value":"slack-secret"}],
		"replay":{"store":"storage","cleanup_interval":3600000000000}}`,
		},
		{
			name: "replay memory without a size",
			block: `webhook_verify stripe {
		secret whsec_abc
		replay memory
	}`,
			want: `{"handler":"webhook_verify","preset":"stripe",
		"secrets":[{"value":"whsec_abc"}],"replay":{"store":"memory"}}`,
		},
		{
			name: "bare preset",
			block: `webhook_verify gitlab {
		secret token
	}`,
			want: `{"handler":"webhook_verify","preset":"gitlab","secrets":[{"value":"token"}]}`,
		},
		{
			name: "signed_content with method url and header placeholders",
			block: `webhook_verify {
		secret s
		signature_header X-Sig
		signed_content "{method} {url}|{header.X-Req}|{body}"
	}`,
			want: `{"handler":"webhook_verify","secrets":[{"value":"s"}],
		"signature_header":"X-Sig","signed_content":"{method} {url}|{header.X-Req}|{body}"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectAdapted(t, tc.block, tc.want) })
	}
}

// expectAdapted adapts a site holding block and checks that its one
// webhook_verify handler is the JSON object want.
func expectAdapted(t *testing.T, block, want string) {
	t.Helper()
	cfg, err := adapt(caddyfile(8080, t.TempDir(), "\t"+block+"\n\trespond ok"))
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatalf("decoding adapted config: %v", err)
	}
	hs := handlers(doc)
	if len(hs) != 1 {
		t.Fatalf("found %d webhook_verify handlers in %s", len(hs), cfg)
	}
	var wantDoc map[string]any
	if err := json.Unmarshal([]byte(want), &wantDoc); err != nil {
		t.Fatalf("decoding expected JSON: %v", err)
	}
	if !reflect.DeepEqual(hs[0], wantDoc) {
		t.Errorf("handler JSON:\n got %s\nwant %s", mustJSON(t, hs[0]), mustJSON(t, wantDoc))
	}
}
