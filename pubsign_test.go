package webhookverify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// signedAt is the signing time of the round trips, and the time verify
// checks them at.
const signedAt = "1700000000"

// roundTrip is one scheme signed with a keygen key and verified with its
// public half.
type roundTrip struct {
	name string
	// typ is the keygen --type of the key.
	typ string
	// scheme are the scheme flags of sign; verify takes verifyScheme when
	// set, else the same.
	scheme, verifyScheme []string
	// public is verify's --public-key: a field keygen printed (whpk, hex,
	// spki_base64) or a file it wrote (jwks, pem).
	public string
	// byKID is set when verify reports the key by its kid, as for keys
	// from a JWKS; a key given without one is reported as "1".
	byKID bool
}

// rawScheme are the flags of a generic scheme over signed_content that
// names its key in X-Key-Id.
func rawScheme(alg string, extra ...string) []string {
	return append([]string{"--algorithm", alg, "--signature-header", "X-Sig",
		"--signature-encoding", "base64", "--signed-content", "{timestamp}.{body}",
		"--timestamp-header", "X-Time", "--key-id-header", "X-Key-Id"}, extra...)
}

// compactScheme are the flags of a generic jws_compact scheme.
var compactScheme = []string{"--signature-header", "X-Token", "--signature-format",
	"jws_compact", "--body-hash-claim", "body_sha256"}

// roundTrips lists every public-key preset with its key type, the JWS
// formats with every key type, and the raw algorithms with each key type
// that fits them.
func roundTrips() []roundTrip {
	rts := []roundTrip{
		{name: "discord", typ: "ed25519", scheme: []string{"--preset", "discord"}, public: "hex"},
		{name: "sendgrid", typ: "ecdsa-p256", scheme: []string{"--preset", "sendgrid"},
			public: "spki_base64"},
		{name: "standard_webhooks v1a", typ: "ed25519",
			scheme: []string{"--preset", "standard_webhooks"}, public: "whpk"},
		{name: "plaid", typ: "ecdsa-p256", scheme: []string{"--preset", "plaid"},
			public: "jwks", byKID: true},
		{name: "generic ed25519, algorithm from the key", typ: "ed25519",
			scheme: rawScheme("")[2:], verifyScheme: rawScheme("ed25519"), public: "pem"},
		{name: "generic rsa, algorithm from the key", typ: "rsa-2048",
			scheme:       rawScheme("")[2:],
			verifyScheme: rawScheme("rsa-pkcs1-sha256"), public: "pem"},
	}
	for _, typ := range slices.Sorted(func(yield func(string) bool) {
		for typ := range keyTypes {
			if !yield(typ) {
				return
			}
		}
	}) {
		rts = append(rts,
			roundTrip{name: "jws " + typ, typ: typ, scheme: []string{"--preset", "jws"},
				public: "jwks", byKID: true},
			roundTrip{name: "jws_compact " + typ, typ: typ, scheme: compactScheme,
				public: "jwks", byKID: true})
	}
	raw := map[string][]string{
		"ed25519":    {"ed25519"},
		"ecdsa-p256": {"ecdsa-p256-sha256", "ecdsa-p256-sha256 der"},
		"ecdsa-p384": {"ecdsa-p384-sha384", "ecdsa-p384-sha384 der"},
		"rsa-2048":   {"rsa-pkcs1-sha256", "rsa-pss-sha256", "rsa-pkcs1-sha512", "rsa-pss-sha384"},
		"rsa-3072":   {"rsa-pkcs1-sha256", "rsa-pss-sha256"},
		"rsa-4096":   {"rsa-pkcs1-sha384", "rsa-pss-sha512"},
	}
	for typ, algs := range raw {
		for _, a := range algs {
			alg, format, _ := strings.Cut(a, " ")
			scheme := rawScheme(alg)
			if format != "" {
				scheme = rawScheme(alg, "--signature-format", format)
			}
			rts = append(rts, roundTrip{name: "raw " + a + " " + typ, typ: typ, scheme: scheme,
				public: "pem"})
		}
	}
	return rts
}

// checkRoundTrips signs a delivery for each round trip with the sign
// command and the key's private JWK, and checks it with the verify command
// and the public key: it verifies as sent, and not with one byte changed.
func checkRoundTrips(t *testing.T, keys map[string]generated) {
	body := `{"event":"invoice.paid","amount":1234}`
	for _, rt := range roundTrips() {
		t.Run(rt.name, func(t *testing.T) {
			g := keys[rt.typ]
			public := g.fields[rt.public]
			if public == "" {
				t.Fatalf("keygen printed no %s for %s", rt.public, rt.typ)
			}
			verifyScheme := rt.scheme
			if rt.verifyScheme != nil {
				verifyScheme = rt.verifyScheme
			}
			headers := signWith(t, g.files.private, rt.scheme, body)
			keyID := "1"
			if rt.byKID {
				keyID = g.fields["key_id"]
			}
			if h := headers.Get("X-Key-Id"); slices.Contains(rt.scheme, "X-Key-Id") &&
				h != g.fields["key_id"] {
				t.Errorf("X-Key-Id = %q, want the key's kid", h)
			}

			want := "verified: key_id=" + keyID + " id=" + headers.Get("Webhook-Id") +
				" timestamp=" + signedAt + "\n"
			if got := verifySavedWith(t, public, verifyScheme, headers, body); got != want {
				t.Errorf("verify: %q, want %q", got, want)
			}
			tampered := strings.Replace(body, "1234", "1235", 1)
			want = "rejected: invalid_signature (status 401)\n"
			if got := verifySavedWith(t, public, verifyScheme, headers, tampered); got != want {
				t.Errorf("verify of a tampered body: %q, want %q", got, want)
			}
		})
	}
}

