package webhookverify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	jose "github.com/go-jose/go-jose/v4"
)

// Bounds on public keys.
const (
	// maxPublicKeys bounds the static keys one handler may hold.
	maxPublicKeys = 64
	// minRSABits is the smallest RSA modulus accepted anywhere.
	minRSABits = 2048
	// maxRSABits keeps a hostile key set from making every check slow.
	maxRSABits = 8192
	// maxKeyFile bounds a public key, JWK or JWKS file read at load time.
	maxKeyFile = 1 << 20
)

// PublicKey is one public key that may verify deliveries. Several may be
// configured while the sender rotates its key pair.
type PublicKey struct {
	// The key, or the path of a file holding it. A file may hold PEM (a
	// "PUBLIC KEY" (SPKI), "RSA PUBLIC KEY" (PKCS#1) or "CERTIFICATE" block),
	// a JWK or a JWKS. Inline values may be any of those, or a provider's own
	// form: 64 hex digits (an Ed25519 key, as Discord shows it), base64 DER
	// SPKI (as SendGrid shows it) or "whpk_" and base64 (a Standard Webhooks
	// Ed25519 key). Placeholders such as {env.PARTNER_KEY} are resolved once
	// when the configuration loads. Private keys are refused.
	Value string `json:"value"`

	// A name for this key in logs and placeholders, matched against the key
	// ID that a message names (key_id_header, or a JWS "kid"). Default: the
	// JWK's "kid"; a key without one is tried for any key ID.
	KeyID string `json:"key_id,omitempty"`
}

// pubKey is a parsed, checked public key.
type pubKey struct {
	// kid is matched against the key ID a message names; empty matches any.
	kid string
	// name identifies the key in logs: its kid, or its position.
	name string
	// key is ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey.
	key any
	// alg is the JWK's "alg", when it had one; the key is used with no other.
	alg string
	// notAfter is the expiry of the key's certificate, when it came with one.
	notAfter time.Time
	// chain is a JWK's x5c certificate chain, leaf first, for trust_roots.
	chain []*x509.Certificate
	// validUntil, when set, is when a key trusted through its certificate
	// chain stops being usable.
	validUntil time.Time

	fpOnce sync.Once
	fp     string
}

// match records that this key verified a delivery with the given digest.
func (k *pubKey) match(digest []byte) match {
	return match{id: k.name, fingerprint: k.fingerprint(), sig: digest}
}

// fingerprint names the key in replay keys: a hash of its public key in
// SPKI form, so that senders whose key IDs collide still never share one.
func (k *pubKey) fingerprint() string {
	k.fpOnce.Do(func() {
		der, err := x509.MarshalPKIXPublicKey(k.key)
		if err != nil {
			der = []byte(k.name)
		}
		sum := sha256.Sum256(append([]byte("webhook_verify replay namespace\x00"), der...))
		k.fp = "pk" + hex.EncodeToString(sum[:8])
	})
	return k.fp
}

// checkPublicKey accepts the key types and sizes this module verifies with:
// Ed25519, ECDSA on P-256, P-384 and P-521, and RSA of 2048 to 8192 bits.
func checkPublicKey(key any) error {
	switch k := key.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("RSA key has %d bits, want %d to %d", bits, minRSABits, maxRSABits)
		}
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
		return errors.New("is a private key; configure the public key only")
	default:
		return fmt.Errorf("key type %T is not supported", key)
	}
	return nil
}

// keyKind names a key's type for error messages.
func keyKind(key any) string {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return "RSA " + strconv.Itoa(k.N.BitLen())
	}
	return fmt.Sprintf("%T", key)
}

// resolvePublicKeys expands placeholders in the configured public keys and
// parses them. One value (a JWKS) may yield several keys. Errors name the
// key by position or key ID, never by its content.
func resolvePublicKeys(cfg []PublicKey) ([]*pubKey, error) {
	repl := caddy.NewReplacer()
	var keys []*pubKey

	for i, pk := range cfg {
		name := pk.KeyID
		if name == "" {
			name = strconv.Itoa(i + 1)
		}
		value := strings.TrimSpace(pk.Value)
		if !strings.HasPrefix(value, `{"`) {
			// an inline JWK is JSON, not a placeholder; the error would echo it
			var err error
			if value, err = repl.ReplaceOrErr(value, true, true); err != nil {
				return nil, fmt.Errorf("public_keys: key %s: resolving placeholder: %w", name, err)
			}
		}
		parsed, err := parsePublicKeyValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("public_keys: key %s: %w", name, err)
		}
		for j, k := range parsed {
			if pk.KeyID != "" {
				k.kid = pk.KeyID
			}
			k.name = k.kid
			if k.name == "" {
				k.name = name
				if len(parsed) > 1 {
					k.name += "." + strconv.Itoa(j+1)
				}
			}
		}
		keys = append(keys, parsed...)
	}

	if len(keys) > maxPublicKeys {
		return nil, fmt.Errorf("public_keys: at most %d keys, got %d", maxPublicKeys, len(keys))
	}
	return keys, nil
}

