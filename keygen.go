package webhookverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

// keyTypes make the key pairs of `caddy webhook keygen --type`.
var keyTypes = map[string]func() (crypto.Signer, error){
	"ed25519": func() (crypto.Signer, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	},
	"ecdsa-p256": func() (crypto.Signer, error) { return newECDSAKey(elliptic.P256()) },
	"ecdsa-p384": func() (crypto.Signer, error) { return newECDSAKey(elliptic.P384()) },
	"rsa-2048":   func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	"rsa-3072":   func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) },
	"rsa-4096":   func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 4096) },
}

func newECDSAKey(c elliptic.Curve) (crypto.Signer, error) {
	return ecdsa.GenerateKey(c, rand.Reader)
}

// keyTypeNames lists the --type values for help and errors.
const keyTypeNames = "ed25519, ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096"

// generatedKey is a new signing key pair with its key ID.
type generatedKey struct {
	kid  string
	priv crypto.Signer
}

// generateKey makes a key pair of the named type. Without a kid, the key
// is named by its RFC 7638 thumbprint, which any party can recompute from
// the public key alone.
func generateKey(typ, kid string) (*generatedKey, error) {
	gen, ok := keyTypes[typ]
	if !ok {
		return nil, fmt.Errorf("--type: unknown key type %q (want %s)", typ, keyTypeNames)
	}
	priv, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", typ, err)
	}
	if kid == "" {
		if kid, err = thumbprintKID(priv.Public()); err != nil {
			return nil, err
		}
	}
	return &generatedKey{kid: kid, priv: priv}, nil
}

// thumbprintKID is the base64url SHA-256 JWK thumbprint of a public key.
func thumbprintKID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing the key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// naturalJOSEAlg is the one JOSE algorithm a key's type implies, or "" for
// RSA, whose keys serve PKCS #1 v1.5 and PSS alike.
func naturalJOSEAlg(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "EdDSA"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256"
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
	}
	return ""
}

// jwk describes the key pair as a signature JWK; public selects the public
// half.
func (k *generatedKey) jwk(public bool) jose.JSONWebKey {
	var key any = k.priv
	if public {
		key = k.priv.Public()
	}
	return jose.JSONWebKey{Key: key, KeyID: k.kid, Use: "sig",
		Algorithm: naturalJOSEAlg(k.priv.Public())}
}

// keyFiles are the paths keygen writes for one --out prefix.
type keyFiles struct {
	private, jwks, pem string
}

func keyFilesFor(prefix string) keyFiles {
	return keyFiles{private: prefix + ".private.jwk", jwks: prefix + ".jwks", pem: prefix + ".pem"}
}

// write creates the private JWK (readable by the owner only), the public
// JWKS and the public SPKI PEM. It never overwrites a file: an existing
// private key may be the only copy of a key that senders use.
func (f keyFiles) write(k *generatedKey) error {
	for _, p := range []string{f.private, f.jwks, f.pem} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--out: %s already exists; keygen never overwrites a file", p)
		}
	}

	private, err := json.MarshalIndent(k.jwk(false), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the private JWK: %w", err)
	}
	set, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk(true)}},
		"", "  ")
	if err != nil {
		return fmt.Errorf("encoding the JWKS: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return fmt.Errorf("encoding the public key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})

	for _, out := range []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{f.private, append(private, '\n'), 0o600},
		{f.jwks, append(set, '\n'), 0o644},
		{f.pem, pemBytes, 0o644},
	} {
		if err := writeNew(out.path, out.data, out.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeNew creates path with mode and data, failing if it exists.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// providerForms are the public key in the inline forms presets take: the
// whpk_ and hex forms of an Ed25519 key (Standard Webhooks, Discord), and
// base64 SPKI of a P-256 key (SendGrid). Each is a name and a value.
func providerForms(pub crypto.PublicKey) [][2]string {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return [][2]string{
			{"whpk", "whpk_" + base64.StdEncoding.EncodeToString(k)},
			{"hex", fmt.Sprintf("%x", []byte(k))},
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil
		}
		spki, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil
		}
		return [][2]string{{"spki_base64", base64.StdEncoding.EncodeToString(spki)}}
	}
	return nil
}