// signWith runs the sign command with a private key and returns the headers
// it printed.
func signWith(t *testing.T, privateKey string, scheme []string, body string) http.Header {
	t.Helper()
	args := append([]string{"--private-key", privateKey, "--timestamp", signedAt,
		"--body", body}, scheme...)
	out, err := run(t, signCommand(), args...)
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	return parseHeaders(out)
}

// verifySavedWith saves a request with the headers and body and runs the
// verify command on it with the public key.
func verifySavedWith(t *testing.T, public string, scheme []string, h http.Header,
	body string) string {
	t.Helper()
	var saved strings.Builder
	saved.WriteString("POST /in HTTP/1.1\r\nHost: hooks.example\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n")
	for name, vs := range h {
		for _, v := range vs {
			saved.WriteString(name + ": " + v + "\r\n")
		}
	}
	saved.WriteString("\r\n" + body)
	file := filepath.Join(t.TempDir(), "request.http")
	if err := os.WriteFile(file, []byte(saved.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--public-key", public, "--request", file, "--at", signedAt},
		scheme...)
	out, _ := run(t, verifyCommand(), args...)
	// after a rejection cobra adds the error and the usage
	return strings.SplitAfterN(out, "\n", 2)[0]
}

// checkSendWithKey posts a delivery signed with a keygen key to a server
// running the handler with the key's JWKS.
func checkSendWithKey(t *testing.T, g generated) {
	h := provisioned(t, &Handler{Preset: "jws", PublicKeys: []PublicKey{{Value: g.files.jwks}}})
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repl := caddy.NewReplacer()
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			got, _ = io.ReadAll(r.Body)
			w.Write([]byte("taken by " + repl.ReplaceAll("{http.webhook_verify.key_id}", "")))
			return nil
		})
		if err := h.ServeHTTP(w, r, next); err != nil {
			code, _ := statusOf(t, err)
			w.WriteHeader(code)
		}
	}))
	defer srv.Close()

	out, err := run(t, sendCommand(), srv.URL, "--preset", "jws", "--private-key",
		g.files.private, "--body", `{"id":"evt_1"}`)
	want := "200 OK\ntaken by " + g.fields["key_id"] + "\n"
	if err != nil || out != want || string(got) != `{"id":"evt_1"}` {
		t.Fatalf("send: %q, %v, want %q; upstream got %q", out, err, want, got)
	}

	out, err = run(t, sendCommand(), srv.URL, "--preset", "jws", "--private-key",
		g.files.private, "--kid", "someone-else", "--body", `{"id":"evt_2"}`)
	if !strings.HasPrefix(out, "401 Unauthorized\n\n") || err == nil {
		t.Fatalf("send naming another kid: %q, want 401", out)
	}
}

// TestSignKeyErrors checks that sign refuses a key that does not fit the
// scheme, and a scheme that needs another kind of key.
func TestSignKeyErrors(t *testing.T) {
	ed := runKeygen(t).files.private
	ec := runKeygen(t, "--type", "ecdsa-p256").files.private
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--preset", "discord", "--private-key", ec},
			`--private-key: algorithm "ed25519" cannot sign with the ECDSA P-256 key ` +
				`(its JWK names alg ES256)`},
		{[]string{"--preset", "plaid", "--private-key", ed},
			`--private-key: none of the algorithms ["ES256"] fits the Ed25519 key ` +
				`(its JWK names alg EdDSA)`},
		{rawScheme("ecdsa-p384-sha384", "--private-key", ec),
			`--private-key: algorithm "ecdsa-p384-sha384" cannot sign with the ECDSA P-256 ` +
				`key (its JWK names alg ES256)`},
		{[]string{"--preset", "github", "--private-key", ed},
			`--private-key: algorithm "hmac-sha256" signs with a secret; use --secret`},
		{[]string{"--preset", "discord"},
			`--private-key: algorithm "ed25519" signs with a private key`},
		{[]string{"--preset", "github", "--kid", "k1"},
			"--kid: names the key of --private-key or --secret, and neither is set"},
		{[]string{"--preset", "discord", "--private-key", "/nonexistent/webhook/key.jwk"},
			"--private-key: open /nonexistent/webhook/key.jwk: no such file or directory"},
	}
	for _, tc := range cases {
		_, err := run(t, signCommand(), append(tc.args, "--body", "{}")...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("sign %v:\n got %v\nwant %s", tc.args, err, tc.want)
		}
	}
}
