package webhookverify

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestHTTPSigConfigErrors checks that every invalid http_signature
// configuration fails to load, with an error naming the key at fault.
func TestHTTPSigConfigErrors(t *testing.T) {
	rsaKey := filepath.Join("testdata", "rfc9421", "test-key-rsa-pss.pem")
	edKey := filepath.Join("testdata", "rfc9421", "test-key-ed25519.pem")
	secret := []Secret{{Value: "s"}}
	tests := []struct {
		name string
		h    Handler
		want string
	}{
		{"policy on another preset", Handler{Preset: "github", Secrets: secret,
			Label: "sig1"}, "label, covered, require_tag:"},
		{"generic field", Handler{Preset: httpSigPreset, Secrets: secret,
			SignatureHeader: "X-Sig"}, "signature_header:"},
		{"unknown algorithm", Handler{Preset: httpSigPreset, Secrets: secret,
			Algorithm: "hmac-sha512"}, "algorithm:"},
		{"secrets with a public-key algorithm", Handler{Preset: httpSigPreset,
			Secrets: secret, Algorithm: "ed25519"}, "secrets:"},
		{"public key with hmac", Handler{Preset: httpSigPreset,
			PublicKeys: []PublicKey{{Value: edKey}}, Algorithm: "hmac-sha256"},
			"public_keys, jwks:"},
		{"RSA key without an algorithm", Handler{Preset: httpSigPreset,
			PublicKeys: []PublicKey{{Value: rsaKey, KeyID: "k"}}}, "public_keys: key k"},
		{"key that does not fit the algorithm", Handler{Preset: httpSigPreset,
			PublicKeys: []PublicKey{{Value: edKey}}, Algorithm: "rsa-pss-sha512"},
			"public_keys: key 1"},
		{"covered not lowercase", Handler{Preset: httpSigPreset, Secrets: secret,
			Covered: []string{"Content-Digest"}}, "covered:"},
		{"covered @signature-params", Handler{Preset: httpSigPreset, Secrets: secret,
			Covered: []string{"@signature-params"}}, "covered:"},
		{"covered identifier unreadable", Handler{Preset: httpSigPreset, Secrets: secret,
			Covered: []string{`@query-param;name=`}}, "covered:"},
		{"origin with a path", Handler{Preset: httpSigPreset, Secrets: secret,
			ExternalOrigin: "https://example.com/hooks"}, "external_origin:"},
		{"origin not http", Handler{Preset: "square", Secrets: secret,
			ExternalOrigin: "ftp://example.com"}, "external_origin:"},
		{"no keys", Handler{Preset: httpSigPreset}, "secrets, public_keys or jwks:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.ActiveContext())
			defer cancel()
			h := tt.h
			err := h.Provision(ctx)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want one starting %q", err, tt.want)
			}
		})
	}
}

// TestHTTPSigKeyAlgorithms checks which algorithm each key is fixed to.
func TestHTTPSigKeyAlgorithms(t *testing.T) {
	ed := rfcPublicKey(t, "test-key-ed25519")
	ec := rfcPublicKey(t, "test-key-ecc-p256")
	rsaKey := rfcPublicKey(t, "test-key-rsa")
	rsaPS := &pubKey{key: rsaKey.key, alg: "PS512"}
	rsaPS256 := &pubKey{key: rsaKey.key, alg: "PS256"}
	tests := []struct {
		k          *pubKey
		configured string
		want       string
	}{
		{ed, "", "ed25519"},
		{ec, "", "ecdsa-p256-sha256"},
		{rsaKey, "", ""},
		{rsaKey, "rsa-v1_5-sha256", "rsa-v1_5-sha256"},
		{rsaPS, "", "rsa-pss-sha512"},
		{rsaPS, "rsa-v1_5-sha256", ""},
		{rsaPS256, "", ""},
		{ed, "ecdsa-p256-sha256", ""},
	}
	for i, tt := range tests {
		if got := httpSigAlgFor(tt.k, tt.configured); got != tt.want {
			t.Errorf("%d: got %q, want %q", i, got, tt.want)
		}
	}
}
