package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newCA makes a self-signed root CA, or an intermediate when parent is set.
func newCA(t *testing.T, name string, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(seq.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	if parent == nil {
		// self-signed: the root is its own issuer
		parent = &testCA{cert: tmpl, key: key}
	}
	return &testCA{cert: issue(t, tmpl, key.Public(), parent), key: key}
}

// issue signs tmpl for pub with parent's key.
func issue(t *testing.T, tmpl *x509.Certificate, pub crypto.PublicKey,
	parent *testCA) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.cert, pub, parent.key)
	if err != nil {
		t.Fatalf("issuing %s: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// leaf issues a signing certificate for k, valid from notBefore to notAfter.
func (ca *testCA) leaf(t *testing.T, k partnerKey,
	notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(seq.Add(1)),
		Subject:      pkix.Name{CommonName: k.kid},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	return issue(t, tmpl, k.priv.Public(), ca)
}

// TestJWKSTrustRoots checks x5c chain validation against trust_roots: keys
// whose chain leads to the root verify, directly or through an
// intermediate; keys with a chain to another CA, an expired leaf or no
// chain are skipped, each with its cause logged; leaf expiry is reported,
// at warn within 30 days.
func TestJWKSTrustRoots(t *testing.T) {
	root := newCA(t, "Partner Root CA", nil)
	inter := newCA(t, "Partner Issuing CA", root)
	other := newCA(t, "Unrelated CA", nil)
	now := time.Now()
	day := 24 * time.Hour

	soon := newEdKey(t, "expires-soon")
	soon.certs = []*x509.Certificate{root.leaf(t, soon, now.Add(-day), now.Add(10*day))}
	chained := newEdKey(t, "via-intermediate")
	chained.certs = []*x509.Certificate{inter.leaf(t, chained, now.Add(-day), now.Add(300*day)),
		inter.cert}
	foreign := newEdKey(t, "foreign")
	foreign.certs = []*x509.Certificate{other.leaf(t, foreign, now.Add(-day), now.Add(300*day))}
	expired := newEdKey(t, "expired")
	expired.certs = []*x509.Certificate{root.leaf(t, expired, now.Add(-300*day),
		now.Add(-day))}
	bare := newEdKey(t, "no-chain")

	roots := filepath.Join(t.TempDir(), "roots.pem")
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.cert.Raw})
	if err := os.WriteFile(roots, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ks := newKeySetServer(t, soon, chained, foreign, expired, bare)
	up := newUpstream(t)
	inst := startCaddy(t, jwsRoute("/partner", up, ks.url(), "min_refresh 1s",
		"trust_roots "+roots)+refusalPage)
	awaitKeys(t, inst, "/partner", soon)

	for _, k := range []partnerKey{soon, chained} {
		expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), k), http.StatusOK)
	}
	for _, k := range []partnerKey{foreign, expired, bare} {
		expectReason(t, inst, up, jwsDelivery(t, unique("/partner"), k),
			http.StatusUnauthorized, "unknown_key")
	}

	causes := map[string]string{}
	for _, e := range handlerLines(t, inst, "jwks key skipped") {
		causes[e.str("key_id")] = e.str("cause")
	}
	wantCauses := map[string]string{
		"foreign":  "x5c chain: x509: certificate signed by unknown authority",
		"expired":  "x5c chain: x509: certificate has expired or is not yet valid: ",
		"no-chain": "no x5c certificate chain, and trust_roots requires one",
	}
	for kid, want := range wantCauses {
		got := causes[kid]
		if strings.HasSuffix(want, ": ") && strings.HasPrefix(got, want) {
			continue
		}
		if got != want {
			t.Errorf("skip cause of %s = %q, want %q", kid, got, want)
		}
	}
	if len(causes) != len(wantCauses) {
		t.Errorf("skipped keys %v, want exactly %d", causes, len(wantCauses))
	}

	expiry := map[string]logEntry{}
	for _, e := range handlerLines(t, inst, "jwks key certificate expiry") {
		expiry[e.str("key_id")] = e
	}
	for kid, want := range map[string]struct {
		level    string
		notAfter time.Time
	}{
		"expires-soon":     {"warn", soon.certs[0].NotAfter},
		"via-intermediate": {"debug", chained.certs[0].NotAfter},
	} {
		e, ok := expiry[kid]
		if !ok {
			t.Errorf("no certificate expiry logged for %s", kid)
			continue
		}
		// Caddy's JSON log writes times as Unix seconds
		got := e["cert_not_after"]
		if e.str("level") != want.level || got != float64(want.notAfter.Unix()) {
			t.Errorf("expiry of %s logged at %s with cert_not_after %v, want %s %d", kid,
				e.str("level"), got, want.level, want.notAfter.Unix())
		}
	}
}

// TestJWKSTrustRootsReload checks that a config reload reads the
// trust_roots file again: an operator who replaces the CA file and reloads
// must get the new roots, though the URL and settings stay the same.
func TestJWKSTrustRootsReload(t *testing.T) {
	oldRoot := newCA(t, "Partner Root CA 2025", nil)
	newRoot := newCA(t, "Partner Root CA 2026", nil)
	now := time.Now()
	key := newEdKey(t, "issued-by-new-root")
	key.certs = []*x509.Certificate{newRoot.leaf(t, key, now.Add(-time.Hour),
		now.Add(300*24*time.Hour))}
	other := newEdKey(t, "issued-by-old-root")
	other.certs = []*x509.Certificate{oldRoot.leaf(t, other, now.Add(-time.Hour),
		now.Add(300*24*time.Hour))}

	roots := filepath.Join(t.TempDir(), "roots.pem")
	writeRoot := func(ca *testCA) {
		t.Helper()
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
		if err := os.WriteFile(roots, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeRoot(oldRoot)
	ks := newKeySetServer(t, key, other)
	up := newUpstream(t)
	inst, reload := startLoadable(t, jwsRoute("/partner", up, ks.url(), "min_refresh 1s",
		"trust_roots "+roots)+refusalPage)
	awaitKeys(t, inst, "/partner", other)
	expectReason(t, inst, up, jwsDelivery(t, unique("/partner"), key),
		http.StatusUnauthorized, "unknown_key")

	writeRoot(newRoot)
	reload()
	awaitKeys(t, inst, "/partner", key)
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), key), http.StatusOK)
	expectReason(t, inst, up, jwsDelivery(t, unique("/partner"), other),
		http.StatusUnauthorized, "unknown_key")
}
