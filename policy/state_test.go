package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

func TestSipHash(t *testing.T) {
	// The reference vectors of the SipHash paper (appendix A) and its
	// implementation: key 00..0f, messages 00, 00 01, … of length 0..15.
	k := [2]uint64{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	want := map[int]uint64{0: 0x726fdb47dd0e0e31, 1: 0x74f839c593dc67fd, 7: 0xab0200f58b01d137, 8: 0x93f5f5799a932462, 15: 0xa129ca6149be45e5}
	for n, w := range want {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i)
		}
		if got := sipHash(k, string(msg)); got != w {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", n, got, w)
		}
	}
}

// topic is an in-memory compacted topic: the latest value of every key.
type topic map[string][]byte

// persist writes what e changed, as the state log's Persist stage does.
func (tp topic) persist(e *Engine) int {
	recs, buf := e.appendChanges(nil, nil)
	for _, r := range recs {
		k := string(buf[r.k0:r.k1])
		if r.v1 < 0 {
			delete(tp, k)
			continue
		}
		tp[k] = bytes.Clone(buf[r.k1:r.v1])
	}
	return len(recs)
}

// restore reads tp back into e in an order of keys that changes per call (a
// topic's partitions are read one after another, each in its own order).
func (tp topic) restore(t testing.TB, e *Engine) {
	t.Helper()
	e.trackChanges()
	r := e.restoring()
	for k, v := range tp { // random order
		if err := r.apply([]byte(k), v); err != nil {
			t.Fatalf("restore %q: %v", k, err)
		}
	}
	r.finish()
}

// stateCase is a stream of batches that exercises every kind of state across
// the batch boundaries: each stateful finding has uses before and after
// every possible restart point.
func stateCase(n int, seed uint64) [][]tokenwatch.TokenUse {
	rng := rand.New(rand.NewPCG(seed, 1))
	type token struct {
		fp          tokenwatch.Fingerprint
		jwt         *tokenwatch.JWTInfo
		kind, param string
	}
	var tokens []token
	newFP := func() tokenwatch.Fingerprint {
		var fp tokenwatch.Fingerprint
		for i := range fp {
			fp[i] = byte(rng.IntN(256))
		}
		return fp
	}
	// Weighted so that the findings stay below max_state (no random
	// eviction) while the seen pairs pass it.
	clients := []string{"web-portal", "web-portal", "web-shop", "web-shop", "other", "other", "other", "bank-app", "ci-deployer"}
	scopes := []string{"orders:read", "profile:read", "profile:write", "admin:all", "orders:write"}
	at := t0
	newToken := func() token {
		tk := token{fp: newFP(), kind: "jwt"}
		switch rng.IntN(12) {
		case 0: // a refresh token
			tk.kind, tk.param = "oauth_refresh_token", "refresh_token"
			return tk
		case 1: // an ID token
			c := clients[rng.IntN(len(clients))]
			tk.jwt = &tokenwatch.JWTInfo{Iss: "https://idp.example.com", Sub: fmt.Sprintf("user-%d", rng.IntN(40)), ClientID: c, Aud: []string{c}, HasNonce: true,
				Iat: at.Unix(), Exp: at.Unix() + 600, Jti: fmt.Sprintf("id-%d", len(tokens))}
			return tk
		}
		life := int64(1800)
		if rng.IntN(4) == 0 {
			life = 8 * 3600 // over the policy
		}
		// A subject's tokens carry its scopes, now and then one more.
		sub := rng.IntN(40)
		sc := []string{scopes[sub%3]}
		if rng.IntN(6) == 0 {
			sc = append(sc, scopes[rng.IntN(len(scopes))])
		}
		tk.jwt = &tokenwatch.JWTInfo{Alg: "RS256", Iss: "https://idp.example.com", Sub: fmt.Sprintf("user-%d", sub),
			ClientID: clients[rng.IntN(len(clients))], Aud: []string{"https://api.example.com"}, Scope: sc,
			Iat: at.Unix() - 30, Exp: at.Unix() - 30 + life, Jti: fmt.Sprintf("j-%d", len(tokens))}
		if rng.IntN(10) == 0 {
			tk.jwt.CnfJKT = "jkt"
		}
		return tk
	}
	nets := []struct {
		ip  string
		asn uint32
	}{{"81.2.69.10", 2856}, {"1.128.0.1", 1221}, {"35.190.3.4", 15169}, {"10.9.8.7", 0}, {"10.9.99.7", 0}}
	services := []string{"api-gateway", "api-gateway", "api-gateway", "api-gateway", "api-gateway", "api-gateway", "api-gateway", "api-gateway", "api-gateway", "billing-api", "search", "legacy-auth"}
	var batches [][]tokenwatch.TokenUse
	off := int64(0)
	for range n {
		var b []tokenwatch.TokenUse
		for range 5 + rng.IntN(40) {
			// Event time moves on by up to 8 minutes per use, sometimes
			// back (sources read at their own pace): days over the run;
			// leaks come in bursts (a dispensary).
			leak := rng.IntN(4) == 0
			if leak {
				at = at.Add(time.Duration(rng.IntN(90)-10) * time.Second)
			} else {
				at = at.Add(time.Duration(rng.IntN(8*60)-60) * time.Second)
			}
			var tk token
			if len(tokens) == 0 || rng.IntN(3) == 0 {
				tk = newToken()
				tokens = append(tokens, tk)
			} else {
				tk = tokens[len(tokens)-1-rng.IntN(min(len(tokens), 30))]
			}
			nw := nets[rng.IntN(len(nets))]
			off++
			u := tokenwatch.TokenUse{
				Fingerprint: tk.fp, Kind: tk.kind, Param: tk.param, Redacted: "eyJhbG…" + tk.fp.String()[:4],
				Time: at, IP: netip.MustParseAddr(nw.ip), Geo: tokenwatch.Geo{ASN: nw.asn, Country: "GB"},
				Status: 200, Service: services[rng.IntN(len(services))], Path: "/v1/x", Scheme: "Bearer",
				Origin: tokenwatch.Origin{Source: "auth", Partition: int32(off % 3), Offset: off},
			}
			if tk.jwt != nil {
				u.JWT = tk.jwt
			} else {
				u.Scheme = ""
			}
			if leak { // in an app log
				u.Leak, u.IP, u.Geo, u.Scheme, u.Service = true, netip.Addr{}, tokenwatch.Geo{}, "", "legacy-auth"
				if rng.IntN(2) == 0 {
					u.Path = "/error"
				}
			}
			b = append(b, u)
		}
		batches = append(batches, b)
	}
	return batches
}

