package webhookverify

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// certExpiryWarning is how close to its certificate's expiry a key must be
// for a warning when it is loaded.
const certExpiryWarning = 14 * 24 * time.Hour

// checkPublic verifies the signatures of a delivery over its signed content
// with the public keys that the message's key ID (if any) selects.
func (h *Handler) checkPublic(r *http.Request, sigs [][]byte, d *delivery) reason {
	kid, rsn := h.messageKeyID(r)
	if rsn != "" {
		return rsn
	}
	d.keyID = kid

	cands, rsn, retry := h.ring.find(r.Context(), kid, h.pub.allows)
	if rsn != "" {
		d.retryAfter = retry
		return rsn
	}

	// Every candidate is tried, as with secrets: a delivery that two keys
	// verify is remembered under both.
	msg, digest := h.signedContent(d)
	for _, k := range cands {
		for _, sig := range sigs {
			if h.pub.verify(k.key, msg, digest, sig, h.der) {
				d.matches = append(d.matches, k.match(digest))
				break
			}
		}
	}
	return d.matched()
}

// messageKeyID reads the key ID that the message names, if the scheme has
// a header for it.
func (h *Handler) messageKeyID(r *http.Request) (string, reason) {
	if h.scheme.keyIDHeader == "" {
		return "", ""
	}
	kid := r.Header.Get(h.scheme.keyIDHeader)
	if len(kid) > maxIDLen {
		return "", reasonMalformedSignature
	}
	return kid, ""
}

// signedContent evaluates the template once per delivery. It returns the
// message that Ed25519 signs and the digest that ECDSA and RSA sign; for
// Ed25519 the digest is a SHA-256 of the message, used only to recognise a
// replay. Replays are keyed on this digest rather than on the signature,
// since an ECDSA signature can be re-encoded into another valid one.
func (h *Handler) signedContent(d *delivery) (msg, digest []byte) {
	if h.pub.family == familyEd25519 {
		if h.tmpl.bodyOnly() {
			msg = d.body
		} else {
			var buf bytes.Buffer
			buf.Grow(len(d.body) + 128)
			h.tmpl.write(&buf, d)
			msg = buf.Bytes()
		}
		sum := sha256.Sum256(msg)
		return msg, sum[:]
	}

	hh := h.pub.hash.New()
	h.tmpl.write(hh, d)
	return nil, hh.Sum(nil)
}

// warnCertExpiry logs a key whose certificate has expired or expires soon.
// The key is still used: a pinned key is trusted for itself, not for its
// certificate, unless trust_roots asks for chain validation.
func (h *Handler) warnCertExpiry(k *pubKey) {
	if k.notAfter.IsZero() {
		return
	}
	keyExpiry.set("public_key "+k.name, k.notAfter)
	left := k.notAfter.Sub(now())
	if left > certExpiryWarning {
		return
	}
	h.logger.Warn("public key certificate expires soon or has expired",
		zap.String("key_id", k.name), zap.Time("cert_not_after", k.notAfter),
		zap.Duration("cert_expires_in", left))
}
