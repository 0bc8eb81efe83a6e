package webhookverify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/dunglas/httpsfv"
)

// httpSigPreset is the preset name of RFC 9421 HTTP Message Signatures.
const httpSigPreset = "http_signature"

// Bounds on the signature fields, checked before they are parsed.
const (
	// maxSigInputField bounds Signature-Input; a few labels of a few dozen
	// components each fit easily.
	maxSigInputField = 8 << 10
	// maxSigField bounds Signature: a few RSA-8192 signatures in base64.
	maxSigField = 16 << 10
)

// httpSigAlgorithms are the RFC 9421 algorithm names this module verifies,
// mapped to the public-key algorithm that implements them; hmac-sha256 has
// none, it verifies with secrets.
var httpSigAlgorithms = map[string]*pubAlg{
	"rsa-pss-sha512":    rawAlgorithms["rsa-pss-sha512"],
	"rsa-v1_5-sha256":   rawAlgorithms["rsa-pkcs1-sha256"],
	"ecdsa-p256-sha256": rawAlgorithms["ecdsa-p256-sha256"],
	"ecdsa-p384-sha384": rawAlgorithms["ecdsa-p384-sha384"],
	"ed25519":           rawAlgorithms["ed25519"],
	"hmac-sha256":       nil,
}

// httpSigAlgorithmNames lists httpSigAlgorithms for error messages.
const httpSigAlgorithmNames = "rsa-pss-sha512, rsa-v1_5-sha256, hmac-sha256, " +
	"ecdsa-p256-sha256, ecdsa-p384-sha384 or ed25519"

// joseToHTTPSig maps a JWK's "alg" to the RFC 9421 algorithm it fixes.
var joseToHTTPSig = map[string]string{
	"EdDSA":   "ed25519",
	"Ed25519": "ed25519",
	"ES256":   "ecdsa-p256-sha256",
	"ES384":   "ecdsa-p384-sha384",
	"PS512":   "rsa-pss-sha512",
	"RS256":   "rsa-v1_5-sha256",
}

// httpSigPolicy is the provisioned policy of the http_signature preset.
type httpSigPolicy struct {
	label   string
	covered []coveredRule
	tag     string
	// alg is the configured algorithm, or empty when each key fixes its own.
	alg string
	// secretKIDs are the configured key IDs of the secrets, in order; an
	// empty one is tried for any keyid.
	secretKIDs []string
}

// coveredRule is one entry of the covered list: a component name that any
// identifier of that name satisfies, or an exact identifier with parameters.
type coveredRule struct {
	name  string
	exact string
}

// defaultCovered is what every signature must cover when covered is not
// configured: the body, through its digest.
var defaultCovered = []string{"content-digest"}

// provisionHTTPSig sets up the http_signature preset in place of a scheme.
func (h *Handler) provisionHTTPSig() error {
	if err := h.rejectSchemeFields(); err != nil {
		return err
	}
	if h.Algorithm != "" {
		if _, ok := httpSigAlgorithms[h.Algorithm]; !ok {
			return fmt.Errorf("algorithm: %q is not an RFC 9421 algorithm (want %s)",
				h.Algorithm, httpSigAlgorithmNames)
		}
	}
	p := &httpSigPolicy{label: h.Label, tag: h.RequireTag, alg: h.Algorithm}
	covered := h.Covered
	if len(covered) == 0 {
		covered = defaultCovered
	}
	for _, c := range covered {
		rule, err := parseCoveredRule(c)
		if err != nil {
			return fmt.Errorf("covered: %w", err)
		}
		p.covered = append(p.covered, rule)
	}
	for _, s := range h.Secrets {
		p.secretKIDs = append(p.secretKIDs, s.KeyID)
	}

	s := scheme{
		name:             httpSigPreset,
		algorithm:        h.Algorithm,
		signatureHeaders: []string{"Signature"},
		sigFormat:        httpSigPreset,
		content: fmt.Sprintf("label=%q covered=%q tag=%q origin=%q", h.Label, covered,
			h.RequireTag, h.ExternalOrigin),
		secretEncoding: "raw",
		tolerance:      defaultTolerance,
	}
	if h.SecretEncoding != "" {
		s.secretEncoding = h.SecretEncoding
	}
	if h.Tolerance > 0 {
		s.tolerance = time.Duration(h.Tolerance)
	}
	h.scheme = s
	h.tolerance = s.tolerance
	h.hs = p
	return nil
}

