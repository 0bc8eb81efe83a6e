package webhookverify

import (
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
