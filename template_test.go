package webhookverify

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
)

// collector is a hash.Hash that keeps what is written to it.
type collector struct{ strings.Builder }

func (c *collector) Write(p []byte) (int, error) { return c.Builder.Write(p) }
func (c *collector) Sum(b []byte) []byte         { return b }
func (c *collector) Reset()                      { c.Builder.Reset() }
func (c *collector) Size() int                   { return sha256.Size }
func (c *collector) BlockSize() int              { return 64 }

func TestTemplateWrite(t *testing.T) {
	d := &delivery{
		body: []byte("BODY"), id: "ID", timestamp: "TS", method: "POST",
		url:    "https://h.example/p?q=1",
		header: http.Header{"X-Extra": {"E"}},
	}
	tests := []struct{ tmpl, want string }{
		{"{body}", "BODY"},
		{"{id}.{timestamp}.{body}", "ID.TS.BODY"},
		{"v0:{timestamp}:{body}", "v0:TS:BODY"},
		{"{id}{timestamp}{body}", "IDTSBODY"},
		{"{method} {url}|{header.X-Extra}|{header.Missing}|{body}!",
			"POST https://h.example/p?q=1|E||BODY!"},
		{"{http.request.method}|{http.request.header.X-Extra}|{body}", "POST|E|BODY"},
	}
	for _, tt := range tests {
		tmpl, err := parseTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tt.tmpl, err)
		}
		var c collector
		tmpl.write(&c, d)
		if c.String() != tt.want {
			t.Errorf("%q wrote %q, want %q", tt.tmpl, c.String(), tt.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct{ tmpl, want string }{
		{"", "{body} exactly once, found 0"},
		{"{id}.{timestamp}", "{body} exactly once, found 0"},
		{"{body}{body}", "{body} exactly once, found 2"},
		{"{body", "unclosed placeholder"},
		{"{bogus}{body}", "unknown placeholder {bogus}"},
		{"{header.}{body}", "needs a header name"},
		{"{http.request.uri}{body}", "unknown placeholder {http.request.uri}"},
	}
	for _, tt := range tests {
		_, err := parseTemplate(tt.tmpl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.tmpl, err, tt.want)
		}
	}
}

func TestTemplateSeparated(t *testing.T) {
	tests := []struct {
		tmpl string
		ok   bool
	}{
		{"{id}.{timestamp}.{body}", true},
		{"v0:{timestamp}:{body}", true},
		{"{body}", true},
		{"{id}{timestamp}.{body}", false},
		{"{id}.{timestamp}{body}", false},
		{"{id}{body}", false},
		{"{method} {url}{header.X}|{body}", false},
	}
	for _, tt := range tests {
		tmpl, err := parseTemplate(tt.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if err := tmpl.checkSeparated(); (err == nil) != tt.ok {
			t.Errorf("%q: checkSeparated() = %v, want ok=%v", tt.tmpl, err, tt.ok)
		}
	}
}