// rejectSchemeFields refuses the generic fields, which http_signature
// replaces with the fields RFC 9421 defines.
func (h *Handler) rejectSchemeFields() error {
	fields := map[string]string{
		"signature_header":   h.SignatureHeader,
		"signature_prefix":   h.SignaturePrefix,
		"signature_encoding": h.SignatureEncoding,
		"signed_content":     h.SignedContent,
		"timestamp_header":   h.TimestampHeader,
		"timestamp_format":   h.TimestampFormat,
		"id_header":          h.IDHeader,
		"key_id_header":      h.KeyIDHeader,
		"signature_format":   h.SignatureFormat,
		"body_hash_claim":    h.BodyHashClaim,
	}
	for name, v := range fields {
		if v != "" {
			return fmt.Errorf("%s: does not apply to %s, which reads Signature-Input and "+
				"Signature", name, httpSigPreset)
		}
	}
	return nil
}

// parseCoveredRule reads one covered entry: a name such as @method or
// content-digest, or an identifier with parameters such as
// "@query-param";name="id" (the quotes around the name may be left out).
func parseCoveredRule(s string) (coveredRule, error) {
	name, params, hasParams := strings.Cut(s, ";")
	name = strings.Trim(name, `"`)
	if name == "" || name != strings.ToLower(name) || strings.ContainsAny(name, " \t\"") {
		return coveredRule{}, fmt.Errorf("%q is not a lowercase component name", s)
	}
	if name == "@signature-params" || name == "@status" {
		return coveredRule{}, fmt.Errorf("%s cannot be covered by a request signature", name)
	}
	if !hasParams {
		return coveredRule{name: name}, nil
	}
	item, err := httpsfv.UnmarshalItem([]string{strconv.Quote(name) + ";" + params})
	if err != nil {
		return coveredRule{}, fmt.Errorf("%q is not a component identifier: %v", s, err)
	}
	return coveredRule{name: name, exact: canonicalID(item)}, nil
}

// satisfied reports whether the covered components include the rule's.
func (c coveredRule) satisfied(items []httpsfv.Item) bool {
	for _, it := range items {
		if c.exact != "" && canonicalID(it) == c.exact {
			return true
		}
		if c.exact == "" && it.Value == c.name {
			return true
		}
	}
	return false
}

// sigParams are the signature parameters of RFC 9421 Section 2.3.
type sigParams struct {
	created, expires       int64
	hasCreated, hasExpires bool
	keyID, alg, nonce, tag string
}

// readSigParams reads the parameters of one signature's Signature-Input.
// Parameters it does not know are kept in the signature base but are
// otherwise ignored, as the RFC allows.
func readSigParams(params *httpsfv.Params) (sigParams, reason) {
	var p sigParams
	for _, name := range params.Names() {
		v, _ := params.Get(name)
		var ok bool
		switch name {
		case "created":
			p.created, ok = v.(int64)
			p.hasCreated = true
		case "expires":
			p.expires, ok = v.(int64)
			p.hasExpires = true
		case "keyid":
			p.keyID, ok = v.(string)
		case "alg":
			p.alg, ok = v.(string)
		case "nonce":
			p.nonce, ok = v.(string)
		case "tag":
			p.tag, ok = v.(string)
		default:
			ok = true
		}
		if !ok {
			return p, reasonMalformedSignature
		}
	}
	if len(p.keyID) > maxIDLen || len(p.nonce) > maxIDLen || len(p.tag) > maxIDLen {
		return p, reasonMalformedSignature
	}
	return p, ""
}

// verifyHTTPSig runs the checks of an RFC 9421 delivery: it reads the
// signature fields and the body, then verifies the configured label, or
// each label in turn until one meets the policy and verifies.
func (h *Handler) verifyHTTPSig(r *http.Request, d *delivery, buf *bytes.Buffer) reason {
	if r.ContentLength > h.MaxBody {
		return reasonBodyTooLarge
	}
	inputs, sigs, rsn := parseSignatureFields(r.Header)
	if rsn != "" {
		return rsn
	}
	if rsn := readBody(r, h.MaxBody, buf); rsn != "" {
		return rsn
	}
	d.body = buf.Bytes()
	d.method = r.Method
	d.header = r.Header
	msg := h.requestMessage(r)

	labels := inputs.Names()
	if h.hs.label != "" {
		labels = []string{h.hs.label}
	}
	if len(labels) > maxSignatures {
		labels = labels[:maxSignatures]
	}
	// Every label is tried, not only until one verifies: a request signed
	// for two configured keys is remembered under each, so that dropping
	// one of its signatures does not make a replay look new.
	var (
		first    reason
		accepted *delivery
	)
	for _, label := range labels {
		try := *d
		try.matches = nil
		rsn := h.verifyLabel(r, msg, label, inputs, sigs, &try)
		switch {
		case rsn == "" && accepted == nil:
			accepted = &try
		case rsn == "":
			accepted.matches = append(accepted.matches, try.matches...)
		case first == "":
			first = rsn
		}
	}
	if accepted == nil {
		return first
	}
	*d = *accepted
	return ""
}

