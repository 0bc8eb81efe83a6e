package webhookverify

import "testing"

// TestContentDigest checks Content-Digest against the RFC 9530 examples
// for the body {"hello": "world"} (sha-256 from RFC 9530 Appendix B.1,
// sha-512 as RFC 9421 Appendix B.2 carries it) and the refusals.
func TestContentDigest(t *testing.T) {
	body := []byte(`{"hello": "world"}`)
	const (
		sha256OK = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
		sha512OK = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIi" +
			"Yllu7BNNyealdVLvRwEmTHWXvJwew==:"
		sha256Bad = "sha-256=:Y48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	)
	tests := []struct {
		name  string
		lines []string
		want  reason
	}{
		{"sha-256", []string{sha256OK}, ""},
		{"sha-512", []string{sha512OK}, ""},
		{"both", []string{sha256OK + ", " + sha512OK}, ""},
		{"two lines", []string{sha512OK, sha256OK}, ""},
		{"unknown algorithm beside", []string{"md5=:AAAA:, " + sha256OK}, ""},
		{"mismatch", []string{sha256Bad}, reasonDigestMismatch},
		{"one of two wrong", []string{sha512OK + ", " + sha256Bad}, reasonDigestMismatch},
		{"only unknown", []string{"md5=:AAAA:"}, reasonDigestMismatch},
		{"not a byte sequence", []string{"sha-256=abc"}, reasonDigestMismatch},
		{"inner list", []string{"sha-256=(:AAAA:)"}, reasonDigestMismatch},
		{"not a dictionary", []string{"sha-256=:"}, reasonDigestMismatch},
		{"absent", nil, reasonMissingComponent},
	}
	for _, tt := range tests {
		if got := checkContentDigest(tt.lines, body); got != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := checkContentDigest([]string{sha256OK}, []byte(`{"hello": "world"} `)); got !=
		reasonDigestMismatch {
		t.Errorf("changed body: reason %q", got)
	}
}
