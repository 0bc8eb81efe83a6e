package webhookverify

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dunglas/httpsfv"
)

// sigMessage is what an RFC 9421 signature base is built from: the parts of
// a request (or, in tests, of a response) that components can name, with the
// URL parts as the sender addressed them.
type sigMessage struct {
	method string
	// scheme is lowercase; authority is the host (lowercase) and a port
	// other than the scheme's default.
	scheme    string
	authority string
	// target is the request target as the sender wrote it on the request
	// line; path and query are its parts, still percent-encoded.
	target   string
	path     string
	query    string
	hasQuery bool
	// status is set for responses only.
	status int
	header http.Header
	// request is the request that a response answers, for ";req".
	request *sigMessage
}

// isResponse reports whether m is a response.
func (m *sigMessage) isResponse() bool { return m.status != 0 }

// maxCovered bounds the components one signature may cover.
const maxCovered = 64

// signatureBase builds the signature base of RFC 9421 Section 2.5 for the
// covered components and parameters in input, and returns it without a
// trailing newline. It fails with the reason to refuse the delivery when a
// component cannot be read from m.
func signatureBase(m *sigMessage, input httpsfv.InnerList) ([]byte, reason) {
	if len(input.Items) > maxCovered {
		return nil, reasonMalformedSignature
	}
	var b bytes.Buffer
	seen := make(map[string]bool, len(input.Items))

	for _, item := range input.Items {
		id, rsn := componentID(item)
		if rsn != "" {
			return nil, rsn
		}
		key := canonicalID(item)
		if seen[key] {
			return nil, reasonMalformedSignature
		}
		seen[key] = true

		values, rsn := componentValues(m, item)
		if rsn != "" {
			return nil, rsn
		}
		for _, v := range values {
			b.WriteString(id)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}

	params, err := httpsfv.Marshal(input)
	if err != nil {
		return nil, reasonMalformedSignature
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(params)
	return b.Bytes(), ""
}

// componentID serializes a component identifier as it starts its line of
// the base: a lowercase String name and its parameters.
func componentID(item httpsfv.Item) (string, reason) {
	name, ok := item.Value.(string)
	if !ok || name == "" || name != strings.ToLower(name) {
		return "", reasonMalformedSignature
	}
	id, err := httpsfv.Marshal(item)
	if err != nil {
		return "", reasonMalformedSignature
	}
	return id, ""
}

// canonicalID names a component independently of its parameters' order,
// which RFC 9421 Section 2 says does not make two identifiers distinct.
func canonicalID(item httpsfv.Item) string {
	name, _ := item.Value.(string)
	names := slices.Clone(item.Params.Names())
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(name)
	for _, n := range names {
		v, _ := item.Params.Get(n)
		b.WriteString(";" + n + "=")
		item := httpsfv.NewItem(v)
		s, _ := httpsfv.Marshal(item)
		b.WriteString(s)
	}
	return b.String()
}

// componentFlags are the parameters a component identifier carries.
type componentFlags struct {
	sf, bs, req bool
	key, name   string
	hasKey      bool
	hasName     bool
}

// readFlags reads the parameters of a component identifier; any parameter
// this verifier does not implement (such as "tr") refuses the signature.
func readFlags(item httpsfv.Item) (componentFlags, reason) {
	var f componentFlags
	for _, n := range item.Params.Names() {
		v, _ := item.Params.Get(n)
		switch n {
		case "sf", "bs", "req":
			on, ok := v.(bool)
			if !ok {
				return f, reasonMalformedSignature
			}
			switch n {
			case "sf":
				f.sf = on
			case "bs":
				f.bs = on
			default:
				f.req = on
			}
		case "key", "name":
			s, ok := v.(string)
			if !ok {
				return f, reasonMalformedSignature
			}
			if n == "key" {
				f.key, f.hasKey = s, true
			} else {
				f.name, f.hasName = s, true
			}
		default:
			return f, reasonUnsupportedComponent
		}
	}
	return f, ""
}

// componentValues returns the value of one covered component; a query
// parameter that occurs several times has one value, and one line, per
// occurrence.
func componentValues(m *sigMessage, item httpsfv.Item) ([]string, reason) {
	name := item.Value.(string)
	f, rsn := readFlags(item)
	if rsn != "" {
		return nil, rsn
	}

	if f.req {
		// a request has no request of its own to take the value from
		if !m.isResponse() {
			return nil, reasonUnsupportedComponent
		}
		if m.request == nil {
			return nil, reasonMissingComponent
		}
		m = m.request
	}

	if strings.HasPrefix(name, "@") {
		if f.sf || f.bs || f.hasKey || (f.hasName && name != "@query-param") {
			return nil, reasonUnsupportedComponent
		}
		return derivedValues(m, name, f)
	}
	if f.hasName {
		return nil, reasonUnsupportedComponent
	}
	v, rsn := fieldValue(m.header.Values(name), f)
	if rsn != "" {
		return nil, rsn
	}
	return []string{v}, ""
}

// derivedValues computes a derived component (RFC 9421 Section 2.2).
func derivedValues(m *sigMessage, name string, f componentFlags) ([]string, reason) {
	if name == "@status" {
		if !m.isResponse() {
			return nil, reasonUnsupportedComponent
		}
		return []string{strconv.Itoa(m.status)}, ""
	}
	if m.isResponse() {
		return nil, reasonUnsupportedComponent
	}

	var v string
	switch name {
	case "@method":
		v = m.method
	case "@target-uri":
		v = m.scheme + "://" + m.authority + m.pathOrSlash()
		if m.hasQuery {
			v += "?" + m.query
		}
	case "@authority":
		v = m.authority
	case "@scheme":
		v = m.scheme
	case "@request-target":
		v = m.target
	case "@path":
		v = m.pathOrSlash()
	case "@query":
		v = "?" + m.query
	case "@query-param":
		if !f.hasName {
			return nil, reasonMalformedSignature
		}
		values := queryParam(m.query, f.name)
		if len(values) == 0 {
			return nil, reasonMissingComponent
		}
		return values, ""
	default:
		return nil, reasonUnsupportedComponent
	}
	return []string{v}, ""
}

// pathOrSlash is the path, with an empty one written as "/" as RFC 9110
// Section 4.2.3 normalizes it.
func (m *sigMessage) pathOrSlash() string {
	if m.path == "" {
		return "/"
	}
	return m.path
}

// fieldValue computes the value of a header field component from its field
// lines, as RFC 9421 Section 2.1 combines or re-serializes them.
func fieldValue(lines []string, f componentFlags) (string, reason) {
	if len(lines) == 0 {
		return "", reasonMissingComponent
	}
	trimmed := make([]string, len(lines))
	for i, l := range lines {
		trimmed[i] = strings.Trim(l, " \t")
	}

	switch {
	case f.bs && (f.sf || f.hasKey):
		return "", reasonUnsupportedComponent
	case f.bs:
		list := make(httpsfv.List, len(trimmed))
		for i, l := range trimmed {
			list[i] = httpsfv.NewItem([]byte(l))
		}
		return marshalField(list)
	case f.hasKey:
		dict, err := httpsfv.UnmarshalDictionary(trimmed)
		if err != nil {
			return "", reasonMalformedSignature
		}
		member, ok := dict.Get(f.key)
		if !ok {
			return "", reasonMissingComponent
		}
		return marshalMember(member)
	case f.sf:
		return strictField(trimmed)
	}
	return strings.Join(trimmed, ", "), ""
}

// strictField re-serializes a structured field (RFC 9421 Section 2.1.1).
// The field's type is not known here, so a Dictionary is tried first, then
// a List, then an Item; a value that parses as more than one of them
// serializes to the same text either way.
func strictField(lines []string) (string, reason) {
	if dict, err := httpsfv.UnmarshalDictionary(lines); err == nil {
		return marshalField(dict)
	}
	if list, err := httpsfv.UnmarshalList(lines); err == nil {
		return marshalField(list)
	}
	if item, err := httpsfv.UnmarshalItem(lines); err == nil {
		return marshalField(item)
	}
	return "", reasonMalformedSignature
}

func marshalField(v httpsfv.StructuredFieldValue) (string, reason) {
	s, err := httpsfv.Marshal(v)
	if err != nil {
		return "", reasonMalformedSignature
	}
	return s, ""
}

func marshalMember(m httpsfv.Member) (string, reason) {
	switch v := m.(type) {
	case httpsfv.Item:
		return marshalField(v)
	case httpsfv.InnerList:
		return marshalField(v)
	}
	return "", reasonMalformedSignature
}