// parseSignatureFields parses Signature-Input and Signature as the
// Dictionaries RFC 9421 Section 4 defines.
func parseSignatureFields(hdr http.Header) (in, sig *httpsfv.Dictionary, rsn reason) {
	inLines, sigLines := hdr.Values("Signature-Input"), hdr.Values("Signature")
	switch {
	case len(inLines) == 0:
		if len(sigLines) == 0 {
			return nil, nil, reasonMissingSignature
		}
		return nil, nil, reasonMalformedSignature
	case len(sigLines) == 0:
		return nil, nil, reasonMissingSignature
	case fieldLen(inLines) > maxSigInputField, fieldLen(sigLines) > maxSigField:
		return nil, nil, reasonMalformedSignature
	}
	in, err := httpsfv.UnmarshalDictionary(inLines)
	if err != nil {
		return nil, nil, reasonMalformedSignature
	}
	sig, err = httpsfv.UnmarshalDictionary(sigLines)
	if err != nil {
		return nil, nil, reasonMalformedSignature
	}
	return in, sig, ""
}

func fieldLen(lines []string) int {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	return n
}

// verifyLabel checks one signature against the policy, then verifies it
// and, when it covers Content-Digest, the body's digest.
func (h *Handler) verifyLabel(r *http.Request, msg *sigMessage, label string,
	inputs, sigs *httpsfv.Dictionary, d *delivery) reason {
	input, sig, rsn := labelMembers(label, inputs, sigs)
	if rsn != "" {
		return rsn
	}
	p, rsn := readSigParams(input.Params)
	if rsn != "" {
		return rsn
	}
	d.keyID = p.keyID
	if rsn := h.checkSigPolicy(p, input, d); rsn != "" {
		return rsn
	}

	// Keys first: a request that names no usable key costs no base.
	cands, rsn := h.sigCandidates(r, p, d)
	if rsn != "" {
		return rsn
	}
	base, rsn := signatureBase(msg, input)
	if rsn != "" {
		return rsn
	}
	for _, c := range cands {
		if m, ok := c.verify(base, sig); ok {
			d.matches = append(d.matches, m)
		}
	}
	if rsn := d.matched(); rsn != "" {
		return rsn
	}

	if coversField(input.Items, "content-digest") {
		if rsn := checkContentDigest(r.Header.Values("Content-Digest"), d.body); rsn != "" {
			return rsn
		}
	}
	d.id = p.nonce
	return ""
}

// labelMembers returns a label's covered components and its signature.
func labelMembers(label string, inputs, sigs *httpsfv.Dictionary) (httpsfv.InnerList,
	[]byte, reason) {
	m, ok := inputs.Get(label)
	if !ok {
		return httpsfv.InnerList{}, nil, reasonMissingSignature
	}
	input, ok := m.(httpsfv.InnerList)
	if !ok {
		return httpsfv.InnerList{}, nil, reasonMalformedSignature
	}
	sm, ok := sigs.Get(label)
	if !ok {
		return httpsfv.InnerList{}, nil, reasonMissingSignature
	}
	item, ok := sm.(httpsfv.Item)
	if !ok {
		return httpsfv.InnerList{}, nil, reasonMalformedSignature
	}
	sig, ok := item.Value.([]byte)
	if !ok || len(sig) == 0 || len(sig) > maxSignatureBytes {
		return httpsfv.InnerList{}, nil, reasonMalformedSignature
	}
	return input, sig, ""
}

// checkSigPolicy applies the configured policy to a signature's parameters
// and covered components before any key is used.
func (h *Handler) checkSigPolicy(p sigParams, input httpsfv.InnerList, d *delivery) reason {
	if !p.hasCreated {
		return reasonMissingTimestamp
	}
	if p.created < 0 {
		return reasonMalformedTimestamp
	}
	d.timestamp = strconv.FormatInt(p.created, 10)
	if rsn := checkTimestamp(d.timestamp, "unix", now(), h.tolerance); rsn != "" {
		return rsn
	}
	if p.hasExpires && now().Unix() >= p.expires {
		return reasonExpiredSignature
	}
	if h.hs.tag != "" && p.tag != h.hs.tag {
		return reasonTagMismatch
	}
	for _, rule := range h.hs.covered {
		if !rule.satisfied(input.Items) {
			return reasonUncovered
		}
	}
	if _, ok := httpSigAlgorithms[p.alg]; p.alg != "" && !ok {
		return reasonDisallowedAlg
	}
	return ""
}

// coversField reports whether a field of the given name is covered, with
// any parameters.
func coversField(items []httpsfv.Item, name string) bool {
	for _, it := range items {
		if it.Value == name {
			return true
		}
	}
	return false
}

