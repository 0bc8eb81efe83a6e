package webhookverify

import "strings"

// queryParam returns the values of the query parameters whose name, once
// parsed and re-encoded, is name, in the order they occur. RFC 9421
// Section 2.2.8 parses the query as application/x-www-form-urlencoded
// (WHATWG URL Section 5.1) and compares and signs names and values
// re-encoded with that format's percent-encode set, spaces as %20.
func queryParam(rawQuery, name string) []string {
	var values []string
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		n, v, _ := strings.Cut(pair, "=")
		if formEncode(formDecode(n)) == name {
			values = append(values, formEncode(formDecode(v)))
		}
	}
	return values
}

// formDecode reads one name or value of a form-encoded string: "+" is a
// space and "%XX" a byte; a "%" not followed by two hex digits stays as it
// is, as the WHATWG percent-decoder leaves it.
func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// formEncode percent-encodes every byte outside the form-urlencoded safe
// set (ASCII letters, digits and "*-._"), spaces included, with upper-case
// hex digits.
func formEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if formSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func formSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '*' || c == '-' || c == '.' || c == '_'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
