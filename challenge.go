package webhookverify

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// challenges are the endpoint handshakes of the presets that define one. The
// handler answers a handshake itself, and only once its signature verified:
// Zoom's answer is an HMAC of a value taken from the request, and answering
// unsigned requests would let anyone have the secret sign what they chose.
var challenges = map[string]func(h *Handler, w http.ResponseWriter, r *http.Request,
	d *delivery) (bool, error){
	"zoom":   answerZoom,
	"slack":  answerSlack,
	"twitch": answerTwitch,
}

// maxChallengeLen bounds the challenge value echoed back to the sender.
const maxChallengeLen = 256

// validateChallenge checks that the preset defines a handshake.
func (h *Handler) validateChallenge() error {
	if !h.Challenge {
		return nil
	}
	if _, ok := challenges[h.scheme.name]; !ok {
		return fmt.Errorf("challenge: preset %q defines no handshake (zoom, slack and "+
			"twitch do)", h.scheme.name)
	}
	return nil
}

// answerChallenge answers the handshake when d is one; it reports whether it
// did, in which case the delivery is not forwarded.
func (h *Handler) answerChallenge(w http.ResponseWriter, r *http.Request, d *delivery) bool {
	answer, ok := challenges[h.scheme.name]
	if !h.Challenge || !ok {
		return false
	}
	answered, err := answer(h, w, r, d)
	if err != nil {
		h.logger.Error("answering webhook challenge", zap.String("scheme", h.scheme.name),
			zap.Error(err))
	}
	if answered {
		h.logger.Info("webhook challenge answered", zap.String("scheme", h.scheme.name),
			zap.String("key_id", d.keyID), zap.String("remote_ip", remoteIP(r)))
	}
	return answered
}

// answerZoom answers endpoint.url_validation with the plain token and its
// HMAC-SHA256, in hex, under the secret that verified the request.
func answerZoom(h *Handler, w http.ResponseWriter, _ *http.Request, d *delivery) (bool, error) {
	var msg struct {
		Event   string `json:"event"`
		Payload struct {
			PlainToken string `json:"plainToken"`
		} `json:"payload"`
	}
	if json.Unmarshal(d.body, &msg) != nil || msg.Event != "endpoint.url_validation" {
		return false, nil
	}
	token := msg.Payload.PlainToken
	if token == "" || len(token) > maxChallengeLen || strings.Contains(token, ":") {
		return false, nil
	}

	k := d.matches[0].key
	mac := k.mac()
	mac.Write([]byte(token))
	sum := hex.EncodeToString(mac.Sum(nil))
	k.putMAC(mac)

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return true, json.NewEncoder(w).Encode(map[string]string{
		"plainToken":     token,
		"encryptedToken": sum,
	})
}

// answerSlack echoes the challenge of a url_verification event.
func answerSlack(_ *Handler, w http.ResponseWriter, _ *http.Request, d *delivery) (bool, error) {
	var msg struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(d.body, &msg) != nil || msg.Type != "url_verification" {
		return false, nil
	}
	return writeChallenge(w, msg.Challenge)
}

// answerTwitch echoes the challenge of a webhook_callback_verification
// message, named by the Twitch-Eventsub-Message-Type header.
func answerTwitch(_ *Handler, w http.ResponseWriter, r *http.Request, d *delivery) (bool, error) {
	if r.Header.Get("Twitch-Eventsub-Message-Type") != "webhook_callback_verification" {
		return false, nil
	}
	var msg struct {
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(d.body, &msg) != nil {
		return false, nil
	}
	return writeChallenge(w, msg.Challenge)
}

// writeChallenge sends the challenge back as plain text.
func writeChallenge(w http.ResponseWriter, challenge string) (bool, error) {
	if challenge == "" || len(challenge) > maxChallengeLen {
		return false, nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(challenge))
	return true, err
}
