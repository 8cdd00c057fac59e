//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/bench/scenario"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// twRun is one tokenwatch deployment: its consumer group, receiver, outbox
// and dead-letter topics, state directory, database and log file.
type twRun struct {
	name             string
	cfg              runConfig
	cfgPath, logPath string
	p                *proc
}

// newRun prepares a run over topics (withDB: with its own ClickHouse database).
func newRun(t *testing.T, name string, tr *traffic, topics *topicSet, withDB bool) *twRun {
	t.Helper()
	dir := t.TempDir()
	r := &twRun{name: name, cfgPath: filepath.Join(dir, "tokenwatch.yaml"), logPath: filepath.Join(dir, "tokenwatch.log")}
	r.cfg = runConfig{
		group:    "e2e-" + name + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
		outbox:   testenv.CreateTopic(t, "e2e-"+name+"-outbox", 1),
		dlq:      testenv.CreateTopic(t, "e2e-"+name+"-dlq", 1),
		stateDir: dir,
		topics:   topics,
		scen:     tr,
		hook:     newReceiver(t),
	}
	if withDB {
		r.cfg.db = newCHDB(t, name)
	}
	return r
}

func (r *twRun) start(t *testing.T) {
	t.Helper()
	r.cfg.write(t, r.cfgPath)
	r.p = startRun(t, r.cfgPath, r.logPath)
}

// waitDone waits until every source record and every outbox message is
// committed (so every alert was delivered), then stops tokenwatch with
// SIGTERM and expects exit status 0.
func (r *twRun) waitDone(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitFor(t, r.name+": source and outbox lag 0", timeout, func() bool {
		if r.p.exited() {
			t.Fatalf("%s: tokenwatch exited: %v\n%s", r.name, r.p.err, tail(r.logPath))
		}
		return caughtUp(t, r.cfg)
	}, func() string {
		return "source lag " + strconv.FormatInt(lag(t, r.cfg.group, r.cfg.topics.parts), 10) + "\n" + tail(r.logPath)
	})
	r.p.stop(t, r.logPath)
}

// result is what users see after a run: deduplicated table contents and
// the alerts the webhook receiver got.
type result struct {
	stats     tableStats
	rowIDs    map[string]map[uint64]bool
	outbox    map[string]bool   // alert id/update pairs in the outbox
	delivered map[string]bool   // alert id/update pairs delivered (distinct webhook-ids)
	types     map[string]string // alert id/update -> type
	// incidents: what an analyst counts, one key per incident (see
	// incidentKey) -> the distinct alert ids delivered for it.
	incidents map[string]map[string]bool
	hookIDs   int
	requests  int
}

func (r *twRun) result(t *testing.T) *result {
	t.Helper()
	res := &result{outbox: outboxAlerts(t, r.cfg.outbox), delivered: map[string]bool{}, types: map[string]string{},
		incidents: map[string]map[string]bool{}, rowIDs: map[string]map[uint64]bool{}}
	ids, alerts, requests, problems := r.cfg.hook.delivered()
	for _, p := range problems {
		t.Errorf("%s receiver: %s", r.name, p)
	}
	res.hookIDs, res.requests = ids, requests
	r.cfg.hook.mu.Lock()
	for _, d := range r.cfg.hook.byHookID {
		res.delivered[d.alertID+"/"+strconv.Itoa(d.update)] = true
		res.types[d.alertID+"/"+strconv.Itoa(d.update)] = d.typ
		k := incidentKey(&d.alert)
		if res.incidents[k] == nil {
			res.incidents[k] = map[string]bool{}
		}
		res.incidents[k][d.alertID] = true
	}
	r.cfg.hook.mu.Unlock()
	_ = alerts
	if r.cfg.db != nil {
		res.stats = r.cfg.db.stats(t)
		for _, tb := range rowTables {
			res.rowIDs[tb] = r.cfg.db.rowIDs(t, tb)
		}
	}
	return res
}

