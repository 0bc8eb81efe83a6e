package webhookverify

import (
	"strings"
	"testing"
)

func TestDecodeSecret(t *testing.T) {
	tests := []struct {
		value, encoding, want string
		ok                    bool
	}{
		{"whsec_abc", "raw", "whsec_abc", true},
		{"whsec_aGVsbG8=", "base64", "hello", true},
		{"whsec_aGVsbG8", "base64", "hello", true},
		{"aGVsbG8=", "base64", "hello", true},
		{"68656c6c6f", "hex", "hello", true},
		{"68656c6c6g", "hex", "", false},
		{"!!!", "base64", "", false},
		{"", "raw", "", false},
		{"zzsecretzz", "rot13", "", false},
	}
	for _, tt := range tests {
		got, err := decodeSecret(tt.value, tt.encoding)
		if (err == nil) != tt.ok || string(got) != tt.want {
			t.Errorf("decodeSecret(%q, %s) = %q, %v", tt.value, tt.encoding, got, err)
		}
		if err != nil && strings.Contains(err.Error(), tt.value) && tt.value != "" {
			t.Errorf("error %q repeats the secret", err)
		}
	}
}

// TestSecretPlaceholderErrors checks that a secret whose literal braces read
// as a placeholder is refused without quoting it, while a secret that is
// one placeholder names it.
func TestSecretPlaceholderErrors(t *testing.T) {
	_, err := resolveSecretBytes([]Secret{{Value: "Zx9{q7Kp2mWv}Lr8"}}, "raw")
	if err == nil || strings.Contains(err.Error(), "q7Kp2mWv") {
		t.Fatalf("secret with braces: %v", err)
	}

	_, err = resolveSecretBytes([]Secret{{Value: "{env.WEBHOOK_TEST_UNSET_VAR}"}}, "raw")
	if err == nil || !strings.Contains(err.Error(), "WEBHOOK_TEST_UNSET_VAR") {
		t.Fatalf("unset variable: %v, want it named", err)
	}

	raws, err := resolveSecretBytes([]Secret{{Value: `Zx9\{q7Kp2mWv\}Lr8`}}, "raw")
	if err != nil || string(raws[0]) != "Zx9{q7Kp2mWv}Lr8" {
		t.Fatalf("escaped braces: %q, %v", raws, err)
	}
}
