package webhookverify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// signedComponents are the components the signer covers: the method, the
// target URI and the body's digest, and whatever else covered requires.
func signedComponents(covered []string) []string {
	out := []string{"@method", "@target-uri", "content-digest"}
	for _, c := range covered {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// signHTTP signs a request as an RFC 9421 sender does, with the first
// secret and hmac-sha256: it sets Content-Digest (sha-256),
// Signature-Input (label sig1, created, keyid and, with an ID, nonce) and
// Signature.
func (s *signer) signHTTP(header http.Header, d *delivery, at time.Time) error {
	u, err := url.Parse(d.url)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--url: want an absolute URL, got %q", d.url)
	}
	sum := sha256.Sum256(d.body)
	header.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")

	input, err := s.signatureInput(d, at)
	if err != nil {
		return err
	}
	m := &sigMessage{method: d.method, scheme: u.Scheme,
		authority: normalizeAuthority(u.Scheme, u.Host), target: u.RequestURI(),
		path: u.EscapedPath(), query: u.RawQuery, hasQuery: u.RawQuery != "", header: header}
	base, rsn := signatureBase(m, input)
	if rsn != "" {
		return fmt.Errorf("building the signature base: %s", rsn)
	}

	mac := hmac.New(sha256.New, s.secret)
	mac.Write(base)
	inputText, _ := httpsfv.Marshal(input)
	header.Set("Signature-Input", "sig1="+inputText)
	header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(mac.Sum(nil))+":")
	return nil
}

// signatureInput is the inner list of the covered components and the
// signature parameters.
func (s *signer) signatureInput(d *delivery, at time.Time) (httpsfv.InnerList, error) {
	input := httpsfv.InnerList{Params: httpsfv.NewParams()}
	for _, c := range s.covered {
		item, err := componentItem(c)
		if err != nil {
			return input, err
		}
		input.Items = append(input.Items, item)
	}
	input.Params.Add("created", at.Unix())
	if s.keyID != "" {
		input.Params.Add("keyid", s.keyID)
	}
	if d.id != "" {
		input.Params.Add("nonce", d.id)
	}
	return input, nil
}

// componentItem turns a covered entry, such as @method or
// @query-param;name="id", into a component identifier.
func componentItem(c string) (httpsfv.Item, error) {
	name, params, _ := strings.Cut(c, ";")
	text := strconv.Quote(strings.Trim(name, `"`))
	if params != "" {
		text += ";" + params
	}
	item, err := httpsfv.UnmarshalItem([]string{text})
	if err != nil {
		return item, fmt.Errorf("covered: %q is not a component identifier", c)
	}
	return item, nil
}
