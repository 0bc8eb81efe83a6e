package webhookverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	jose "github.com/go-jose/go-jose/v4"
)

// testClock is the fixed time of the public-key tests.
var testClock = time.Unix(1_750_000_000, 0)

// served is the outcome of one request through a handler.
type served struct {
	status int
	reason string
	next   *recorder
	header http.Header
	repl   *caddy.Replacer
}

// serveReq sends a POST with headers and body through h and records the
// outcome, including response headers such as Retry-After.
func serveReq(t *testing.T, h *Handler, headers map[string]string, body string) served {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://example.com/hook",
		strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	repl := caddy.NewReplacer()
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	next := &recorder{}
	err := h.ServeHTTP(w, req, next)
	code, rsn := statusOf(t, err)
	if err == nil {
		code = http.StatusOK
		if next.body == nil || string(next.body) != body {
			t.Fatalf("forwarded body = %q, want %q", next.body, body)
		}
	}
	return served{status: code, reason: rsn, next: next, header: w.Header(), repl: repl}
}

// expect checks the status and reason of an outcome, and that the delivery
// was forwarded exactly when it was accepted.
func (s served) expect(t *testing.T, status int, rsn string) {
	t.Helper()
	if s.status != status || s.reason != rsn {
		t.Fatalf("got %d %q, want %d %q", s.status, s.reason, status, rsn)
	}
	wantCalls := 0
	if status == http.StatusOK {
		wantCalls = 1
	}
	if s.next.calls != wantCalls {
		t.Fatalf("forwarded %d times, want %d", s.next.calls, wantCalls)
	}
}

// tryProvision provisions h and returns the error.
func tryProvision(h *Handler) error {
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		h.Cleanup()
		return err
	}
	return h.Validate()
}

