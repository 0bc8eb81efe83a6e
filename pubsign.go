package webhookverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// privateKey is a sender's signing key, read for the sign and send commands.
type privateKey struct {
	// kid is the key ID sent with signatures; empty sends none.
	kid string
	// alg is the JWK's "alg", which limits the key to that algorithm.
	alg string
	key crypto.Signer
}

// readPrivateKey reads a private JWK, or a PEM "PRIVATE KEY" (PKCS #8),
// "EC PRIVATE KEY" or "RSA PRIVATE KEY" block. Errors never quote the file.
func readPrivateKey(path string) (*privateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--private-key: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxKeyFile+1)); err != nil {
		return nil, fmt.Errorf("--private-key: reading %s: %w", path, err)
	}
	if buf.Len() > maxKeyFile {
		return nil, fmt.Errorf("--private-key: %s is larger than %d bytes", path, maxKeyFile)
	}

	var k *privateKey
	b := bytes.TrimSpace(buf.Bytes())
	switch {
	case bytes.HasPrefix(b, []byte("{")):
		k, err = parsePrivateJWK(b)
	case bytes.HasPrefix(b, []byte("-----BEGIN")):
		k, err = parsePrivatePEM(b)
	default:
		err = errors.New("neither a JWK nor PEM")
	}
	if err == nil {
		err = checkPublicKey(k.key.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("--private-key: %s: %w", path, err)
	}
	return k, nil
}

func parsePrivateJWK(b []byte) (*privateKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		// go-jose's errors name fields, never values
		return nil, fmt.Errorf("parsing JWK: %w", err)
	}
	if jwk.IsPublic() {
		return nil, errors.New("is a public key; signing needs the private key")
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", jwk.Key)
	}
	return &privateKey{kid: jwk.KeyID, alg: jwk.Algorithm, key: signer}, nil
}

func parsePrivatePEM(b []byte) (*privateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing PEM %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", key)
	}
	return &privateKey{key: signer}, nil
}

// asPubKey is the public half, as the verifier would hold it.
func (k *privateKey) asPubKey() *pubKey {
	return &pubKey{key: k.key.Public(), alg: k.alg}
}

// rawAlgorithmFor is the algorithm a generic scheme signs with when none
// is named: the one the key's JWK names, else the one its type implies,
// else (for RSA, which serves several) PKCS #1 v1.5 with SHA-256.
func rawAlgorithmFor(k *privateKey) string {
	for _, jose := range []string{k.alg, naturalJOSEAlg(k.key.Public())} {
		for name, a := range rawAlgorithms {
			if jose != "" && a.jose == jose {
				return name
			}
		}
	}
	return "rsa-pkcs1-sha256"
}

// chooseJOSEAlg picks the JOSE algorithm of a JWS: the key's own when the
// allowlist has it, else the first on the allowlist that fits the key.
func chooseJOSEAlg(allowed []string, k *privateKey) (string, error) {
	pk := k.asPubKey()
	for _, name := range allowed {
		if joseAlgorithms[name].allows(pk) {
			return name, nil
		}
	}
	return "", fmt.Errorf("--private-key: none of the algorithms %q fits the %s key%s", allowed,
		keyKind(pk.key), jwkAlgNote(k.alg))
}

// jwkAlgNote mentions a JWK's own alg in an error about the key.
func jwkAlgNote(alg string) string {
	if alg == "" {
		return ""
	}
	return " (its JWK names alg " + alg + ")"
}

// signRaw signs the signed content of d with the scheme's public-key
// algorithm: the message itself for Ed25519, its digest for ECDSA and RSA.
func (s *signer) signRaw(d *delivery) ([]byte, error) {
	var msg bytes.Buffer
	s.tmpl.write(&msg, d)
	a := s.alg.pub

	switch key := s.priv.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(key, msg.Bytes()), nil
	case *ecdsa.PrivateKey:
		der, err := ecdsa.SignASN1(rand.Reader, key, digest(a.hash, msg.Bytes()))
		if err != nil || s.der {
			return der, err
		}
		return rawECDSA(der, coordSize(key.Curve))
	case *rsa.PrivateKey:
		if a.pss {
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.hash}
			return rsa.SignPSS(rand.Reader, key, a.hash, digest(a.hash, msg.Bytes()), opts)
		}
		return rsa.SignPKCS1v15(rand.Reader, key, a.hash, digest(a.hash, msg.Bytes()))
	}
	return nil, fmt.Errorf("key type %T is not supported", s.priv.key)
}

func digest(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// rawECDSA turns a DER ECDSA signature into r||s, each padded to size.
func rawECDSA(der []byte, size int) ([]byte, error) {
	r, s, ok := parseDERSignature(der)
	if !ok {
		return nil, errors.New("reading the ECDSA signature")
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// signJWS sets the scheme's signature header to a JWS over the delivery:
// detached over the body with "iat" in its protected header, or compact
// over claims holding "iat" and the hex SHA-256 of the body.
func (s *signer) signJWS(header http.Header, d *delivery, at time.Time) error {
	opts := &jose.SignerOptions{}
	if s.priv.kid != "" {
		opts.WithHeader("kid", s.priv.kid)
	}
	payload := d.body
	if s.scheme.sigFormat == "jws_detached" {
		opts.WithHeader("iat", at.Unix())
	} else {
		sum := sha256.Sum256(d.body)
		claims := map[string]any{"iat": at.Unix(), s.scheme.bodyHashClaim: hex.EncodeToString(sum[:])}
		var err error
		if payload, err = json.Marshal(claims); err != nil {
			return err
		}
	}

	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(s.joseAlg),
		Key: s.priv.key}, opts)
	if err != nil {
		return fmt.Errorf("making a %s signer: %w", s.joseAlg, err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	var value string
	if s.scheme.sigFormat == "jws_detached" {
		value, err = obj.DetachedCompactSerialize()
	} else {
		value, err = obj.CompactSerialize()
	}
	if err != nil {
		return fmt.Errorf("serializing the JWS: %w", err)
	}
	header.Set(s.scheme.signatureHeaders[0], value)
	return nil
}
