package webhookverify

import (
	"crypto"
	"crypto/hmac"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// signer signs deliveries the way a sender of one scheme does. It backs the
// `caddy webhook sign` and `send` commands, so that every scheme the handler
// verifies can be tried without an account at the provider.
type signer struct {
	scheme scheme
	alg    algorithm
	tmpl   *template
	secret []byte
	// priv is the private key of public-key schemes, der selects ASN.1
	// ECDSA signatures, joseAlg the algorithm of JWS formats.
	priv    *privateKey
	der     bool
	joseAlg string
	// keyID names the secret in an http_signature keyid parameter.
	keyID string
	// covered are the components an http_signature covers.
	covered []string
}

// newSigner builds the scheme exactly as the handler would from h's fields
// and takes the first secret.
func newSigner(h *Handler) (*signer, error) {
	return newKeySigner(h, nil)
}

// newKeySigner is newSigner that signs public-key schemes with priv.
// With a private key, the handler is taken to hold its public half, which
// selects the public-key form of a preset; a generic scheme without an
// algorithm signs with the usual one for the key.
func newKeySigner(h *Handler, priv *privateKey) (*signer, error) {
	if priv != nil {
		pub, err := publicPEM(priv.key.Public())
		if err != nil {
			return nil, err
		}
		h.PublicKeys = []PublicKey{{Value: pub}}
		if h.Preset == "" && h.Algorithm == "" && !isJWSFormat(h.SignatureFormat) {
			h.Algorithm = rawAlgorithmFor(priv)
		}
	}
	if err := h.provisionScheme(); err != nil {
		return nil, err
	}
	s := &signer{scheme: h.scheme, alg: h.alg, tmpl: h.tmpl, priv: priv, der: h.der}
	if h.pub == nil && !h.jws {
		return s, s.takeSecret(h)
	}

	if priv == nil {
		return nil, fmt.Errorf("--private-key: algorithm %q signs with a private key",
			h.scheme.algorithm)
	}
	if h.jws {
		alg, err := chooseJOSEAlg(h.joseAlgs, priv)
		s.joseAlg = alg
		return s, err
	}
	if !h.pub.allows(priv.asPubKey()) {
		return nil, fmt.Errorf("--private-key: algorithm %q cannot sign with the %s key%s",
			h.scheme.algorithm, keyKind(priv.key.Public()), jwkAlgNote(priv.alg))
	}
	return s, nil
}

// takeSecret decodes the first secret of an HMAC or token scheme.
func (s *signer) takeSecret(h *Handler) error {
	if s.priv != nil {
		return fmt.Errorf("--private-key: algorithm %q signs with a secret; use --secret",
			h.scheme.algorithm)
	}
	if len(h.Secrets) == 0 {
		return fmt.Errorf("secrets: a secret is required to sign")
	}
	keys, err := resolveSecretBytes(h.Secrets[:1], h.scheme.secretEncoding)
	if err != nil {
		return err
	}
	s.secret = keys[0]
	s.keyID = h.Secrets[0].KeyID
	if h.hs != nil {
		s.covered = signedComponents(h.Covered)
	}
	return nil
}

// publicPEM writes a public key as an SPKI PEM block.
func publicPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

func isJWSFormat(f string) bool { return f == "jws_detached" || f == "jws_compact" }

// sign sets on header the signature, timestamp and ID headers of a delivery
// of body, made at the given time with the given ID. For templates that use
// {method}, {url} or {header.Name}, d carries those parts of the request.
func (s *signer) sign(header http.Header, d *delivery, at time.Time) error {
	switch {
	case s.scheme.name == httpSigPreset:
		return s.signHTTP(header, d, at)
	case s.alg.token:
		header.Set(s.scheme.signatureHeaders[0], string(s.secret))
		setID(header, s.scheme, d.id)
		return nil
	case s.joseAlg != "":
		return s.signJWS(header, d, at)
	}
	if s.tmpl.uses(partID) && d.id == "" {
		return fmt.Errorf("this scheme signs a delivery ID: give one")
	}

	d.header = header
	if s.scheme.bodyForm == bodyTwilio {
		if rsn := twilioSigned(header.Get("Content-Type"), d); rsn != "" {
			return fmt.Errorf("twilio binds a body that is not a form by the hex SHA-256 " +
				"in the URL's bodySHA256 parameter: add it to the URL")
		}
	}
	if s.scheme.hasTimestamp() && s.scheme.timestampField == "" {
		d.timestamp = formatTimestamp(at, s.scheme.timestampFormat)
	}

	raw, err := s.signContent(d)
	if err != nil {
		return err
	}
	sig := encodeSignature(raw, s.scheme.encoding)

	switch s.scheme.format {
	case formatStripe:
		header.Set(s.scheme.signatureHeaders[0], "t="+d.timestamp+",v1="+sig)
	case formatPaddle:
		header.Set(s.scheme.signatureHeaders[0], "ts="+d.timestamp+";h1="+sig)
	case formatStandard:
		header.Set(s.scheme.signatureHeaders[0], s.scheme.standardVersion()+","+sig)
	default:
		header.Set(s.scheme.signatureHeaders[0], s.scheme.prefix+sig)
	}
	if s.scheme.timestampHeader != "" {
		header.Set(s.scheme.timestampHeader, d.timestamp)
	}
	if s.scheme.keyIDHeader != "" && s.priv != nil && s.priv.kid != "" {
		header.Set(s.scheme.keyIDHeader, s.priv.kid)
	}
	setID(header, s.scheme, d.id)
	return nil
}

// signContent signs the signed content of d with the secret or private key.
func (s *signer) signContent(d *delivery) ([]byte, error) {
	if s.priv != nil {
		return s.signRaw(d)
	}
	mac := hmac.New(s.alg.newHash, s.secret)
	s.tmpl.write(mac, d)
	return mac.Sum(nil), nil
}

func setID(header http.Header, s scheme, id string) {
	if id != "" && len(s.idHeaders) > 0 {
		header.Set(s.idHeaders[0], id)
	}
}

// formatTimestamp writes t as a scheme's timestamp_format says.
func formatTimestamp(t time.Time, format string) string {
	switch format {
	case "unix_ms":
		return strconv.FormatInt(t.UnixMilli(), 10)
	case "rfc3339":
		return t.UTC().Format(time.RFC3339Nano)
	default:
		return strconv.FormatInt(t.Unix(), 10)
	}
}

// encodeSignature writes signature bytes in a signature_encoding.
func encodeSignature(sig []byte, encoding string) string {
	switch encoding {
	case "base64":
		return base64.StdEncoding.EncodeToString(sig)
	case "base64url":
		return base64.RawURLEncoding.EncodeToString(sig)
	default:
		return hex.EncodeToString(sig)
	}
}
