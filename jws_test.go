package webhookverify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

type jwsVector struct {
	Name     string          `json:"name"`
	Source   string          `json:"source"`
	JWK      json.RawMessage `json:"jwk"`
	Compact  string          `json:"compact"`
	HMACKey  string          `json:"hmac_key"`
	Detached string          `json:"detached"`
	Payload  string          `json:"payload"`
	B64      bool            `json:"b64"`
	Want     string          `json:"want"`
}

// TestJWSPublishedVectors verifies the published examples exactly: the
// ECDSA and Ed25519 ones as detached JWS deliveries whose body is the
// payload, the HMAC ones (checked here against their published key) as
// deliveries that a public-key handler must refuse.
func TestJWSPublishedVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/jws_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []jwsVector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != 5 {
		t.Fatalf("got %d vectors, want 5", len(file.Vectors))
	}
	edPub, _ := newEd25519(t)

	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			header, body := v.Detached, v.Payload
			key := string(v.JWK)
			if v.Compact != "" {
				parts := strings.Split(v.Compact, ".")
				payload, err := base64.RawURLEncoding.DecodeString(parts[1])
				if err != nil {
					t.Fatal(err)
				}
				header, body = parts[0]+".."+parts[2], string(payload)
			} else {
				checkHMACVector(t, v)
				key = hex.EncodeToString(edPub)
			}

			h := provisioned(t, &Handler{Preset: "jws", DisableReplay: true,
				PublicKeys: []PublicKey{{Value: key}}})
			hdr := map[string]string{"X-JWS-Signature": header}
			if v.Want != "accepted" {
				serveReq(t, h, hdr, body).expect(t, 401, v.Want)
				return
			}
			serveReq(t, h, hdr, body).expect(t, 200, "")
			serveReq(t, h, hdr, body+" ").expect(t, 401, "invalid_signature")
		})
	}
}

// checkHMACVector recomputes a published HMAC JWS, proving the vector and
// its signing input (base64url or, with b64 false, raw payload) are right.
func checkHMACVector(t *testing.T, v jwsVector) {
	t.Helper()
	key, err := base64.RawURLEncoding.DecodeString(v.HMACKey)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(v.Detached, ".")
	payload := v.Payload
	if v.B64 {
		payload = base64.RawURLEncoding.EncodeToString([]byte(v.Payload))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + payload))
	if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != parts[2] {
		t.Fatalf("published HMAC does not recompute: got %s, want %s", got, parts[2])
	}
}

