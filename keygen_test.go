package webhookverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// generated is what one keygen run wrote and printed.
type generated struct {
	files  keyFiles
	fields map[string]string
	out    string
}

// runKeygen runs `caddy webhook keygen` with args, writing under a new
// temporary directory, and reads the name: value lines it printed.
func runKeygen(t *testing.T, args ...string) generated {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "partner")
	out, err := run(t, keygenCommand(), append([]string{"--out", prefix}, args...)...)
	if err != nil {
		t.Fatalf("keygen %v: %v\n%s", args, err, out)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, _ := strings.Cut(line, ": ")
		fields[name] = value
	}
	return generated{files: keyFilesFor(prefix), fields: fields, out: out}
}

// keysOfEachType runs keygen once for each key type, for the whole of t.
func keysOfEachType(t *testing.T) map[string]generated {
	t.Helper()
	keys := map[string]generated{}
	for typ := range keyTypes {
		keys[typ] = runKeygen(t, "--type", typ)
	}
	return keys
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestKeygenSignVerify generates a key pair of each type with keygen,
// checks the files, and signs and verifies deliveries with them through
// the sign and verify commands, for every public-key preset and scheme.
// The keys are made once: RSA key generation is slow.
func TestKeygenSignVerify(t *testing.T) {
	keys := keysOfEachType(t)
	t.Run("files", func(t *testing.T) { checkKeygenFiles(t, keys) })
	t.Run("round trips", func(t *testing.T) { checkRoundTrips(t, keys) })
	t.Run("send", func(t *testing.T) { checkSendWithKey(t, keys["ed25519"]) })
}

// checkKeygenFiles checks the files and output of keygen for each type: a
// private JWK readable by its owner only, a public JWKS and SPKI PEM of the
// same key, a thumbprint key ID, and the provider forms of the public key.
func checkKeygenFiles(t *testing.T, keys map[string]generated) {
	wantKty := map[string]string{"ed25519": "OKP", "ecdsa-p256": "EC", "ecdsa-p384": "EC",
		"rsa-2048": "RSA", "rsa-3072": "RSA", "rsa-4096": "RSA"}
	wantAlg := map[string]string{"ed25519": "EdDSA", "ecdsa-p256": "ES256", "ecdsa-p384": "ES384"}
	for typ, g := range keys {
		t.Run(typ, func(t *testing.T) {
			info, err := os.Stat(g.files.private)
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("private key file: %v, mode %v, want 0600", err, info.Mode().Perm())
			}

			var priv jose.JSONWebKey
			readJSONFile(t, g.files.private, &priv)
			var set jose.JSONWebKeySet
			readJSONFile(t, g.files.jwks, &set)
			if priv.IsPublic() || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
				t.Fatalf("private JWK public=%v, JWKS of %d keys", priv.IsPublic(), len(set.Keys))
			}
			pub := set.Keys[0]
			kid := g.fields["key_id"]
			if pub.KeyID != kid || priv.KeyID != kid || pub.Use != "sig" ||
				pub.Algorithm != wantAlg[typ] || priv.Algorithm != wantAlg[typ] {
				t.Errorf("JWK kid %q/%q use %q alg %q/%q, want kid %q use sig alg %q",
					pub.KeyID, priv.KeyID, pub.Use, pub.Algorithm, priv.Algorithm, kid,
					wantAlg[typ])
			}
			raw, _ := json.Marshal(pub)
			var kty struct{ Kty string }
			json.Unmarshal(raw, &kty)
			if kty.Kty != wantKty[typ] {
				t.Errorf("kty = %q, want %q", kty.Kty, wantKty[typ])
			}

			pemBytes, _ := os.ReadFile(g.files.pem)
			block, _ := pem.Decode(pemBytes)
			if block == nil || block.Type != "PUBLIC KEY" {
				t.Fatalf("PEM file holds no PUBLIC KEY block")
			}
			fromPEM, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil || !reflect.DeepEqual(fromPEM, pub.Key) ||
				!reflect.DeepEqual(priv.Public().Key, pub.Key) {
				t.Errorf("PEM, JWKS and private JWK hold different public keys (%v)", err)
			}

			sum, _ := pub.Thumbprint(crypto.SHA256)
			if kid != base64.RawURLEncoding.EncodeToString(sum) {
				t.Errorf("key_id %q is not the key's thumbprint", kid)
			}
			if g.fields["private_key"] != g.files.private || g.fields["jwks"] != g.files.jwks ||
				g.fields["pem"] != g.files.pem || g.fields["type"] != typ {
				t.Errorf("output names the wrong files or type:\n%s", g.out)
			}
			checkProviderForms(t, g, pub.Key)
			checkNoPrivateMaterial(t, g)
		})
	}
}