// incidentKey names the incident an alert reports, as an analyst counts them.
// The anomaly engine's alerts are about one token: type and fingerprint (their
// id names the newest use involved, and a restart reads the topics in another
// interleaving, so a replay pair can be judged on other uses of the same
// token: the same incident under another id). A token dispensary is about an
// endpoint: type and service (which leak completes the count, and so the
// window in its id, depends on read order). The other policy findings are
// identified by what they are about (client and scope, client and day, token
// and service, ...): their id, while the token that first showed it, and so
// the fingerprint, depends on read order. Two alerts with one key in one run
// are one incident reported twice.
func incidentKey(a *scenario.Alert) string {
	switch a.Type {
	case "token_leak", "impossible_travel", "concurrent_replay", "leaked_token_replay",
		"post_revocation_use", "expired_token_accepted", "alg_none_accepted":
		return a.Type + "|" + a.Fingerprint
	case "token_dispensary":
		return a.Type + "|" + a.Service
	}
	return a.Type + "|" + a.ID
}

// checkExactlyOnce checks one run on its own: the tables show every row once
// after the documented dedup (count() FINAL == uniqExact(row_id)), and every
// alert of the outbox reached the receiver under exactly one webhook-id.
func (res *result) checkExactlyOnce(t *testing.T, name string) {
	t.Helper()
	for _, tb := range rowTables {
		if res.stats.final[tb] != res.stats.uniq[tb] {
			t.Errorf("%s: %s shows %d rows with FINAL but has %d distinct row ids", name, tb, res.stats.final[tb], res.stats.uniq[tb])
		}
	}
	if res.stats.final["alerts"] != res.stats.alertIDs {
		t.Errorf("%s: alerts FINAL %d rows, %d distinct ids", name, res.stats.final["alerts"], res.stats.alertIDs)
	}
	if res.hookIDs != len(res.outbox) {
		t.Errorf("%s: %d distinct webhook-ids delivered, %d distinct alerts in the outbox", name, res.hookIDs, len(res.outbox))
	}
	for k := range res.outbox {
		if !res.delivered[k] {
			t.Errorf("%s: alert %s is in the outbox but was never delivered", name, k)
		}
	}
}

var (
	sharedOnce   sync.Once
	sharedTopics *topicSet

	baseMu  sync.Mutex
	baseRes *result
)

// scenarioTopics creates the shared scenario topics and produces the whole
// scenario to them once per test run. Tests read them with groups of their own.
func scenarioTopics(t *testing.T) (*traffic, *topicSet) {
	t.Helper()
	tr := scenarioTraffic(t)
	sharedOnce.Do(func() {
		ts := createScenarioTopics(t, "e2e-scenario")
		produce(t, ts, tr.recs, 0, len(tr.recs))
		sharedTopics = ts
	})
	if sharedTopics == nil {
		t.Fatal("shared scenario topics were not produced (an earlier test failed doing it)")
	}
	return tr, sharedTopics
}

// baseline runs tokenwatch once, uninterrupted, over the shared scenario
// topics into a database of its own; it is the reference the other tests
// compare with. Computed once per test run.
func baseline(t *testing.T) *result {
	t.Helper()
	return finishBaseline(t, startBaseline(t))
}

// startBaseline starts the baseline run unless its result is known (nil then),
// so a test can run it beside its own run.
func startBaseline(t *testing.T) *twRun {
	t.Helper()
	baseMu.Lock()
	defer baseMu.Unlock()
	if baseRes != nil {
		return nil
	}
	tr, topics := scenarioTopics(t)
	r := newRun(t, "baseline", tr, topics, true)
	r.start(t)
	return r
}

func finishBaseline(t *testing.T, r *twRun) *result {
	t.Helper()
	baseMu.Lock()
	defer baseMu.Unlock()
	if r == nil {
		return baseRes
	}
	r.waitDone(t, 4*time.Minute)
	res := r.result(t)
	res.checkExactlyOnce(t, "baseline")
	_, alerts, _, _ := r.cfg.hook.delivered()
	checkScenarioAlerts(t, r.cfg.scen, alerts)
	t.Logf("baseline: %s; %d alerts delivered in %d requests", res.stats, res.hookIDs, res.requests)
	if !t.Failed() {
		baseRes = res
	}
	return res
}

func diffKeys(want, got map[string]bool) (missing, extra []string) {
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

func short(s []string) string {
	if len(s) > 10 {
		return strings.Join(s[:10], ", ") + ", …"
	}
	return strings.Join(s, ", ")
}

// envSeed returns E2E_SEED when set (to replay a failing run), else a fresh seed.
func envSeed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("E2E_SEED"), 10, 64); err == nil {
		return s
	}
	return uint64(time.Now().UnixNano())
}