func ts(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

func newEd25519(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func newECDSA(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rsaKey is shared by the tests: generating RSA keys is slow.
var rsaKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func spkiPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func spkiBase64(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestDiscordPreset(t *testing.T) {
	setClock(t, testClock)
	pub, priv := newEd25519(t)
	h := provisioned(t, &Handler{Preset: "discord",
		PublicKeys: []PublicKey{{Value: hex.EncodeToString(pub)}}})

	body := `{"type":1}`
	sign := func(at time.Time, b string) map[string]string {
		sig := ed25519.Sign(priv, []byte(ts(at)+b))
		return map[string]string{"X-Signature-Ed25519": hex.EncodeToString(sig),
			"X-Signature-Timestamp": ts(at)}
	}

	got := serveReq(t, h, sign(testClock, body), body)
	got.expect(t, 200, "")
	if id, _ := got.repl.GetString("http.webhook_verify.key_id"); id != "1" {
		t.Errorf("key_id = %q, want 1", id)
	}
	serveReq(t, h, sign(testClock, body), body).expect(t, 409, "duplicate_delivery")
	serveReq(t, h, sign(testClock, body), body+" ").expect(t, 401, "invalid_signature")
	serveReq(t, h, sign(testClock.Add(-6*time.Minute), body), body).
		expect(t, 401, "stale_timestamp")

	short := sign(testClock, body)
	short["X-Signature-Ed25519"] = short["X-Signature-Ed25519"][:126]
	serveReq(t, h, short, body).expect(t, 400, "malformed_signature")
}

func TestSendGridPreset(t *testing.T) {
	setClock(t, testClock)
	key := newECDSA(t, elliptic.P256())
	h := provisioned(t, &Handler{Preset: "sendgrid",
		PublicKeys: []PublicKey{{Value: spkiBase64(t, &key.PublicKey)}}})

	body := `[{"event":"delivered"}]`
	digest := sha256.Sum256([]byte(ts(testClock) + body))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	headers := func(r, s *big.Int) map[string]string {
		der := derSig(t, r, s)
		return map[string]string{
			"X-Twilio-Email-Event-Webhook-Signature": base64.StdEncoding.EncodeToString(der),
			"X-Twilio-Email-Event-Webhook-Timestamp": ts(testClock),
		}
	}

	serveReq(t, h, headers(r, s), body).expect(t, 200, "")
	// (r, N-s) is a second valid signature of the same content: it is the
	// same delivery, and must not pass the replay guard
	malleated := new(big.Int).Sub(elliptic.P256().Params().N, s)
	serveReq(t, h, headers(r, malleated), body).expect(t, 409, "duplicate_delivery")

	bad := headers(r, s)
	bad["X-Twilio-Email-Event-Webhook-Signature"] = base64.StdEncoding.EncodeToString(
		append(derSig(t, r, s), 0))
	serveReq(t, h, bad, body).expect(t, 401, "invalid_signature")
}

func derSig(t testing.TB, r, s *big.Int) []byte {
	t.Helper()
	var sig [2]*big.Int
	sig[0], sig[1] = r, s
	der, err := asn1Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestStandardWebhooksAsymmetric(t *testing.T) {
	setClock(t, testClock)
	pub, priv := newEd25519(t)
	h := provisioned(t, &Handler{Preset: "standard_webhooks",
		PublicKeys: []PublicKey{{Value: "whpk_" + base64.StdEncoding.EncodeToString(pub),
			KeyID: "2026"}}})

	body := `{"type":"invoice.paid"}`
	sign := func(id string) map[string]string {
		sig := ed25519.Sign(priv, []byte(id+"."+ts(testClock)+"."+body))
		return map[string]string{"webhook-id": id, "webhook-timestamp": ts(testClock),
			"webhook-signature": "v1,AAAA v1a," + base64.StdEncoding.EncodeToString(sig)}
	}
	got := serveReq(t, h, sign("msg_1"), body)
	got.expect(t, 200, "")
	if id, _ := got.repl.GetString("http.webhook_verify.key_id"); id != "2026" {
		t.Errorf("key_id = %q, want 2026", id)
	}
	serveReq(t, h, sign("msg_1"), body).expect(t, 409, "duplicate_delivery")

	onlyV1 := sign("msg_2")
	onlyV1["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	serveReq(t, h, onlyV1, body).expect(t, 401, "missing_signature")

	otherID := sign("msg_3")
	otherID["webhook-id"] = "msg_4"
	serveReq(t, h, otherID, body).expect(t, 401, "invalid_signature")
}

// TestGenericPublicAlgorithms signs with each algorithm and key form and
// checks acceptance, a wrong key and a changed body.
func TestGenericPublicAlgorithms(t *testing.T) {
	setClock(t, testClock)
	edPub, edPriv := newEd25519(t)
	p384 := newECDSA(t, elliptic.P384())
	p521 := newECDSA(t, elliptic.P521())
	dir := t.TempDir()
	pkcs1 := filepath.Join(dir, "rsa.pem")
	os.WriteFile(pkcs1, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY",
		Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}), 0o600)
	spki := filepath.Join(dir, "spki.pem")
	os.WriteFile(spki, []byte(spkiPEM(t, &rsaKey.PublicKey)), 0o600)

	sha := func(h crypto.Hash, b []byte) []byte { d := h.New(); d.Write(b); return d.Sum(nil) }
	tests := []struct {
		alg, format, key string
		sign             func(msg []byte) []byte
	}{
		{"ed25519", "", spkiPEM(t, edPub), func(m []byte) []byte { return ed25519.Sign(edPriv, m) }},
		{"ecdsa-p384-sha384", "raw", spkiPEM(t, &p384.PublicKey), func(m []byte) []byte {
			r, s, _ := ecdsa.Sign(rand.Reader, p384, sha(crypto.SHA384, m))
			out := make([]byte, 96)
			r.FillBytes(out[:48])
			s.FillBytes(out[48:])
			return out
		}},
		{"ecdsa-p521-sha512", "der", spkiPEM(t, &p521.PublicKey), func(m []byte) []byte {
			sig, _ := ecdsa.SignASN1(rand.Reader, p521, sha(crypto.SHA512, m))
			return sig
		}},
		{"rsa-pkcs1-sha256", "", pkcs1, func(m []byte) []byte {
			sig, _ := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, sha(crypto.SHA256, m))
			return sig
		}},
		{"rsa-pss-sha256", "", spki, func(m []byte) []byte {
			sig, _ := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, sha(crypto.SHA256, m), nil)
			return sig
		}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			h := provisioned(t, &Handler{
				PublicKeys:      []PublicKey{{Value: tt.key, KeyID: "k1"}},
				Algorithm:       tt.alg,
				SignatureFormat: tt.format,
				SignatureHeader: "X-Sig", SignatureEncoding: "base64url",
				TimestampHeader: "X-Time", SignedContent: "{method}:{timestamp}:{body}",
				KeyIDHeader: "X-Key",
			})
			body := `{"alg":"` + tt.alg + `"}`
			sig := tt.sign([]byte("POST:" + ts(testClock) + ":" + body))
			hdr := map[string]string{"X-Time": ts(testClock), "X-Key": "k1",
				"X-Sig": base64.RawURLEncoding.EncodeToString(sig)}

			serveReq(t, h, hdr, body).expect(t, 200, "")
			serveReq(t, h, hdr, body).expect(t, 409, "duplicate_delivery")
			serveReq(t, h, hdr, body+"x").expect(t, 401, "invalid_signature")
			hdr["X-Key"] = "k2"
			serveReq(t, h, hdr, body).expect(t, 401, "unknown_key")
		})
	}
}

// TestPublicKeyConfigErrors checks that unusable key configurations fail
// to load with an error that names the field and never echoes a key.
func TestPublicKeyConfigErrors(t *testing.T) {
	edPub, edPriv := newEd25519(t)
	privDER, _ := x509.MarshalPKCS8PrivateKey(edPriv)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256 := newECDSA(t, elliptic.P256())

	tests := []struct {
		name string
		h    Handler
		want string
	}{
		{"no keys at all", Handler{Preset: "github"},
			"secrets, public_keys or jwks: at least one source of keys is required"},
		{"public key with hmac", Handler{Preset: "github",
			PublicKeys: []PublicKey{{Value: hex.EncodeToString(edPub)}}},
			"public_keys, jwks: algorithm hmac-sha256 verifies with secrets"},
		{"secret with discord", Handler{Preset: "discord", Secrets: []Secret{{Value: "x"}}},
			"secrets: algorithm \"ed25519\" verifies with public keys"},
		{"private key PEM", Handler{Preset: "discord", PublicKeys: []PublicKey{{Value: privPEM}}},
			"public_keys: key 1: PEM block \"PRIVATE KEY\" is not a public key or certificate"},
		{"private JWK", Handler{Preset: "discord", PublicKeys: []PublicKey{{Value: jwkJSON(t,
			edPriv, "a")}}}, "public_keys: key 1: is a private key"},
		{"symmetric JWK", Handler{Preset: "jws", PublicKeys: []PublicKey{{Value: `{"kty":"oct",` +
			`"k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM0NTY3"}`}}},
			"public_keys: key 1: symmetric JWK (kty oct)"},
		{"small RSA", Handler{Algorithm: "rsa-pkcs1-sha256", SignatureHeader: "X-Sig",
			PublicKeys: []PublicKey{{Value: spkiPEM(t, &small.PublicKey)}}},
			"public_keys: key 1: RSA key has 1024 bits, want 2048 to 8192"},
		{"wrong key type", Handler{Preset: "discord",
			PublicKeys: []PublicKey{{Value: spkiBase64(t, &p256.PublicKey), KeyID: "sg"}}},
			"public_keys: key sg is an ECDSA P-256 key, which algorithm \"ed25519\" cannot use"},
		{"not a key", Handler{Preset: "discord", PublicKeys: []PublicKey{{Value: "abc"}}},
			"public_keys: key 1: not an inline key in any accepted form, nor a readable file"},
		{"der with ed25519", Handler{Preset: "discord", SignatureFormat: "der",
			PublicKeys: []PublicKey{{Value: hex.EncodeToString(edPub)}}},
			"signature_format: der applies to the ecdsa-* algorithms only"},
		{"hs256 in jws", Handler{Preset: "jws", Algorithm: "HS256",
			PublicKeys: []PublicKey{{Value: hex.EncodeToString(edPub)}}},
			"algorithm: HS256 is not accepted"},
		{"none in jws", Handler{Preset: "jws", Algorithm: "ES256 none",
			PublicKeys: []PublicKey{{Value: hex.EncodeToString(edPub)}}},
			"algorithm: none is not accepted"},
		{"http jwks", Handler{Preset: "jws", JWKS: []*JWKSSource{{URL: "http://example.com/k"}}},
			"jwks: source 1: url: \"http://example.com/k\" must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryProvision(&tt.h)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "BEGIN") {
				t.Fatalf("error echoes key material: %v", err)
			}
		})
	}
}

func asn1Marshal(sig [2]*big.Int) ([]byte, error) {
	return asn1.Marshal(struct{ R, S *big.Int }{sig[0], sig[1]})
}

// jwkJSON writes key as a JWK with the given kid.
func jwkJSON(t testing.TB, key any, kid string) string {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key, KeyID: kid}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
