package webhookverify

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxFormParams bounds the POST parameters of one Twilio delivery; Twilio
// sends a few dozen at most.
const maxFormParams = 1000

// twilioContent works out what Twilio signed after the URL, and puts it in
// d.signed: for a form post, every parameter sorted by name, each name
// followed by its value; otherwise nothing, and the body must then match
// the hex SHA-256 in the URL's bodySHA256 parameter (which the signature
// covers), or be empty.
func twilioContent(r *http.Request, d *delivery) reason {
	return twilioSigned(r.Header.Get("Content-Type"), d)
}

// twilioSigned is twilioContent for a body of the given content type. A URL
// with bodySHA256 binds the body by its hash whatever the content type says:
// the content type is not signed, and a sender could otherwise present a
// hashed body as an empty form.
func twilioSigned(contentType string, d *delivery) reason {
	ct, _, _ := mime.ParseMediaType(contentType)
	if ct == "application/x-www-form-urlencoded" && bodyHashParam(d.url) == "" {
		signed, ok := sortedFormParams(d.body)
		if !ok {
			return reasonMalformedSignature
		}
		d.signed = signed
		return ""
	}

	d.signed = []byte{}
	want := bodyHashParam(d.url)
	if want == "" {
		if len(d.body) == 0 {
			return ""
		}
		// the body is covered neither as parameters nor by a hash
		return reasonDigestMismatch
	}
	sum := sha256.Sum256(d.body)
	got := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) != 1 {
		return reasonDigestMismatch
	}
	return ""
}

// bodyHashParam is the bodySHA256 query parameter of a URL.
func bodyHashParam(rawURL string) string {
	_, query, _ := strings.Cut(rawURL, "?")
	for _, pair := range strings.Split(query, "&") {
		if name, value, _ := strings.Cut(pair, "="); name == "bodySHA256" {
			return value
		}
	}
	return ""
}

// formParam is one decoded name and value of a form body.
type formParam struct{ name, value string }

// sortedFormParams decodes a form body and writes its parameters sorted by
// name (byte order, as Twilio sorts them), each name followed by its value.
// Values of one name are sorted too, and a value repeated under the same
// name counts once, as Twilio's own validators do.
func sortedFormParams(body []byte) ([]byte, bool) {
	var params []formParam
	for _, pair := range strings.Split(string(body), "&") {
		if pair == "" {
			continue
		}
		if len(params) == maxFormParams {
			return nil, false
		}
		n, v, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(n)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		params = append(params, formParam{name, value})
	}
	slices.SortStableFunc(params, func(a, b formParam) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	params = slices.Compact(params)

	out := make([]byte, 0, len(body))
	for _, p := range params {
		out = append(out, p.name...)
		out = append(out, p.value...)
	}
	return out, true
}