// sigCandidate is one key that may verify a signature, with the algorithm
// that the key, or the configuration, fixes for it.
type sigCandidate struct {
	alg    string
	secret *hmacKey
	pub    *pubKey
}

// verify checks sig over base. The replay guard names the delivery by a
// digest of the base, which re-encoding an ECDSA signature cannot change.
func (c sigCandidate) verify(base, sig []byte) (match, bool) {
	sum := sha256.Sum256(base)
	if c.secret != nil {
		mac := c.secret.mac()
		mac.Write(base)
		got := mac.Sum(nil)
		c.secret.putMAC(mac)
		return c.secret.match(sum[:]), hmac.Equal(got, sig)
	}
	pa := httpSigAlgorithms[c.alg]
	var digest []byte
	if pa.hash != 0 {
		hh := pa.hash.New()
		hh.Write(base)
		digest = hh.Sum(nil)
	}
	return c.pub.match(sum[:]), pa.verify(c.pub.key, base, digest, sig, false)
}

// sigCandidates selects the keys for a signature's keyid (every key when it
// names none). A key whose fixed algorithm contradicts the signature's alg
// parameter is never used; when that leaves no key, the signature is
// refused as disallowed_algorithm.
func (h *Handler) sigCandidates(r *http.Request, p sigParams, d *delivery) ([]sigCandidate,
	reason) {
	var cands []sigCandidate
	contradicted := false
	for i, k := range h.keys {
		kid := h.hs.secretKIDs[i]
		if p.keyID != "" && kid != "" && kid != p.keyID {
			continue
		}
		if p.alg != "" && p.alg != "hmac-sha256" {
			contradicted = true
			continue
		}
		cands = append(cands, sigCandidate{alg: "hmac-sha256", secret: k})
	}

	var ringReason reason
	if h.ring != nil {
		allow := func(k *pubKey) bool { return httpSigAlgFor(k, h.hs.alg) != "" }
		keys, rsn, retry := h.ring.find(r.Context(), p.keyID, allow)
		ringReason, d.retryAfter = rsn, retry
		for _, k := range keys {
			alg := httpSigAlgFor(k, h.hs.alg)
			if p.alg != "" && p.alg != alg {
				contradicted = true
				continue
			}
			cands = append(cands, sigCandidate{alg: alg, pub: k})
		}
	}

	switch {
	case len(cands) > 0:
		return cands, ""
	case contradicted:
		return nil, reasonDisallowedAlg
	case ringReason == reasonKeysUnavailable:
		return nil, ringReason
	}
	return nil, reasonUnknownKey
}

// httpSigAlgFor is the RFC 9421 algorithm that verifies with k: the
// configured one if k fits it, else the one its JWK "alg" names, else the
// one its type implies. An RSA key that neither configuration nor its JWK
// ties to PSS or PKCS#1 v1.5 has none and is not used.
func httpSigAlgFor(k *pubKey, configured string) string {
	if configured != "" {
		if pa := httpSigAlgorithms[configured]; pa != nil && pa.allows(k) {
			return configured
		}
		return ""
	}
	if k.alg != "" {
		name := joseToHTTPSig[k.alg]
		if pa := httpSigAlgorithms[name]; pa != nil && pa.fits(k.key) {
			return name
		}
		return ""
	}
	for _, name := range []string{"ed25519", "ecdsa-p256-sha256", "ecdsa-p384-sha384"} {
		if httpSigAlgorithms[name].fits(k.key) {
			return name
		}
	}
	return ""
}

// provisionHTTPSigKeys loads the secrets and public keys of http_signature.
// Both may be configured: a signature's keyid selects among them, and each
// key verifies only with the algorithm it is fixed to.
func (h *Handler) provisionHTTPSigKeys(ctx caddy.Context) error {
	alg := h.hs.alg
	if len(h.Secrets) > 0 {
		if alg != "" && alg != "hmac-sha256" {
			return fmt.Errorf("secrets: algorithm %s verifies with public keys", alg)
		}
		if err := h.provisionSecretsFor(algorithms["hmac-sha256"]); err != nil {
			return err
		}
	}
	if !h.publicKeyed() {
		return nil
	}
	if alg == "hmac-sha256" {
		return fmt.Errorf("public_keys, jwks: algorithm hmac-sha256 verifies with secrets")
	}
	keys, err := resolvePublicKeys(h.PublicKeys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if httpSigAlgFor(k, alg) == "" {
			return fmt.Errorf("public_keys: key %s (%s) fixes no RFC 9421 algorithm%s; set "+
				"algorithm to one it fits", k.name, keyKind(k.key), jwkAlgNote(k.alg))
		}
		h.warnCertExpiry(k)
	}
	h.ring = &keyRing{static: newKeySet(keys)}
	return h.provisionJWKS(ctx)
}
