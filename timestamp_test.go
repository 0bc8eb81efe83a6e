package webhookverify

import (
	"strconv"
	"testing"
	"time"
)

func TestCheckTimestamp(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	unix := func(d time.Duration) string { return itoa64(at.Add(d).Unix()) }
	tests := []struct {
		name, raw, format string
		want              reason
	}{
		{"now", unix(0), "unix", ""},
		{"edge past", unix(-5 * time.Minute), "unix", ""},
		{"past", unix(-5*time.Minute - time.Second), "unix", reasonStaleTimestamp},
		{"edge future", unix(5 * time.Minute), "unix", ""},
		{"future", unix(5*time.Minute + time.Second), "unix", reasonFutureTimestamp},
		{"ms", itoa64(at.UnixMilli()), "unix_ms", ""},
		{"ms read as seconds", itoa64(at.UnixMilli()), "unix", reasonFutureTimestamp},
		{"rfc3339 nanos", at.Add(time.Minute).Format(time.RFC3339Nano), "rfc3339", ""},
		{"rfc3339 offset", "2026-01-02T05:04:05+02:00", "rfc3339", ""},
		{"empty", "", "unix", reasonMissingTimestamp},
		{"sign", "+" + unix(0), "unix", reasonMalformedTimestamp},
		{"negative", "-1", "unix", reasonMalformedTimestamp},
		{"space", unix(0) + " ", "unix", reasonMalformedTimestamp},
		{"fraction", unix(0) + ".5", "unix", reasonMalformedTimestamp},
		{"leading zero", "0" + unix(0), "unix", reasonMalformedTimestamp},
		{"leading zero ms", "0" + itoa64(at.UnixMilli()), "unix_ms", reasonMalformedTimestamp},
		{"overflow", "99999999999999999999", "unix", reasonMalformedTimestamp},
		{"rfc3339 garbage", "yesterday", "rfc3339", reasonMalformedTimestamp},
		{"too long", "2026-01-02T03:04:05.000000000000000000000Z", "rfc3339",
			reasonMalformedTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkTimestamp(tt.raw, tt.format, at, 5*time.Minute); got != tt.want {
				t.Errorf("checkTimestamp(%q, %s) = %q, want %q", tt.raw, tt.format, got, tt.want)
			}
		})
	}
}

func TestJSONField(t *testing.T) {
	tests := []struct {
		body, want string
		ok         bool
	}{
		{`{"webhookTimestamp": 1700000000000, "x": 1}`, "1700000000000", true},
		{`{"webhookTimestamp":"1700000000000"}`, "1700000000000", true},
		{`{"data":{"webhookTimestamp":1}}`, "", false},
		{`[1,2]`, "", false},
		{`not json`, "", false},
	}
	for _, tt := range tests {
		got, ok := jsonField([]byte(tt.body), "webhookTimestamp")
		if got != tt.want || ok != tt.ok {
			t.Errorf("jsonField(%s) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzCheckTimestamp must never panic, and must accept only values that
// parse back to a time within the tolerance.
func FuzzCheckTimestamp(f *testing.F) {
	f.Add("1700000000", "unix")
	f.Add("1700000000000", "unix_ms")
	f.Add("2023-11-14T22:13:20.123456789Z", "rfc3339")
	at := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, raw, format string) {
		if _, ok := timestampParsers[format]; !ok {
			return
		}
		if checkTimestamp(raw, format, at, time.Hour) != "" {
			return
		}
		parsed, err := timestampParsers[format](raw)
		if err != nil || parsed.Sub(at).Abs() > time.Hour {
			t.Fatalf("accepted %q (%s) as %v", raw, format, parsed)
		}
	})
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
