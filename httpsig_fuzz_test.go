package webhookverify

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

// FuzzSignatureBase feeds attacker-controlled Signature-Input, Signature,
// header values and request targets through the field parser and the
// signature base builder. Neither may panic, and a base that is built has
// exactly one line per covered value and ends with its @signature-params
// line.
func FuzzSignatureBase(f *testing.F) {
	f.Add(`sig=("@method" "@path" "@query" "content-digest";sf "x";key="a" "y";bs);created=1`,
		`sig=:AAAA:`, `a=1, b=(x y);p`, "/a/b?x=1&y=%20+z&x=2")
	f.Add(`sig=("@query-param";name="x" "@target-uri" "@authority" "@request-target")`,
		`sig=:AAAA:, other=:BBBB:`, `a`, "/?x=%zz&x")
	f.Add(`sig=("@status" "date";req "@method";tr)`, `sig=?1`, ``, "*")
	f.Add(`sig=();keyid="k";alg="ed25519";nonce="n";tag="t";expires=2`, `sig=:AA==:`, `,`, "")

	f.Fuzz(func(t *testing.T, input, sig, field, target string) {
		hdr := http.Header{}
		hdr.Set("Signature-Input", input)
		hdr.Set("Signature", sig)
		for _, name := range []string{"Content-Digest", "X", "Y", "Date"} {
			hdr.Set(name, field)
		}
		inputs, _, rsn := parseSignatureFields(hdr)
		if rsn != "" {
			return
		}
		path, query, hasQuery := strings.Cut(target, "?")
		m := &sigMessage{method: "POST", scheme: "https", authority: "example.com",
			target: target, path: path, query: query, hasQuery: hasQuery, header: hdr}
		for _, label := range inputs.Names() {
			mem, _ := inputs.Get(label)
			input, ok := mem.(httpsfv.InnerList)
			if !ok {
				continue
			}
			readSigParams(input.Params)
			base, rsn := signatureBase(m, input)
			if rsn != "" {
				continue
			}
			last := base[bytes.LastIndexByte(base, '\n')+1:]
			if !bytes.HasPrefix(last, []byte(`"@signature-params": (`)) {
				t.Fatalf("base does not end with its parameters: %q", base)
			}
		}
		checkContentDigest(hdr.Values("Content-Digest"), []byte(target))
	})
}

// FuzzQueryParam checks that every value found re-encodes to itself: the
// component value is always in the encoded form.
func FuzzQueryParam(f *testing.F) {
	f.Add("a=1&b=%41+%zz&a=&=x&&c", "a")
	f.Fuzz(func(t *testing.T, query, name string) {
		for _, v := range queryParam(query, formEncode(name)) {
			if formEncode(formDecode(v)) != v {
				t.Fatalf("value %q is not in encoded form", v)
			}
		}
	})
}

// FuzzTwilioForm feeds form bodies and URLs to the twilio content builder,
// which must not panic and must sign a form's parameters in sorted order.
func FuzzTwilioForm(f *testing.F) {
	f.Add("b=2&a=1&a=%zz&+=%2B", "https://x.example/p?bodySHA256=00")
	f.Fuzz(func(t *testing.T, body, rawURL string) {
		for _, ct := range []string{"application/x-www-form-urlencoded", "application/json"} {
			d := &delivery{body: []byte(body), url: rawURL}
			twilioSigned(ct, d)
		}
	})
}
