package integration

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// pubSender signs deliveries for one public-key route.
type pubSender struct {
	name string
	// directive is the route's webhook_verify directive.
	directive string
	// sign sets the signature headers of d, made at the given time.
	sign func(t *testing.T, d *delivery, at time.Time)
}

// delivery is a fresh delivery to the sender's route. Its body holds UTF-8,
// escapes, a CR LF and trailing spaces, which must all arrive unchanged.
func (s pubSender) delivery(t *testing.T) *delivery {
	d := &delivery{method: http.MethodPost, path: unique("/" + s.name),
		header: http.Header{"Content-Type": {"application/json"}},
		body:   fmt.Appendf(nil, "{\"seq\":%d,\"text\":\"caf\u00e9 \\u2603\"}\r\n  ", seq.Add(1))}
	s.sign(t, d, time.Now())
	return d
}

// pubSenders covers the public-key presets and a generic jws_compact
// scheme with its own body hash claim.
func pubSenders(t *testing.T, keySetURL string) ([]pubSender, []partnerKey) {
	discord := newEdKey(t, "")
	sendgrid := newECKey(t, "", elliptic.P256(), jose.ES256)
	standard := newEdKey(t, "")
	detached := newEdKey(t, "jws-ed-1")
	plaid := newECKey(t, "plaid-es-1", elliptic.P256(), jose.ES256)
	compact := newECKey(t, "compact-es384", elliptic.P384(), jose.ES384)

	spki, err := x509.MarshalPKIXPublicKey(sendgrid.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	compactJWK, err := json.Marshal(compact.jwk())
	if err != nil {
		t.Fatal(err)
	}
	jwkFile := filepath.Join(t.TempDir(), "compact.jwk")
	if err := os.WriteFile(jwkFile, compactJWK, 0o600); err != nil {
		t.Fatal(err)
	}

	senders := []pubSender{
		{
			name: "discord",
			directive: "webhook_verify discord {\n\t\t\tpublic_key " +
				hex.EncodeToString(discord.priv.Public().(ed25519.PublicKey)) + "\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				sig := ed25519.Sign(discord.priv.(ed25519.PrivateKey),
					append([]byte(unix(at)), d.body...))
				d.header.Set("X-Signature-Ed25519", hex.EncodeToString(sig))
				d.header.Set("X-Signature-Timestamp", unix(at))
			},
		},
		{
			name: "sendgrid",
			directive: "webhook_verify sendgrid {\n\t\t\tpublic_key " +
				base64.StdEncoding.EncodeToString(spki) + "\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				sum := sha256.Sum256(append([]byte(unix(at)), d.body...))
				sig, err := ecdsa.SignASN1(rand.Reader, sendgrid.priv.(*ecdsa.PrivateKey), sum[:])
				if err != nil {
					t.Fatal(err)
				}
				d.header.Set("X-Twilio-Email-Event-Webhook-Signature",
					base64.StdEncoding.EncodeToString(sig))
				d.header.Set("X-Twilio-Email-Event-Webhook-Timestamp", unix(at))
			},
		},
		{
			name: "standard_webhooks",
			directive: "webhook_verify standard_webhooks {\n\t\t\tpublic_key whpk_" +
				base64.StdEncoding.EncodeToString(standard.priv.Public().(ed25519.PublicKey)) +
				"\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				id := nextID("msg")
				sig := ed25519.Sign(standard.priv.(ed25519.PrivateKey),
					append([]byte(id+"."+unix(at)+"."), d.body...))
				d.header.Set("Webhook-Id", id)
				d.header.Set("Webhook-Timestamp", unix(at))
				d.header.Set("Webhook-Signature", "v1a,"+base64.StdEncoding.EncodeToString(sig))
			},
		},
		{
			name:      "jws",
			directive: "webhook_verify jws {\n\t\t\tjwks " + keySetURL + "\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				opts := (&jose.SignerOptions{}).WithHeader("iat", at.Unix())
				d.header.Set("X-JWS-Signature", detached.detached(t, d.body, opts))
			},
		},
		{
			name:      "jws_unencoded",
			directive: "webhook_verify jws {\n\t\t\tjwks " + keySetURL + "\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				opts := (&jose.SignerOptions{}).WithBase64(false)
				d.header.Set("X-JWS-Signature", detached.detached(t, d.body, opts))
			},
		},
		{
			name:      "plaid",
			directive: "webhook_verify plaid {\n\t\t\tjwks " + keySetURL + "\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				d.header.Set("Plaid-Verification",
					plaid.bodyToken(t, d.body, "request_body_sha256", at))
			},
		},
		{
			name: "compact",
			directive: "webhook_verify {\n\t\t\tsignature_header X-Token\n" +
				"\t\t\tsignature_format jws_compact\n\t\t\tbody_hash_claim body_sha256\n" +
				"\t\t\talgorithm ES384\n\t\t\tpublic_key " + jwkFile + "\n\t\t}",
			sign: func(t *testing.T, d *delivery, at time.Time) {
				d.header.Set("X-Token", compact.bodyToken(t, d.body, "body_sha256", at))
			},
		},
	}
	return senders, []partnerKey{detached, plaid}
}

// TestPublicKeyPresets checks each public-key preset end to end: a
// delivery signed as the provider signs it reaches the upstream byte for
// byte, and the same delivery with one byte of its body changed is refused.
func TestPublicKeyPresets(t *testing.T) {
	ks := newKeySetServer(t)
	senders, published := pubSenders(t, ks.url())
	ks.publish(published...)
	up := newUpstream(t)
	site := ""
	for _, s := range senders {
		site += fmt.Sprintf("\thandle /%s {\n\t\t%s\n\t\treverse_proxy %s\n\t}\n", s.name,
			s.directive, up.addr())
	}
	inst := startCaddy(t, site+refusalPage)
	awaitKeys(t, inst, "/jws", published[0])

	for _, s := range senders {
		t.Run(s.name, func(t *testing.T) {
			expectForwarded(t, inst, up, s.delivery(t), http.StatusOK)

			d := s.delivery(t)
			d.body[len(d.body)-3] ^= 0x01
			expectReason(t, inst, up, d, http.StatusUnauthorized, "invalid_signature")
		})
	}

	t.Run("compact with an algorithm off the allowlist", func(t *testing.T) {
		d := senders[len(senders)-1].delivery(t)
		other := newECKey(t, "compact-es384", elliptic.P256(), jose.ES256)
		d.header.Set("X-Token", other.bodyToken(t, d.body, "body_sha256", time.Now()))
		expectReason(t, inst, up, d, http.StatusUnauthorized, "disallowed_algorithm")
	})
}
