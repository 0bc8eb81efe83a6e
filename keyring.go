package webhookverify

import (
	"context"
	"time"
)

// maxCandidates bounds how many keys one delivery is checked against, so a
// message without a key ID cannot make the handler try a large set.
const maxCandidates = 16

// keySet is an immutable set of public keys indexed by key ID.
type keySet struct {
	keys  []*pubKey
	byKID map[string][]*pubKey
	// unnamed are the keys without a key ID; they are tried for any ID.
	unnamed []*pubKey
}

func newKeySet(keys []*pubKey) *keySet {
	s := &keySet{keys: keys, byKID: make(map[string][]*pubKey, len(keys))}
	for _, k := range keys {
		if k.kid == "" {
			s.unnamed = append(s.unnamed, k)
			continue
		}
		s.byKID[k.kid] = append(s.byKID[k.kid], k)
	}
	return s
}

// hasKID reports whether a key carries exactly this ID.
func (s *keySet) hasKID(kid string) bool {
	return s != nil && len(s.byKID[kid]) > 0
}

// candidates appends the keys that may verify a message naming kid (any
// key when kid is empty) and that allow passes, up to maxCandidates.
func (s *keySet) candidates(kid string, allow func(*pubKey) bool, out []*pubKey) []*pubKey {
	if s == nil {
		return out
	}
	at := now()
	add := func(keys []*pubKey) {
		for _, k := range keys {
			if !k.validUntil.IsZero() && at.After(k.validUntil) {
				continue
			}
			if len(out) < maxCandidates && allow(k) {
				out = append(out, k)
			}
		}
	}
	if kid == "" {
		add(s.keys)
		return out
	}
	add(s.byKID[kid])
	add(s.unnamed)
	return out
}

// remoteKeys is a key set that lives elsewhere and is fetched: the JWKS
// cache. Implementations are safe for concurrent use.
type remoteKeys interface {
	// current returns the usable set, or nil and how long until the next
	// attempt to obtain one when there is none (none fetched yet, or the
	// last good set is older than its stale limit).
	current(ctx context.Context) (*keySet, time.Duration)

	// refetch fetches the set again at once, unless a fetch ran within the
	// rate limit; concurrent calls share one fetch. It returns when the
	// fetch it joined is done, or ctx ends.
	refetch(ctx context.Context)
}

// keyRing holds every public key source of one handler.
type keyRing struct {
	static *keySet
	remote []remoteKeys
}

// find returns the keys to try for a message naming kid (or none). An
// unknown kid makes every remote source refetch once, rate-limited. With no
// candidate it returns reasonUnknownKey, or reasonKeysUnavailable and a
// retry delay when a remote source has no usable set.
func (kr *keyRing) find(ctx context.Context, kid string,
	allow func(*pubKey) bool) ([]*pubKey, reason, time.Duration) {
	sets, retry := kr.sets(ctx)

	if kid != "" && len(kr.remote) > 0 && !anyHasKID(kr.static, sets, kid) {
		for _, r := range kr.remote {
			r.refetch(ctx)
		}
		sets, retry = kr.sets(ctx)
	}

	cands := kr.static.candidates(kid, allow, nil)
	for _, s := range sets {
		cands = s.candidates(kid, allow, cands)
	}
	switch {
	case len(cands) > 0:
		return cands, "", 0
	case retry > 0:
		return nil, reasonKeysUnavailable, retry
	}
	return nil, reasonUnknownKey, 0
}

// sets collects the usable remote sets, and the shortest retry delay among
// the sources that have none.
func (kr *keyRing) sets(ctx context.Context) ([]*keySet, time.Duration) {
	sets := make([]*keySet, 0, len(kr.remote))
	var retry time.Duration
	for _, r := range kr.remote {
		s, wait := r.current(ctx)
		if s != nil {
			sets = append(sets, s)
			continue
		}
		wait = max(wait, time.Second)
		if retry == 0 || wait < retry {
			retry = wait
		}
	}
	return sets, retry
}

func anyHasKID(static *keySet, sets []*keySet, kid string) bool {
	if static.hasKID(kid) {
		return true
	}
	for _, s := range sets {
		if s.hasKID(kid) {
			return true
		}
	}
	return false
}
