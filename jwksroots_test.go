package webhookverify

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddyserver/caddy/v2"
)

// TestJWKSPoolKeyFollowsTrustRoots checks that sources naming the same
// trust_roots file share a cache only while the file holds the same
// certificates, so that a reload after the file changed uses the new roots.
func TestJWKSPoolKeyFollowsTrustRoots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roots.pem")
	write := func(certs ...*x509.Certificate) {
		t.Helper()
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := func() string {
		t.Helper()
		cfg, err := (&JWKSSource{URL: "https://keys.example/jwks.json", TrustRoots: path}).
			resolved(caddy.NewReplacer())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseTrustRoots(cfg.TrustRoots, cfg.rootsPEM); err != nil {
			t.Fatal(err)
		}
		return cfg.poolKey()
	}
	first, second := selfSigned(t, "first root"), selfSigned(t, "second root")

	write(first)
	before := key()
	if again := key(); again != before {
		t.Errorf("the same roots file gave two pool keys: %s, %s", before, again)
	}
	write(first, second)
	if after := key(); after == before {
		t.Errorf("pool key %s unchanged after the roots file changed", after)
	}
}

// selfSigned makes a CA certificate that signs itself.
func selfSigned(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	key := newECDSA(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             testClock.Add(-time.Hour),
		NotAfter:              testClock.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestChainExpiryEndsKey checks that a key trusted through its certificate
// chain is no longer a candidate once the chain has expired, without a
// new fetch of its set.
func TestChainExpiryEndsKey(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	k := &pubKey{kid: "k", name: "k", validUntil: at.Add(time.Hour)}
	set := newKeySet([]*pubKey{k})
	all := func(*pubKey) bool { return true }

	setClock(t, at)
	if got := set.candidates("k", all, nil); len(got) != 1 {
		t.Fatalf("before expiry: %d candidates, want 1", len(got))
	}
	setClock(t, at.Add(2*time.Hour))
	if got := set.candidates("k", all, nil); len(got) != 0 {
		t.Fatalf("after expiry: %d candidates, want 0", len(got))
	}
}

// TestJWKKeyOps checks that a JWK for another use than verifying, by its
// key_ops, is refused, and one that lists verify is taken.
func TestJWKKeyOps(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jose.JSONWebKey{Key: pub, KeyID: "k"}.MarshalJSON()
	with := func(ops string) []byte {
		return append(raw[:len(raw)-1:len(raw)-1], []byte(`,"key_ops":`+ops+`}`)...)
	}
	if _, err := parseJWK(with(`["encrypt"]`)); err == nil {
		t.Error(`key_ops ["encrypt"] accepted`)
	}
	if _, err := parseJWK(with(`["verify"]`)); err != nil {
		t.Errorf(`key_ops ["verify"] refused: %v`, err)
	}
	if _, err := parseJWK(raw); err != nil {
		t.Errorf("no key_ops refused: %v", err)
	}
}