// signJWS signs payload with key, adding the extra protected headers.
func signJWS(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, payload []byte,
	opts *jose.SignerOptions) *jose.JSONWebSignature {
	t.Helper()
	if opts == nil {
		opts = &jose.SignerOptions{}
	}
	if kid != "" {
		opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestJWSDetachedUnencoded(t *testing.T) {
	setClock(t, testClock)
	pub, priv := newEd25519(t)
	h := provisioned(t, &Handler{Preset: "jws", Algorithm: "EdDSA",
		PublicKeys: []PublicKey{{Value: jwkJSON(t, pub, "ob-1")}}})
	body := `{"Data":{"Amount":"$.02"}}`

	opts := (&jose.SignerOptions{}).WithBase64(false)
	opts.WithHeader("iat", testClock.Unix())
	obj := signJWS(t, jose.EdDSA, priv, "ob-1", []byte(body), opts)
	detached, err := obj.DetachedCompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"X-JWS-Signature": detached}

	got := serveReq(t, h, hdr, body)
	got.expect(t, 200, "")
	ts, _ := got.repl.GetString("http.webhook_verify.timestamp")
	if want := strconv.FormatInt(testClock.Unix(), 10); ts != want {
		t.Errorf("timestamp placeholder = %q, want %q", ts, want)
	}
	serveReq(t, h, hdr, body).expect(t, 409, "duplicate_delivery")
	serveReq(t, h, hdr, body+"\n").expect(t, 401, "invalid_signature")

	// b64 false without "crit": a receiver must not guess the signing input
	prot := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","b64":false}`))
	sig := ed25519.Sign(priv, []byte(prot+"."+body))
	noCrit := prot + ".." + base64.RawURLEncoding.EncodeToString(sig)
	serveReq(t, h, map[string]string{"X-JWS-Signature": noCrit}, body).
		expect(t, 400, "malformed_signature")

	// an old iat in the protected header is stale
	old := (&jose.SignerOptions{}).WithHeader("iat", testClock.Add(-time.Hour).Unix())
	stale, _ := signJWS(t, jose.EdDSA, priv, "ob-1", []byte(body), old).
		DetachedCompactSerialize()
	serveReq(t, h, map[string]string{"X-JWS-Signature": stale}, body).
		expect(t, 401, "stale_timestamp")
}

func TestJWSCompactBodyHash(t *testing.T) {
	setClock(t, testClock)
	key := newECDSA(t, elliptic.P256())
	h := provisioned(t, &Handler{Preset: "plaid",
		PublicKeys: []PublicKey{{Value: jwkJSON(t, &key.PublicKey, "plaid-1")}}})
	body := `{"webhook_type":"TRANSACTIONS"}`

	token := func(claims map[string]any, signKey any, alg jose.SignatureAlgorithm,
		kid string) map[string]string {
		payload, _ := json.Marshal(claims)
		s, err := signJWS(t, alg, signKey, kid, payload, nil).CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Plaid-Verification": s}
	}
	sum := sha256.Sum256([]byte(body))
	good := map[string]any{"iat": testClock.Unix(), "request_body_sha256": hex.EncodeToString(sum[:])}

	serveReq(t, h, token(good, key, jose.ES256, "plaid-1"), body).expect(t, 200, "")
	serveReq(t, h, token(good, key, jose.ES256, "plaid-1"), body+" ").
		expect(t, 401, "invalid_signature")

	staleClaims := map[string]any{"iat": testClock.Add(-10 * time.Minute).Unix(),
		"request_body_sha256": good["request_body_sha256"]}
	serveReq(t, h, token(staleClaims, key, jose.ES256, "plaid-1"), body).
		expect(t, 401, "stale_timestamp")
	noIat := map[string]any{"request_body_sha256": good["request_body_sha256"]}
	serveReq(t, h, token(noIat, key, jose.ES256, "plaid-1"), body).
		expect(t, 401, "missing_timestamp")

	// a key the message names or embeds is never used
	attacker := newECDSA(t, elliptic.P256())
	serveReq(t, h, token(good, attacker, jose.ES256, "attacker"), body).
		expect(t, 401, "unknown_key")
	embedded := (&jose.SignerOptions{EmbedJWK: true})
	payload, _ := json.Marshal(good)
	s, _ := signJWS(t, jose.ES256, attacker, "", payload, embedded).CompactSerialize()
	serveReq(t, h, map[string]string{"Plaid-Verification": s}, body).
		expect(t, 401, "invalid_signature")

	// algorithms off the allowlist, including none
	_, edPriv := newEd25519(t)
	serveReq(t, h, token(good, edPriv, jose.EdDSA, "plaid-1"), body).
		expect(t, 401, "disallowed_algorithm")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(payload) + "."
	serveReq(t, h, map[string]string{"Plaid-Verification": none}, body).
		expect(t, 401, "disallowed_algorithm")
	serveReq(t, h, map[string]string{"Plaid-Verification": "not.a-jws"}, body).
		expect(t, 400, "malformed_signature")
}

// TestJWSDigestCanonical checks that texts that carry one JWS, with
// whitespace or other spare bits in the last base64 character, name one
// delivery for the replay guard.
func TestJWSDigestCanonical(t *testing.T) {
	body := []byte(`{"pay":100}`)
	// 25 bytes: the last base64url character holds 4 spare bits
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"a1"}`)[:25])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, hdr[len(hdr)-1])
	spare := hdr[:len(hdr)-1] + string(alphabet[last^1])

	base := hdr + "..c2lnbmF0dXJl"
	want := jwsDigest(base, body)
	for _, v := range []string{
		hdr[:5] + " " + hdr[5:] + "..c2lnbmF0dXJl",
		hdr + "\t..c2lnbmF0dXJl",
		spare + "..c2lnbmF0dXJl",
		hdr + "..c2lnbmF0dXJm", // another signature text
	} {
		if got := jwsDigest(v, body); !bytes.Equal(got, want) {
			t.Errorf("jwsDigest(%q) differs from the canonical text's", v)
		}
	}
	if bytes.Equal(jwsDigest(base, []byte(`{"pay":101}`)), want) {
		t.Error("another body gives the same digest")
	}
	other := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"a1"}`))
	if bytes.Equal(jwsDigest(other+"..c2lnbmF0dXJl", body), want) {
		t.Error("another header gives the same digest")
	}
}
