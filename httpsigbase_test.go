package webhookverify

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

// componentLines builds the base for the covered list and drops the
// @signature-params line.
func componentLines(t *testing.T, m *sigMessage, covered string) (string, reason) {
	t.Helper()
	input := member(t, "s=("+covered+")", "s").(httpsfv.InnerList)
	base, rsn := signatureBase(m, input)
	if rsn != "" {
		return "", rsn
	}
	lines := strings.Split(string(base), "\n")
	return strings.Join(lines[:len(lines)-1], "\n"), ""
}

// TestFieldComponents checks header field values against the examples of
// RFC 9421 Sections 2.1, 2.1.1, 2.1.2 and 2.1.3.
func TestFieldComponents(t *testing.T) {
	hdr := http.Header{}
	hdr.Add("Host", "www.example.com")
	hdr.Add("Date", "Tue, 20 Apr 2021 02:07:56 GMT")
	hdr.Add("X-OWS-Header", "   Leading and trailing whitespace.   ")
	hdr.Add("Cache-Control", "max-age=60")
	hdr.Add("Cache-Control", "   must-revalidate")
	hdr.Add("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)")
	hdr.Add("X-Empty-Header", "")
	hdr.Add("Example-Header", "value, with, lots")
	hdr.Add("Example-Header", "of, commas")
	hdr.Add("Example-Single", "value, with, lots, of, commas")
	hdr.Add("Key-Dict", "a=1, b=2;x=1;y=2, c=(a   b    c), d")
	m := &sigMessage{method: "GET", scheme: "https", authority: "www.example.com",
		header: hdr}

	tests := []struct{ covered, want string }{
		{`"host"`, `"host": www.example.com`},
		{`"date"`, `"date": Tue, 20 Apr 2021 02:07:56 GMT`},
		{`"x-ows-header"`, `"x-ows-header": Leading and trailing whitespace.`},
		{`"cache-control"`, `"cache-control": max-age=60, must-revalidate`},
		{`"example-dict"`, `"example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)`},
		{`"x-empty-header"`, `"x-empty-header": `},
		{`"example-dict";sf`, `"example-dict";sf: a=1, b=2;x=1;y=2, c=(a b c)`},
		{`"key-dict";key="a"`, `"key-dict";key="a": 1`},
		{`"key-dict";key="d"`, `"key-dict";key="d": ?1`},
		{`"key-dict";key="b"`, `"key-dict";key="b": 2;x=1;y=2`},
		{`"key-dict";key="c"`, `"key-dict";key="c": (a b c)`},
		{`"example-header";bs`,
			`"example-header";bs: :dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:`},
		{`"example-single";bs`,
			`"example-single";bs: :dmFsdWUsIHdpdGgsIGxvdHMsIG9mLCBjb21tYXM=:`},
	}
	for _, tt := range tests {
		got, rsn := componentLines(t, m, tt.covered)
		if rsn != "" || got != tt.want {
			t.Errorf("%s: got %q (%s), want %q", tt.covered, got, rsn, tt.want)
		}
	}
}

// TestDerivedComponents checks derived components against the examples of
// RFC 9421 Section 2.2.
func TestDerivedComponents(t *testing.T) {
	m := &sigMessage{method: "POST", scheme: "https", authority: "www.example.com",
		target: "/path?param=value&foo=bar&baz=bat%2Dman", path: "/path",
		query: "param=value&foo=bar&baz=bat%2Dman", hasQuery: true, header: http.Header{}}
	tests := []struct{ covered, want string }{
		{`"@method"`, `"@method": POST`},
		{`"@target-uri"`,
			`"@target-uri": https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman`},
		{`"@authority"`, `"@authority": www.example.com`},
		{`"@scheme"`, `"@scheme": https`},
		{`"@request-target"`, `"@request-target": /path?param=value&foo=bar&baz=bat%2Dman`},
		{`"@path"`, `"@path": /path`},
		{`"@query"`, `"@query": ?param=value&foo=bar&baz=bat%2Dman`},
		{`"@query-param";name="baz"`, `"@query-param";name="baz": bat-man`},
	}
	for _, tt := range tests {
		got, rsn := componentLines(t, m, tt.covered)
		if rsn != "" || got != tt.want {
			t.Errorf("%s: got %q (%s), want %q", tt.covered, got, rsn, tt.want)
		}
	}

	empty := &sigMessage{method: "GET", scheme: "http", authority: "example.com",
		target: "", header: http.Header{}}
	if got, _ := componentLines(t, empty, `"@query" "@path"`); got !=
		"\"@query\": ?\n\"@path\": /" {
		t.Errorf("empty query and path: got %q", got)
	}
}