// checkProviderForms checks the printed inline forms of the public key.
func checkProviderForms(t *testing.T, g generated, pub any) {
	t.Helper()
	want := map[string]string{}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		want["whpk"] = "whpk_" + base64.StdEncoding.EncodeToString(k)
		want["hex"] = hex.EncodeToString(k)
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			der, _ := x509.MarshalPKIXPublicKey(k)
			want["spki_base64"] = base64.StdEncoding.EncodeToString(der)
		}
	}
	for _, name := range []string{"whpk", "hex", "spki_base64"} {
		if g.fields[name] != want[name] {
			t.Errorf("%s = %q, want %q", name, g.fields[name], want[name])
		}
	}
}

// checkNoPrivateMaterial checks that keygen printed no part of the private key.
func checkNoPrivateMaterial(t *testing.T, g generated) {
	t.Helper()
	var priv map[string]any
	readJSONFile(t, g.files.private, &priv)
	for _, param := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if v, ok := priv[param].(string); ok && strings.Contains(g.out, v[:16]) {
			t.Errorf("keygen printed private parameter %s", param)
		}
	}
}

// TestKeygenThumbprint checks the default key ID against RFC 7638 computed
// by hand for an Ed25519 key: SHA-256 of the required members in order.
func TestKeygenThumbprint(t *testing.T) {
	g := runKeygen(t)
	b, _ := os.ReadFile(g.files.pem)
	block, _ := pem.Decode(b)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(pub.(ed25519.PublicKey))
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); g.fields["key_id"] != want {
		t.Errorf("key_id = %q, want the RFC 7638 thumbprint %q", g.fields["key_id"], want)
	}
}

// TestKeygenErrors checks the refusals of keygen, and that it never
// overwrites an existing key.
func TestKeygenErrors(t *testing.T) {
	g := runKeygen(t, "--kid", "partner-2026")
	if g.fields["key_id"] != "partner-2026" {
		t.Errorf("key_id = %q, want the --kid given", g.fields["key_id"])
	}
	before, _ := os.ReadFile(g.files.private)
	prefix := strings.TrimSuffix(g.files.private, ".private.jwk")

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--out", prefix}, "--out: " + g.files.private + " already exists; keygen " +
			"never overwrites a file"},
		{[]string{"--out", prefix + "-2", "--type", "dsa-1024"}, `--type: unknown key type ` +
			`"dsa-1024" (want ed25519, ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096)`},
		{nil, "--out: required, the path prefix of the files to write"},
	}
	for _, tc := range cases {
		if _, err := run(t, keygenCommand(), tc.args...); err == nil || err.Error() != tc.want {
			t.Errorf("keygen %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	if after, _ := os.ReadFile(g.files.private); string(after) != string(before) {
		t.Error("the existing private key was changed")
	}
	if _, err := os.Stat(prefix + "-2.jwks"); err == nil {
		t.Error("a failed keygen left files behind")
	}
}

// TestPrivateKeyPEM checks that sign reads PKCS #8, SEC 1 and PKCS #1 PEM
// private keys, and refuses public keys and small RSA keys.
func TestPrivateKeyPEM(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(edPriv)
	sec1, _ := x509.MarshalECPrivateKey(ecPriv)
	spki, _ := x509.MarshalPKIXPublicKey(ecPriv.Public())

	good := []struct{ file, scheme string }{
		{write("ed.pem", "PRIVATE KEY", pkcs8), "discord"},
		{write("ec.pem", "EC PRIVATE KEY", sec1), "sendgrid"},
		{write("rsa.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "jws"},
	}
	for _, g := range good {
		out, err := run(t, signCommand(), "--preset", g.scheme, "--private-key", g.file,
			"--body", "{}")
		if err != nil {
			t.Errorf("sign %s with %s: %v\n%s", g.scheme, filepath.Base(g.file), err, out)
		}
	}

	bad := []struct{ file, want string }{
		{write("pub.pem", "PUBLIC KEY", spki), `PEM block "PUBLIC KEY" is not a private key`},
		{write("small.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)),
			"RSA key has 1024 bits, want 2048 to 8192"},
		{runKeygen(t).files.jwks, "parsing JWK"},
		{runKeygen(t).files.pem, `PEM block "PUBLIC KEY" is not a private key`},
	}
	for _, b := range bad {
		_, err := run(t, signCommand(), "--preset", "jws", "--private-key", b.file,
			"--body", "{}")
		want := "--private-key: " + b.file + ": " + b.want
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("sign with %s: error %v, want %q", filepath.Base(b.file), err, want)
		}
	}
}