// statePolicy adds a service whose audience the stream's tokens lack.
var statePolicy = strings.Replace(testPolicy, "services:\n", "services:\n  - service: search\n    audiences: [\"https://search.example.com\"]\n", 1)

func newStateEngine(t testing.TB, maxState int) *Engine {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(statePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{File: p, MaxState: maxState}, WithClock(func() time.Time { return t0.Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func process(t testing.TB, e *Engine, uses []tokenwatch.TokenUse) []tokenwatch.Alert {
	t.Helper()
	b := &tokenwatch.Batch{Uses: slices.Clone(uses)}
	if err := e.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	return b.Alerts
}

func alertsJSON(t testing.TB, as []tokenwatch.Alert) []string {
	t.Helper()
	out := make([]string, len(as))
	for i := range as {
		j, err := json.Marshal(as[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(j)
	}
	return out
}

// TestRestoredEngineFindsWhatAnUninterruptedOneFinds: engine A processes
// batches 1..n; engine B processes 1..k with its changes persisted after
// every batch, and a fresh engine C restored from them processes k+1..n.
// The findings of B and C are those of A, alert for alert (ids, updates,
// summaries, evidence), for every k, and also when every batch runs on a
// newly restored engine, and when the batch before the restart is replayed
// (its state was written, its offsets not committed).
func TestRestoredEngineFindsWhatAnUninterruptedOneFinds(t *testing.T) {
	const maxState = 1000 // small: seen generations rotate within the run
	batches := stateCase(120, 7)
	a := newStateEngine(t, maxState)
	var want [][]string
	typesSeen := map[string]int{}
	for _, b := range batches {
		as := process(t, a, b)
		for _, al := range as {
			typesSeen[fmt.Sprintf("%s/%d", al.Type, al.Update)]++
		}
		want = append(want, alertsJSON(t, as))
	}
	wantFlush := alertsJSON(t, a.Flush(nil))
	a.mu.Lock()
	rotations := a.seenGen
	a.mu.Unlock()
	// The stream must exercise what the test claims to check.
	for _, typ := range []string{TypeLifetime + "/0", TypeLifetime + "/1", TypeScope + "/0", TypeScopeEscalation + "/0", TypeAudienceMismatch + "/0",
		TypeIDTokenAsAccess + "/0", TypeBoundAsBearer + "/0", TypeSenderConstraint + "/0", TypeRefreshInLog + "/0", TypeRefreshReuse + "/0",
		TypeDispensary + "/0", TypeWorkloadOffNetwork + "/0"} {
		if typesSeen[typ] == 0 {
			t.Errorf("the stream raises no %s (got %v)", typ, typesSeen)
		}
	}
	onceKeys := 0
	for typ, n := range typesSeen {
		if !strings.HasPrefix(typ, TypeLifetime) && !strings.HasPrefix(typ, TypeDispensary) {
			onceKeys += n
		}
	}
	if onceKeys >= maxState {
		t.Errorf("%d once-only findings: past max_state, whose random eviction an uninterrupted engine does not share", onceKeys)
	}
	if rotations < 2 {
		t.Errorf("seen rotated %d times; the stream should rotate it at least twice", rotations)
	}
	t.Logf("%d batches, findings %v, %d seen rotations", len(batches), typesSeen, rotations)

	check := func(t *testing.T, i int, got []tokenwatch.Alert) {
		t.Helper()
		if g := alertsJSON(t, got); !slices.Equal(g, want[i]) {
			j := 0
			for j < len(g) && j < len(want[i]) && g[j] == want[i][j] {
				j++
			}
			t.Fatalf("batch %d: %d findings, the uninterrupted engine %d; the first difference, #%d:\n got %.600s\nwant %.600s", i+1, len(g), len(want[i]), j, at(g, j), at(want[i], j))
		}
	}
	checkFlush := func(t *testing.T, e *Engine) {
		t.Helper()
		if g := alertsJSON(t, e.Flush(nil)); !slices.Equal(g, wantFlush) {
			t.Fatalf("flush differs:\n got %v\nwant %v", g, wantFlush)
		}
	}

	for _, k := range []int{1, 2, 5, 17, 40, 41, 63, 90, 119} {
		t.Run(fmt.Sprintf("restart after batch %d", k), func(t *testing.T) {
			tp := topic{}
			b := newStateEngine(t, maxState)
			b.trackChanges()
			for i := range k {
				check(t, i, process(t, b, batches[i]))
				tp.persist(b)
			}
			c := newStateEngine(t, maxState)
			tp.restore(t, c)
			for i := k; i < len(batches); i++ {
				check(t, i, process(t, c, batches[i]))
			}
			checkFlush(t, c)
		})
	}
	t.Run("restart after every batch", func(t *testing.T) {
		tp := topic{}
		var e *Engine
		for i := range batches {
			e = newStateEngine(t, maxState)
			tp.restore(t, e)
			check(t, i, process(t, e, batches[i]))
			tp.persist(e)
		}
		checkFlush(t, e)
	})
	t.Run("replay of the last batch after a restart", func(t *testing.T) {
		tp := topic{}
		var e *Engine
		for i := range batches {
			e = newStateEngine(t, maxState)
			tp.restore(t, e)
			if i > 0 { // batch i-1 was persisted but not committed: read again
				for _, al := range process(t, e, batches[i-1]) {
					t.Errorf("batch %d replayed: raised %s %s again", i, al.Type, al.ID)
				}
			}
			check(t, i, process(t, e, batches[i]))
			tp.persist(e)
		}
		checkFlush(t, e)
	})
}

// TestChangesAreTombstoned: entries that leave the engine (days closed,
// generations of seen keys rotated out, state cut to max_state) leave the
// topic too, so the topic stays the size of the state.
func TestChangesAreTombstoned(t *testing.T) {
	tp := topic{}
	e := newStateEngine(t, 1000)
	e.trackChanges()
	for _, b := range stateCase(400, 3) {
		process(t, e, b)
		tp.persist(e)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	want := 1 + len(e.once) + e.seen.n + len(e.life) + len(e.subjects) + len(e.refresh) + len(e.endpoints) + len(e.applied)
	if len(tp) != want {
		t.Errorf("topic holds %d keys, the engine %d entries", len(tp), want)
	}
	if e.seenGen < 5 {
		t.Errorf("only %d rotations of seen", e.seenGen)
	}
}

// TestRestoreUnderAnotherPolicy: pairs checked under the old policy are
// checked again under a new one, as after a reload, and dropped from the topic.
func TestRestoreUnderAnotherPolicy(t *testing.T) {
	tp := topic{}
	e := newEngine(t, "services: [{service: api-gateway, audiences: ['https://api.example.com']}]\n")
	e.trackChanges()
	u := use(0)
	if got := types(run(e, u)); len(got) != 0 {
		t.Fatalf("first use: %v", got)
	}
	tp.persist(e)
	c := newEngine(t, "services: [{service: api-gateway, audiences: [other]}]\n")
	tp.restore(t, c)
	u.Time, u.Origin.Offset = u.Time.Add(time.Minute), u.Origin.Offset+1
	if got := types(run(c, u)); strings.Join(got, ",") != TypeAudienceMismatch {
		t.Errorf("known token under a policy that now restricts its audience: %v", got)
	}
	// The old pair's record is replaced: one seen key, written under the
	// service-hash key of the meta record, which the restore kept.
	tp.persist(c)
	seen := 0
	for k := range tp {
		if k[0] == recSeen {
			seen++
		}
	}
	if seen != 1 || c.svcKey != e.svcKey {
		t.Errorf("%d seen records after the restore (want 1); service-hash key kept: %v", seen, c.svcKey == e.svcKey)
	}
}

// TestNoAllocationsWhenNothingChanges: with the state log on, a use that
// changes nothing (a known token again) neither allocates nor records a change.
func TestNoAllocationsWhenNothingChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		origin tokenwatch.Origin
	}{
		{"a known token again", tokenwatch.Origin{Source: "app.log", Partition: -1, Offset: 7}},
		{"a replayed use", tokenwatch.Origin{Source: "auth", Partition: 2, Offset: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, testPolicy)
			e.trackChanges()
			u := use(0, func(u *tokenwatch.TokenUse) { u.Origin = tc.origin })
			run(e, u)
			e.appendChanges(nil, nil)
			dst := make([]tokenwatch.Alert, 0, 4)
			if n := testing.AllocsPerRun(1000, func() { dst = e.Check(&u, dst[:0]) }); n != 0 {
				t.Errorf("%v allocations per use", n)
			}
			if recs, _ := e.appendChanges(nil, nil); len(recs) != 0 {
				t.Errorf("%d records changed by uses that change nothing", len(recs))
			}
		})
	}
}

// stateRecords returns one record of every kind, from a real engine.
func stateRecords(t testing.TB) topic {
	t.Helper()
	tp := topic{}
	e := newStateEngine(t, 1000)
	e.trackChanges()
	for _, b := range stateCase(40, 11) {
		process(t, e, b)
		tp.persist(e)
	}
	return tp
}

func TestStateRecordsRoundTrip(t *testing.T) {
	tp := stateRecords(t)
	kinds := map[byte]int{}
	for k := range tp {
		kinds[k[0]]++
	}
	for _, kind := range []byte{recMeta, recOnce, recSeen, recLife, recSubject, recRefresh, recEndpoint, recApplied} {
		if kinds[kind] == 0 {
			t.Errorf("no %q record to round-trip (have %v)", kind, kinds)
		}
	}
	// Restored and written again, every record comes out byte for byte.
	c := newStateEngine(t, 1000)
	tp.restore(t, c)
	c.mu.Lock()
	for k := range tp {
		switch k[0] {
		case recMeta:
			c.changed.markMeta()
		case recOnce:
			c.changed.markOnce([16]byte([]byte(k[1:])))
		case recSeen:
			h := []byte(k[1:])
			c.changed.markSeen(seenKey{le64(h[:8]), le64(h[8:])})
		case recLife:
			lk, _ := decodeLifeKey([]byte(k[1:]))
			c.changed.markLife(lk)
		case recSubject:
			sk, _ := decodeSubjectKey([]byte(k[1:]))
			c.changed.markSubject(sk)
		case recRefresh:
			c.changed.markRefresh(tokenwatch.Fingerprint([]byte(k[1:])))
		case recEndpoint:
			c.changed.markEndpoint(k[1:])
		case recApplied:
			pk, _ := decodeAppliedKey([]byte(k[1:]))
			c.applied[pk].dirty = true
		}
	}
	c.mu.Unlock()
	again := topic{}
	again.persist(c)
	if !reflect.DeepEqual(again, tp) {
		for k, v := range tp {
			if !bytes.Equal(again[k], v) {
				t.Errorf("record %q: %x after a round trip, %x before", k, again[k], v)
			}
		}
		t.Fatalf("%d records before, %d after", len(tp), len(again))
	}
}

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func TestStateRecordErrors(t *testing.T) {
	fp16 := string(make([]byte, 16))
	for _, tc := range []struct {
		name, key string
		value     []byte
		want      string
	}{
		{"empty key", "", []byte{1}, "empty key"},
		{"unknown kind", "x", []byte{1}, "unknown record kind"},
		{"unknown version", "o" + fp16, []byte{9, 2}, "unknown version 9"},
		{"truncated once", "o" + fp16, []byte{1}, "truncated"},
		{"trailing bytes", "o" + fp16, []byte{1, 2, 0}, "1 trailing bytes"},
		{"short once key", "o" + fp16[:3], []byte{1, 2}, "3 bytes, want 16"},
		{"seen boolean", "s" + fp16, []byte{1, 0, 7}, "bad boolean"},
		{"meta key", "mx", []byte{1}, "trailing bytes"},
		{"meta truncated", "m", []byte{1, 2, 2, 0, 1, 2, 3}, "truncated"},
		{"refresh networks", "r" + fp16, []byte{1, 5}, "5 networks out of range"},
		{"refresh address", "r" + fp16, []byte{1, 1, 0, 7}, "bad address length 7"},
		{"refresh prefix", "r" + fp16, []byte{1, 1, 0, 4, 10, 0, 0, 0, 33, 0}, "prefix length 33"},
		{"refresh no network", "r" + fp16, []byte{1, 1, 0, 0, 0}, "an ASN or a prefix"},
		{"endpoint uses", "eapi /x", []byte{1, 0, 0xff, 0xff, 0x03}, "uses is too many"},
		{"endpoint use", "eapi /x", []byte{1, 0, 1, 3, 1, 2, 3}, "decode token use"},
		{"huge string", "l\x00\xff\xff\xff\xff\x0f", []byte{1}, "too long"},
		{"subject scopes", "u\x01a\x01b\x01c", append(append([]byte{1}, make([]byte, 16)...), 2, 1, 'b', 1, 'a'), "scopes not sorted"},
		{"subject scope count", "u\x01a\x01b\x01c", append(append([]byte{1}, make([]byte, 16)...), 0xff, 0xff, 0x03), "scopes is too many"},
		{"lifetime aggregate", "l\x00\x01a\x01b", []byte{1, 0, 2, 2, 0}, "inconsistent lifetime aggregate"},
		{"negative partition", "p\x04auth\x01", []byte{1, 2, 0}, "partition -1 out of range"},
		{"negative offset", "p\x04auth\x02", []byte{1, 1, 0}, "position out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, "")
			err := e.restoring().apply([]byte(tc.key), tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func FuzzStateRecord(f *testing.F) {
	perKind := map[byte]int{}
	for k, v := range stateRecords(f) {
		if perKind[k[0]]++; perKind[k[0]] <= 3 {
			f.Add([]byte(k), v)
		}
	}
	f.Add([]byte("m"), []byte(nil))
	f.Add([]byte("r0123456789abcdef"), []byte{1, 1, 0, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 48, 2})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := New(Config{MaxState: 1000}) // the built-in policy: no file to read per input
		if err != nil {
			t.Fatal(err)
		}
		r := e.restoring()
		if err := r.apply(key, value); err != nil {
			return
		}
		r.finish()
		// Whatever decodes must be usable: checked against, written again.
		u := use(time.Hour, func(u *tokenwatch.TokenUse) { u.Leak, u.Service, u.Path = true, "legacy-auth", "/error" })
		e.Check(&u, nil)
		e.Flush(nil)
		e.appendChanges(nil, nil)
	})
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}
