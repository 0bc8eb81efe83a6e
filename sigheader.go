package webhookverify

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// maxSignatures bounds how many signatures one header may carry. Providers
// send one, or two while a secret rotates; more is an attempt to make the
// receiver do work.
const maxSignatures = 8

// signatureDecoders turn the text form of a signature into its bytes.
var signatureDecoders = map[string]func(string) ([]byte, error){
	"hex":    hex.DecodeString,
	"base64": base64.StdEncoding.DecodeString,
	"base64url": func(s string) ([]byte, error) {
		return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	},
}

// signatureMaterial is what a signature header holds once parsed.
type signatureMaterial struct {
	// sigs are the decoded candidate signatures; any one may verify.
	sigs [][]byte
	// timestamp is the signed time for formats that carry it in the header.
	timestamp string
}

// parseSignature reads a signature header value laid out as the scheme says.
// It returns reasonMalformedSignature for anything it cannot read exactly,
// and reasonMissingSignature when the header is well formed but holds no
// signature of the version this scheme verifies.
func (s *scheme) parseSignature(value string, size int) (signatureMaterial, reason) {
	switch s.format {
	case formatStripe:
		return s.parseKeyed(value, ',', "t", "v1", size)
	case formatPaddle:
		return s.parseKeyed(value, ';', "ts", "h1", size)
	case formatStandard:
		return s.parseStandard(value, size)
	default:
		return s.parsePlain(value, size)
	}
}

// parsePlain reads a single signature behind an optional fixed prefix.
func (s *scheme) parsePlain(value string, size int) (signatureMaterial, reason) {
	value = strings.TrimSpace(value)
	if s.prefix != "" {
		rest, ok := strings.CutPrefix(value, s.prefix)
		if !ok {
			return signatureMaterial{}, reasonMalformedSignature
		}
		value = rest
	}
	sig, ok := s.decode(value, size)
	if !ok {
		return signatureMaterial{}, reasonMalformedSignature
	}
	return signatureMaterial{sigs: [][]byte{sig}}, ""
}

// parseKeyed reads "ts=...,sig=...,sig=..." lists in which one key holds the
// timestamp, another the signatures, and any other key is ignored so that the
// provider can add schemes without breaking receivers.
func (s *scheme) parseKeyed(value string, sep byte, tsKey, sigKey string,
	size int) (signatureMaterial, reason) {
	var m signatureMaterial
	seenTimestamp := false

	for _, item := range splitList(value, sep) {
		k, v, ok := strings.Cut(item, "=")
		if !ok || v == "" || strings.ContainsAny(v, ",;= ") {
			return signatureMaterial{}, reasonMalformedSignature
		}
		switch k {
		case tsKey:
			if seenTimestamp {
				return signatureMaterial{}, reasonMalformedSignature
			}
			seenTimestamp = true
			m.timestamp = v
		case sigKey:
			sig, ok := s.decode(v, size)
			if !ok || len(m.sigs) == maxSignatures {
				return signatureMaterial{}, reasonMalformedSignature
			}
			m.sigs = append(m.sigs, sig)
		}
	}

	if !seenTimestamp {
		return signatureMaterial{}, reasonMalformedSignature
	}
	if len(m.sigs) == 0 {
		return signatureMaterial{}, reasonMissingSignature
	}
	return m, ""
}

// parseStandard reads the Standard Webhooks list: space-separated
// "version,signature" pairs, of which only the scheme's version (v1 for
// HMAC, v1a for Ed25519) is read; the others are skipped.
func (s *scheme) parseStandard(value string, size int) (signatureMaterial, reason) {
	var m signatureMaterial

	for _, item := range strings.Fields(value) {
		version, sig, ok := strings.Cut(item, ",")
		if !ok || sig == "" {
			return signatureMaterial{}, reasonMalformedSignature
		}
		if version != s.standardVersion() {
			continue
		}
		b, ok := s.decode(sig, size)
		if !ok || len(m.sigs) == maxSignatures {
			return signatureMaterial{}, reasonMalformedSignature
		}
		m.sigs = append(m.sigs, b)
	}

	if len(m.sigs) == 0 {
		return signatureMaterial{}, reasonMissingSignature
	}
	return m, ""
}

// maxSignatureBytes bounds a signature whose length depends on the key: an
// RSA signature of the largest accepted key, or a DER ECDSA signature.
const maxSignatureBytes = maxRSABits / 8

// decode turns one signature into bytes and checks that it has the size the
// algorithm produces; size 0 means any length up to maxSignatureBytes.
func (s *scheme) decode(text string, size int) ([]byte, bool) {
	if len(text) > 2*maxSignatureBytes {
		return nil, false
	}
	b, err := signatureDecoders[s.encoding](text)
	switch {
	case err != nil:
		return nil, false
	case size == 0 && (len(b) == 0 || len(b) > maxSignatureBytes):
		return nil, false
	case size != 0 && len(b) != size:
		return nil, false
	}
	return b, true
}
