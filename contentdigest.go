package webhookverify

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"hash"
	"strings"

	"github.com/dunglas/httpsfv"
)

// maxDigestField bounds the Content-Digest field before it is parsed.
const maxDigestField = 1024

// contentDigests are the Content-Digest algorithms of RFC 9530 that are
// checked; the others it registers (md5, sha, unixsum, ...) are insecure or
// deprecated and are ignored.
var contentDigests = map[string]func() hash.Hash{
	"sha-256": sha256.New,
	"sha-512": sha512.New,
}

// checkContentDigest verifies a Content-Digest field (RFC 9530) against the
// body. Every sha-256 and sha-512 digest it carries must match, and it must
// carry at least one of them: a field that names only algorithms this
// module does not trust binds nothing.
func checkContentDigest(lines []string, body []byte) reason {
	if len(lines) == 0 {
		return reasonMissingComponent
	}
	if len(strings.Join(lines, ",")) > maxDigestField {
		return reasonDigestMismatch
	}
	dict, err := httpsfv.UnmarshalDictionary(lines)
	if err != nil {
		return reasonDigestMismatch
	}

	checked := 0
	for _, alg := range dict.Names() {
		newHash, ok := contentDigests[alg]
		if !ok {
			continue
		}
		member, _ := dict.Get(alg)
		item, ok := member.(httpsfv.Item)
		if !ok {
			return reasonDigestMismatch
		}
		want, ok := item.Value.([]byte)
		if !ok {
			return reasonDigestMismatch
		}
		h := newHash()
		h.Write(body)
		if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
			return reasonDigestMismatch
		}
		checked++
	}
	if checked == 0 {
		return reasonDigestMismatch
	}
	return ""
}
