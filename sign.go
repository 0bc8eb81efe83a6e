package webhookverify

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
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
	// keyID names the secret in an http_signature keyid parameter.
	keyID string
	// covered are the components an http_signature covers.
	covered []string
}

// newSigner builds the scheme exactly as the handler would from h's fields
// and decodes the first secret.
func newSigner(h *Handler) (*signer, error) {
	if err := h.provisionScheme(); err != nil {
		return nil, err
	}
	if len(h.Secrets) == 0 {
		return nil, fmt.Errorf("secrets: a secret is required to sign")
	}
	keys, err := resolveSecretBytes(h.Secrets[:1], h.scheme.secretEncoding)
	if err != nil {
		return nil, err
	}
	s := &signer{scheme: h.scheme, alg: h.alg, tmpl: h.tmpl, secret: keys[0],
		keyID: h.Secrets[0].KeyID}
	if h.hs != nil {
		s.covered = signedComponents(h.Covered)
	}
	return s, nil
}

// sign sets on header the signature, timestamp and ID headers of a delivery
// of body, made at the given time with the given ID. For templates that use
// {method}, {url} or {header.Name}, d carries those parts of the request.
func (s *signer) sign(header http.Header, d *delivery, at time.Time) error {
	if s.scheme.name == httpSigPreset {
		return s.signHTTP(header, d, at)
	}
	if s.alg.token {
		header.Set(s.scheme.signatureHeaders[0], string(s.secret))
		setID(header, s.scheme, d.id)
		return nil
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

	mac := hmac.New(s.alg.newHash, s.secret)
	s.tmpl.write(mac, d)
	sig := encodeSignature(mac.Sum(nil), s.scheme.encoding)

	switch s.scheme.format {
	case formatStripe:
		header.Set(s.scheme.signatureHeaders[0], "t="+d.timestamp+",v1="+sig)
	case formatPaddle:
		header.Set(s.scheme.signatureHeaders[0], "ts="+d.timestamp+";h1="+sig)
	case formatStandard:
		header.Set(s.scheme.signatureHeaders[0], "v1,"+sig)
	default:
		header.Set(s.scheme.signatureHeaders[0], s.scheme.prefix+sig)
	}
	if s.scheme.timestampHeader != "" {
		header.Set(s.scheme.timestampHeader, d.timestamp)
	}
	setID(header, s.scheme, d.id)
	return nil
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