// TestQueryParam checks the parsing and re-encoding of RFC 9421 Section
// 2.2.8, repeated names, and empty values.
func TestQueryParam(t *testing.T) {
	q := "var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace" +
		"&fa%C3%A7ade%22%3A%20=something&qux=&baz=1&baz=2"
	tests := []struct {
		name string
		want []string
	}{
		{"var", []string{"this%20is%20a%20big%0Amultiline%20value"}},
		{"bar", []string{"with%20plus%20whitespace"}},
		{"fa%C3%A7ade%22%3A%20", []string{"something"}},
		{"qux", []string{""}},
		{"baz", []string{"1", "2"}},
		{"none", nil},
	}
	for _, tt := range tests {
		got := queryParam(q, tt.name)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestComponentErrors checks the refusals of components that cannot be
// read: each has its own reason.
func TestComponentErrors(t *testing.T) {
	req := &sigMessage{method: "POST", scheme: "https", authority: "example.com",
		target: "/a?x=1", path: "/a", query: "x=1", hasQuery: true,
		header: http.Header{"Dict": {"a=1"}, "Plain": {"(("}}}
	resp := &sigMessage{status: 200, header: http.Header{}}
	tests := []struct {
		msg     *sigMessage
		covered string
		want    reason
	}{
		{req, `"@method";req`, reasonUnsupportedComponent},
		{req, `"date";req`, reasonUnsupportedComponent},
		{req, `"@status"`, reasonUnsupportedComponent},
		{req, `"@signature-params"`, reasonUnsupportedComponent},
		{req, `"@unknown"`, reasonUnsupportedComponent},
		{req, `"dict";tr`, reasonUnsupportedComponent},
		{req, `"dict";bs;sf`, reasonUnsupportedComponent},
		{req, `"@method";name="x"`, reasonUnsupportedComponent},
		{req, `"date"`, reasonMissingComponent},
		{req, `"dict";key="b"`, reasonMissingComponent},
		{req, `"@query-param";name="y"`, reasonMissingComponent},
		{req, `"@query-param"`, reasonMalformedSignature},
		{req, `"plain";sf`, reasonMalformedSignature},
		{req, `"Date"`, reasonMalformedSignature},
		{req, `"@method" "@method"`, reasonMalformedSignature},
		{req, `"dict";key="a";sf "dict";sf;key="a"`, reasonMalformedSignature},
		{resp, `"@method"`, reasonUnsupportedComponent},
		{resp, `"@method";req`, reasonMissingComponent},
	}
	for _, tt := range tests {
		if _, rsn := componentLines(t, tt.msg, tt.covered); rsn != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.covered, rsn, tt.want)
		}
	}
}

// TestResponseReq checks that ;req on a response reads the request.
func TestResponseReq(t *testing.T) {
	req := &sigMessage{method: "POST", scheme: "https", authority: "example.com",
		path: "/foo", header: http.Header{"Content-Type": {"application/json"}}}
	resp := &sigMessage{status: 503, header: http.Header{}, request: req}
	got, rsn := componentLines(t, resp, `"@status" "@authority";req "content-type";req`)
	want := "\"@status\": 503\n\"@authority\";req: example.com\n" +
		"\"content-type\";req: application/json"
	if rsn != "" || got != want {
		t.Fatalf("got %q (%s), want %q", got, rsn, want)
	}
}

// TestNormalizeAuthority checks the default ports and case.
func TestNormalizeAuthority(t *testing.T) {
	tests := []struct{ scheme, in, want string }{
		{"https", "Example.COM:443", "example.com"},
		{"http", "example.com:80", "example.com"},
		{"http", "example.com:443", "example.com:443"},
		{"https", "[::1]:443", "[::1]"},
		{"https", "[::1]:8443", "[::1]:8443"},
		{"https", "example.com", "example.com"},
	}
	for _, tt := range tests {
		if got := normalizeAuthority(tt.scheme, tt.in); got != tt.want {
			t.Errorf("%s %s: got %s, want %s", tt.scheme, tt.in, got, tt.want)
		}
	}
}
