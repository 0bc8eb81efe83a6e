package webhookverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"math/big"

	_ "crypto/sha256" // registers SHA-256 with crypto.Hash
	_ "crypto/sha512" // registers SHA-384 and SHA-512 with crypto.Hash
)

// keyFamily is the type of key a public-key algorithm works with.
type keyFamily int

const (
	familyEd25519 keyFamily = iota + 1
	familyECDSA
	familyRSA
)

// pubAlg describes a public-key signature algorithm. The algorithm is
// always fixed by configuration (or by the key's own "alg"); a message can
// only pick among the ones the operator allowed.
type pubAlg struct {
	family keyFamily
	// hash is the digest signed by ECDSA and RSA; Ed25519 signs the message.
	hash crypto.Hash
	// curve is the ECDSA curve; a key on another curve never fits.
	curve elliptic.Curve
	// pss selects RSASSA-PSS over RSASSA-PKCS1-v1_5.
	pss bool
	// jose names the same algorithm in JOSE, to match a JWK's "alg".
	jose string
}

// rawAlgorithms are the public-key values of the algorithm field for
// signatures over signed_content.
var rawAlgorithms = map[string]*pubAlg{
	"ed25519":           {family: familyEd25519, jose: "EdDSA"},
	"ecdsa-p256-sha256": {family: familyECDSA, hash: crypto.SHA256, curve: elliptic.P256(), jose: "ES256"},
	"ecdsa-p384-sha384": {family: familyECDSA, hash: crypto.SHA384, curve: elliptic.P384(), jose: "ES384"},
	"ecdsa-p521-sha512": {family: familyECDSA, hash: crypto.SHA512, curve: elliptic.P521(), jose: "ES512"},
	"rsa-pkcs1-sha256":  {family: familyRSA, hash: crypto.SHA256, jose: "RS256"},
	"rsa-pkcs1-sha384":  {family: familyRSA, hash: crypto.SHA384, jose: "RS384"},
	"rsa-pkcs1-sha512":  {family: familyRSA, hash: crypto.SHA512, jose: "RS512"},
	"rsa-pss-sha256":    {family: familyRSA, hash: crypto.SHA256, pss: true, jose: "PS256"},
	"rsa-pss-sha384":    {family: familyRSA, hash: crypto.SHA384, pss: true, jose: "PS384"},
	"rsa-pss-sha512":    {family: familyRSA, hash: crypto.SHA512, pss: true, jose: "PS512"},
}

// joseAlgorithms are the JOSE signature algorithms that may be allowed.
// There is no "none" and no HMAC: a public key never verifies a MAC.
var joseAlgorithms = map[string]*pubAlg{
	"EdDSA":   rawAlgorithms["ed25519"],
	"Ed25519": rawAlgorithms["ed25519"],
	"ES256":   rawAlgorithms["ecdsa-p256-sha256"],
	"ES384":   rawAlgorithms["ecdsa-p384-sha384"],
	"ES512":   rawAlgorithms["ecdsa-p521-sha512"],
	"RS256":   rawAlgorithms["rsa-pkcs1-sha256"],
	"RS384":   rawAlgorithms["rsa-pkcs1-sha384"],
	"RS512":   rawAlgorithms["rsa-pkcs1-sha512"],
	"PS256":   rawAlgorithms["rsa-pss-sha256"],
	"PS384":   rawAlgorithms["rsa-pss-sha384"],
	"PS512":   rawAlgorithms["rsa-pss-sha512"],
}

// defaultJOSEAlgorithms is the allowlist of the JWS formats when the
// algorithm field is not set: every asymmetric algorithm above.
const defaultJOSEAlgorithms = "EdDSA ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512"

// fits reports whether key is of the type and curve this algorithm uses.
func (a *pubAlg) fits(key any) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return a.family == familyEd25519
	case *ecdsa.PublicKey:
		return a.family == familyECDSA && k.Curve == a.curve
	case *rsa.PublicKey:
		return a.family == familyRSA
	}
	return false
}

// allows reports whether k may be used with this algorithm: it fits, and
// a key that names its own algorithm names this one.
func (a *pubAlg) allows(k *pubKey) bool {
	if !a.fits(k.key) {
		return false
	}
	if k.alg == "" {
		return true
	}
	named := joseAlgorithms[k.alg]
	return named == a
}

// rawSize is the fixed length of a raw signature of this algorithm, or 0
// when the length depends on the key (RSA) or the encoding (DER).
func (a *pubAlg) rawSize(der bool) int {
	switch {
	case a.family == familyEd25519:
		return ed25519.SignatureSize
	case a.family == familyECDSA && !der:
		return 2 * coordSize(a.curve)
	}
	return 0
}

func coordSize(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }

// verify checks sig with key. msg is the signed content, used by Ed25519;
// digest is its hash, used by ECDSA and RSA. For ECDSA, der selects an
// ASN.1 signature over the raw r||s form.
func (a *pubAlg) verify(key any, msg, digest, sig []byte, der bool) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		r, s, ok := splitECDSA(sig, coordSize(k.Curve), der)
		return ok && ecdsa.Verify(k, digest, r, s)
	case *rsa.PublicKey:
		if a.pss {
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: a.hash}
			return rsa.VerifyPSS(k, a.hash, digest, sig, opts) == nil
		}
		return rsa.VerifyPKCS1v15(k, a.hash, digest, sig) == nil
	}
	return false
}

// splitECDSA reads r and s from a raw r||s signature of the curve's size,
// or from a DER SEQUENCE of two INTEGERs with nothing after it.
func splitECDSA(sig []byte, size int, der bool) (r, s *big.Int, ok bool) {
	if !der {
		if len(sig) != 2*size {
			return nil, nil, false
		}
		return new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]), true
	}
	return parseDERSignature(sig)
}

// maxDERSignature is the longest DER ECDSA signature: P-521's two 66-byte
// integers, each with a sign byte and header, inside a long-form SEQUENCE.
const maxDERSignature = 3 + 2*(2+67)

// parseDERSignature reads an ASN.1 DER ECDSA-Sig-Value strictly: one
// SEQUENCE of two positive INTEGERs, minimally encoded, no trailing bytes.
func parseDERSignature(sig []byte) (r, s *big.Int, ok bool) {
	if len(sig) == 0 || len(sig) > maxDERSignature {
		return nil, nil, false
	}
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 || v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return nil, nil, false
	}
	return v.R, v.S, true
}
