package webhookverify

import (
	"fmt"
	"io"
	"strings"
)

// partKind names what one piece of a signed-content template stands for.
type partKind int

const (
	partLiteral partKind = iota
	partBody
	partID
	partTimestamp
	partMethod
	partURL
	partHeader
)

// templateNames maps the placeholders of signed_content to their kinds;
// {header.Name} is handled apart because it carries a name.
var templateNames = map[string]partKind{
	"body":      partBody,
	"id":        partID,
	"timestamp": partTimestamp,
	"method":    partMethod,
	"url":       partURL,
}

// part is one piece of a template: literal bytes, or a value of the delivery.
type part struct {
	kind partKind
	// literal holds the bytes of a partLiteral.
	literal []byte
	// header is the header name of a partHeader.
	header string
}

// template is a compiled signed_content value. Evaluating it writes each part
// straight into the MAC, so the body is never copied to build the content.
type template struct {
	parts []part
}

// parseTemplate compiles a signed_content value such as "{id}.{timestamp}.{body}".
// The body must appear exactly once: content that leaves it out would let
// anyone change the payload under a valid signature.
func parseTemplate(s string) (*template, error) {
	t := &template{}
	bodies := 0

	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t.addLiteral(s)
			break
		}
		t.addLiteral(s[:open])

		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed placeholder in %q", s)
		}
		name := s[open+1 : open+end]
		s = s[open+end+1:]

		p, err := templatePart(name)
		if err != nil {
			return nil, err
		}
		if p.kind == partBody {
			bodies++
		}
		t.parts = append(t.parts, p)
	}

	if bodies != 1 {
		return nil, fmt.Errorf("must contain {body} exactly once, found %d", bodies)
	}
	return t, nil
}

// templatePart resolves one placeholder name. The Caddyfile adapter expands
// Caddy's shorthands {method} and {header.Name} into {http.request.method}
// and {http.request.header.Name} before the handler sees them, so the long
// forms are accepted as the same parts.
func templatePart(name string) (part, error) {
	if name == "http.request.method" || strings.HasPrefix(name, "http.request.header.") {
		name = strings.TrimPrefix(name, "http.request.")
	}
	if h, ok := strings.CutPrefix(name, "header."); ok {
		if h == "" {
			return part{}, fmt.Errorf("placeholder {header.} needs a header name")
		}
		return part{kind: partHeader, header: h}, nil
	}
	kind, ok := templateNames[name]
	if !ok {
		return part{}, fmt.Errorf("unknown placeholder {%s} (want body, id, timestamp, "+
			"method, url or header.<Name>)", name)
	}
	return part{kind: kind}, nil
}

func (t *template) addLiteral(s string) {
	if s != "" {
		t.parts = append(t.parts, part{kind: partLiteral, literal: []byte(s)})
	}
}

// bodyOnly reports whether the signed content is the raw body alone.
func (t *template) bodyOnly() bool {
	return len(t.parts) == 1 && t.parts[0].kind == partBody
}

// partNames names the parts for error messages.
var partNames = map[partKind]string{
	partBody: "{body}", partID: "{id}", partTimestamp: "{timestamp}",
	partMethod: "{method}", partURL: "{url}", partHeader: "{header.*}",
}

// checkSeparated refuses two values next to each other with no literal text
// between them. There the signed bytes cannot tell where one value ends:
// with "{id}{timestamp}" the last character of an ID can move to the front
// of the timestamp, and the signature still holds for a delivery whose ID,
// and so whose replay key, is new. Provider presets whose adjacent values
// have a fixed shape (Twitch's RFC 3339 timestamp) are not checked.
func (t *template) checkSeparated() error {
	for i := 1; i < len(t.parts); i++ {
		a, b := t.parts[i-1].kind, t.parts[i].kind
		if a != partLiteral && b != partLiteral {
			return fmt.Errorf("%s and %s must be separated by literal text, or a value "+
				"could move from one to the other under the same signature",
				partNames[a], partNames[b])
		}
	}
	return nil
}

// uses reports whether the template contains a part of the given kind.
func (t *template) uses(kind partKind) bool {
	for _, p := range t.parts {
		if p.kind == kind {
			return true
		}
	}
	return false
}

// write feeds the signed content of d into h, part by part.
func (t *template) write(h io.Writer, d *delivery) {
	for _, p := range t.parts {
		switch p.kind {
		case partLiteral:
			h.Write(p.literal)
		case partBody:
			if d.signed != nil {
				h.Write(d.signed)
			} else {
				h.Write(d.body)
			}
		case partID:
			h.Write([]byte(d.id))
		case partTimestamp:
			h.Write([]byte(d.timestamp))
		case partMethod:
			h.Write([]byte(d.method))
		case partURL:
			h.Write([]byte(d.url))
		case partHeader:
			h.Write([]byte(d.header.Get(p.header)))
		}
	}
}