// parsePublicKeyValue reads one public_key value: an inline key in one of
// the accepted forms, or else the path of a file holding one.
func parsePublicKeyValue(v string) ([]*pubKey, error) {
	if v == "" {
		return nil, errors.New("value is empty")
	}
	if rest, ok := strings.CutPrefix(v, "whpk_"); ok {
		return parseWHPK(rest)
	}
	if inline, err := parseKeyDocument([]byte(v)); err == nil || !errors.Is(err, errNotKeyText) {
		return inline, err
	}
	if len(v) == 2*ed25519.PublicKeySize {
		if raw, err := hex.DecodeString(v); err == nil {
			return []*pubKey{{key: ed25519.PublicKey(raw)}}, nil
		}
	}
	if der, err := base64.StdEncoding.DecodeString(v); err == nil {
		if key, err := x509.ParsePKIXPublicKey(der); err == nil {
			if err := checkPublicKey(key); err != nil {
				return nil, err
			}
			return []*pubKey{{key: key}}, nil
		}
	}
	return readKeyFile(v)
}

// parseWHPK reads a Standard Webhooks public key: base64 of the 32 bytes of
// an Ed25519 key, after the "whpk_" prefix.
func parseWHPK(b64 string) ([]*pubKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("whpk_ key is not base64 of a 32-byte Ed25519 key")
	}
	return []*pubKey{{key: ed25519.PublicKey(raw)}}, nil
}

// readKeyFile reads a key file and parses its content.
func readKeyFile(path string) ([]*pubKey, error) {
	f, err := os.Open(path)
	if err != nil {
		// the value may be a mistyped inline key; do not echo it
		return nil, errors.New("not an inline key in any accepted form, nor a readable file")
	}
	defer f.Close()

	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxKeyFile+1)); err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	if buf.Len() > maxKeyFile {
		return nil, fmt.Errorf("key file is larger than %d bytes", maxKeyFile)
	}
	keys, err := parseKeyDocument(buf.Bytes())
	if errors.Is(err, errNotKeyText) {
		return nil, errors.New("key file holds neither PEM nor a JWK or JWKS")
	}
	return keys, err
}

// errNotKeyText marks text that is neither PEM nor JSON.
var errNotKeyText = errors.New("not PEM or JSON")

// parseKeyDocument reads PEM, a JWK or a JWKS.
func parseKeyDocument(b []byte) ([]*pubKey, error) {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(b, []byte("-----BEGIN")):
		return parsePEMKeys(b)
	case bytes.HasPrefix(b, []byte("{")):
		return parseJWKDocument(b)
	}
	return nil, errNotKeyText
}

// parsePEMKeys reads every block of a PEM document; each must be a public
// key or a certificate.
func parsePEMKeys(b []byte) ([]*pubKey, error) {
	var keys []*pubKey
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			break
		}
		b = rest
		k, err := parsePEMBlock(block)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("PEM holds no block")
	}
	return keys, nil
}

func parsePEMBlock(block *pem.Block) (*pubKey, error) {
	var (
		key any
		err error
		pk  = &pubKey{}
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key, pk.notAfter = cert.PublicKey, cert.NotAfter
		}
	default:
		// the block's content is never echoed: it may be a private key
		return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing PEM %s: %w", block.Type, err)
	}
	if err := checkPublicKey(key); err != nil {
		return nil, err
	}
	pk.key = key
	return pk, nil
}

// parseJWKDocument reads a JWK, or a JWKS whose every key must be usable.
func parseJWKDocument(b []byte) ([]*pubKey, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if probe.Keys == nil {
		k, err := parseJWK(b)
		if err != nil {
			return nil, err
		}
		return []*pubKey{k}, nil
	}

	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	keys := make([]*pubKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no key")
	}
	return keys, nil
}

// parseJWK reads one JWK meant for verifying signatures.
func parseJWK(b []byte) (*pubKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("parsing JWK: %w", err)
	}
	if err := checkKeyOps(b); err != nil {
		return nil, err
	}
	return jwkToKey(&jwk)
}

// checkKeyOps refuses a JWK whose key_ops (RFC 7517 Section 4.3) exclude
// verification, which the JWS library does not read.
func checkKeyOps(b []byte) error {
	var ops struct {
		KeyOps []string `json:"key_ops"`
	}
	if json.Unmarshal(b, &ops) != nil || ops.KeyOps == nil {
		return nil
	}
	for _, op := range ops.KeyOps {
		if op == "verify" {
			return nil
		}
	}
	return fmt.Errorf("JWK key_ops %q do not include verify", ops.KeyOps)
}

// jwkToKey checks a JWK's use, algorithm and key, and keeps what a check
// needs.
func jwkToKey(jwk *jose.JSONWebKey) (*pubKey, error) {
	if _, symmetric := jwk.Key.([]byte); symmetric {
		return nil, errors.New("symmetric JWK (kty oct) cannot verify a public-key signature")
	}
	if !jwk.IsPublic() {
		return nil, errors.New("is a private key; configure the public key only")
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf("JWK use is %q, not sig", jwk.Use)
	}
	if jwk.Algorithm != "" {
		if _, ok := joseAlgorithms[jwk.Algorithm]; !ok {
			return nil, fmt.Errorf("JWK alg %q is not an accepted signature algorithm",
				jwk.Algorithm)
		}
	}
	if err := checkPublicKey(jwk.Key); err != nil {
		return nil, err
	}
	k := &pubKey{kid: jwk.KeyID, key: jwk.Key, alg: jwk.Algorithm}
	if jwk.Algorithm != "" && !joseAlgorithms[jwk.Algorithm].fits(k.key) {
		return nil, fmt.Errorf("JWK alg %s does not fit its %s key", jwk.Algorithm,
			keyKind(jwk.Key))
	}
	if len(jwk.Certificates) > 0 {
		k.notAfter = jwk.Certificates[0].NotAfter
		k.chain = jwk.Certificates
	}
	return k, nil
}
