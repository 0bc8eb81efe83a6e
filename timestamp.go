package webhookverify

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// maxTimestampLen bounds a timestamp before any parsing; the longest valid
// form, RFC 3339 with nanoseconds and an offset, is 35 bytes.
const maxTimestampLen = 40

// timestampParsers read the accepted timestamp_format values.
var timestampParsers = map[string]func(string) (time.Time, error){
	"unix": func(s string) (time.Time, error) {
		n, err := parseDigits(s)
		return time.Unix(n, 0), err
	},
	"unix_ms": func(s string) (time.Time, error) {
		n, err := parseDigits(s)
		return time.UnixMilli(n), err
	},
	"rfc3339": func(s string) (time.Time, error) {
		return time.Parse(time.RFC3339Nano, s)
	},
}

var errNotDigits = errors.New("not a decimal number")

// parseDigits accepts plain decimal digits only: no sign, no spaces, no
// exponent, no leading zero, at most 18 digits so that the value cannot
// overflow. One text per value keeps the signed bytes of a delivery unique.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return 0, errNotDigits
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errNotDigits
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// checkTimestamp parses raw and reports whether it lies within the tolerance.
func checkTimestamp(raw, format string, now time.Time, tol time.Duration) reason {
	if raw == "" {
		return reasonMissingTimestamp
	}
	if len(raw) > maxTimestampLen {
		return reasonMalformedTimestamp
	}
	t, err := timestampParsers[format](raw)
	if err != nil {
		return reasonMalformedTimestamp
	}
	if now.Sub(t) > tol {
		return reasonStaleTimestamp
	}
	if t.Sub(now) > tol {
		return reasonFutureTimestamp
	}
	return ""
}

// jsonField returns the text of a top-level number or string field of a JSON
// object body, as the sender wrote it.
func jsonField(body []byte, name string) (string, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return "", false
	}
	raw, ok := fields[name]
	if !ok {
		return "", false
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	return string(raw), true
}
