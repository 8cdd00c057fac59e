package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/policy"
)

// Alert is the part of the DESIGN.md alert contract scoring needs.
type Alert struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Fingerprint string    `json:"fingerprint"`
	ClientID    string    `json:"client_id"`
	Service     string    `json:"service"`
	EventTime   time.Time `json:"event_time"`
	Summary     string    `json:"summary"`
}

// Report is the outcome of scoring alerts against a truth.
type Report struct {
	Incidents int `json:"incidents"`
	Detected  int `json:"detected"`
	// PerType: incidents and detections per alert type.
	PerType map[string][2]int `json:"per_type"`
	// Missed lists the incidents no alert matched.
	Missed []Incident `json:"missed,omitempty"`
	// FalseAlerts are alerts on a trap's or a background token.
	FalseAlerts []Alert `json:"false_alerts,omitempty"`
	// FalseByPattern counts false alerts per benign pattern ("background" for ordinary traffic).
	FalseByPattern map[string]int `json:"false_by_pattern,omitempty"`
	// Unexpected are alerts on an incident token of a type neither planted nor allowed.
	Unexpected []Alert `json:"unexpected,omitempty"`
	// Delays are alert event time minus the incident's first bad use, per detection.
	DelayP50 time.Duration `json:"delay_p50"`
	DelayP99 time.Duration `json:"delay_p99"`
	DelayMax time.Duration `json:"delay_max"`

	// Posture findings (package policy), scored on their own: every planted
	// case must be reported, and no posture finding may name anything else.
	PostureCases    int               `json:"posture_cases"`
	PostureDetected int               `json:"posture_detected"`
	PosturePerType  map[string][2]int `json:"posture_per_type"`
	PostureMissed   []PostureCase     `json:"posture_missed,omitempty"`
	PostureFalse    []Alert           `json:"posture_false,omitempty"`
}

func isPosture(typ string) bool { return slices.Contains(policy.Types, typ) }

// matches reports whether alert a reports posture case c (or is allowed beside it).
func (c *PostureCase) matches(a *Alert, allowAlso bool) bool {
	if a.Type != c.Type && !(allowAlso && slices.Contains(c.Also, a.Type)) {
		return false
	}
	return c.Fingerprint != "" && a.Fingerprint == c.Fingerprint ||
		c.ClientID != "" && a.ClientID == c.ClientID ||
		c.Service != "" && a.Service == c.Service
}

// DetectionRate is Detected / Incidents.
func (r *Report) DetectionRate() float64 {
	if r.Incidents == 0 {
		return 1
	}
	return float64(r.Detected) / float64(r.Incidents)
}

// LoadTruth reads truth.json from a scenario directory.
func LoadTruth(dir string) (*Truth, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileTruth))
	if err != nil {
		return nil, err
	}
	var t Truth
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("parse %s: %w", FileTruth, err)
	}
	return &t, nil
}

// ReadAlerts reads alert JSON lines: plain alerts (a webhook receiver's log,
// the demo's alerts.jsonl) or outbox envelopes {"alert": {...}, ...}
// (tokenwatch run --alerts-file). Lines that are neither are an error: the
// file is tokenwatch's own output.
func ReadAlerts(r io.Reader) ([]Alert, error) {
	var out []Alert
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var a struct {
			Alert
			Envelope *Alert `json:"alert"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return nil, fmt.Errorf("alerts line %d: %w", n, err)
		}
		if a.Envelope != nil {
			a.Alert = *a.Envelope
		}
		if a.Type == "" {
			return nil, fmt.Errorf("alerts line %d: not an alert (no type)", n)
		}
		out = append(out, a.Alert)
	}
	return out, sc.Err()
}

// Evaluate scores alerts against t. An incident is detected by an alert of its
// type on its fingerprint; the delay is that alert's event time minus the
// incident's first bad use (the earliest such alert counts).
func Evaluate(t *Truth, all []Alert) *Report {
	r := &Report{PerType: map[string][2]int{}, FalseByPattern: map[string]int{}, PosturePerType: map[string][2]int{}}
	var alerts, posture []Alert
	for _, a := range all {
		if isPosture(a.Type) {
			posture = append(posture, a)
		} else {
			alerts = append(alerts, a)
		}
	}
	for i := range t.Posture {
		c := &t.Posture[i]
		r.PostureCases++
		n := r.PosturePerType[c.Type]
		n[0]++
		found := false
		for j := range posture {
			if c.matches(&posture[j], false) {
				found = true
				break
			}
		}
		if found {
			r.PostureDetected++
			n[1]++
		} else {
			r.PostureMissed = append(r.PostureMissed, *c)
		}
		r.PosturePerType[c.Type] = n
	}
	for j := range posture {
		ok := false
		for i := range t.Posture {
			if t.Posture[i].matches(&posture[j], true) {
				ok = true
				break
			}
		}
		if !ok {
			r.PostureFalse = append(r.PostureFalse, posture[j])
		}
	}
	byFP := map[string][]Alert{}
	for _, a := range alerts {
		byFP[a.Fingerprint] = append(byFP[a.Fingerprint], a)
	}
	incidentFP := map[string][]Incident{}
	for _, in := range t.Incidents {
		incidentFP[in.Fingerprint] = append(incidentFP[in.Fingerprint], in)
	}
	var delays []time.Duration
	for _, in := range t.Incidents {
		r.Incidents++
		c := r.PerType[in.Type]
		c[0]++
		var best *Alert
		for i, a := range byFP[in.Fingerprint] {
			if a.Type == in.Type && (best == nil || a.EventTime.Before(best.EventTime)) {
				best = &byFP[in.Fingerprint][i]
			}
		}
		if best == nil {
			r.Missed = append(r.Missed, in)
		} else {
			r.Detected++
			c[1]++
			d := best.EventTime.Sub(in.FirstBadTime)
			if d < 0 {
				d = 0
			}
			delays = append(delays, d)
		}
		r.PerType[in.Type] = c
	}
	trapFP := map[string]string{}
	for _, tr := range t.Traps {
		trapFP[tr.Fingerprint] = tr.Pattern
	}
	for _, a := range alerts {
		ins, isIncident := incidentFP[a.Fingerprint]
		if !isIncident {
			r.FalseAlerts = append(r.FalseAlerts, a)
			p, ok := trapFP[a.Fingerprint]
			if !ok {
				p = "background"
			}
			r.FalseByPattern[p]++
			continue
		}
		allowed := false
		for _, in := range ins {
			if a.Type == in.Type || slices.Contains(in.Also, a.Type) {
				allowed = true
			}
		}
		if !allowed {
			r.Unexpected = append(r.Unexpected, a)
		}
	}
	if len(delays) > 0 {
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		r.DelayP50 = delays[(len(delays)-1)*50/100]
		r.DelayP99 = delays[(len(delays)-1)*99/100]
		r.DelayMax = delays[len(delays)-1]
	}
	return r
}

// Print writes r as a short table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "detection: %d/%d incidents (%.1f%%), false alerts: %d, unexpected types on incident tokens: %d\n",
		r.Detected, r.Incidents, 100*r.DetectionRate(), len(r.FalseAlerts), len(r.Unexpected))
	types := make([]string, 0, len(r.PerType))
	for k := range r.PerType {
		types = append(types, k)
	}
	sort.Strings(types)
	for _, k := range types {
		c := r.PerType[k]
		fmt.Fprintf(w, "  %-24s %d/%d\n", k, c[1], c[0])
	}
	fmt.Fprintf(w, "detection delay (alert event time - first bad use): p50 %s, p99 %s, max %s\n", r.DelayP50, r.DelayP99, r.DelayMax)
	for _, m := range r.Missed {
		fmt.Fprintf(w, "  missed %s (fingerprint %s)\n", m.ID, m.Fingerprint)
	}
	for p, n := range r.FalseByPattern {
		fmt.Fprintf(w, "  false alerts on %s: %d\n", p, n)
	}
	for _, a := range r.FalseAlerts {
		fmt.Fprintf(w, "  false %s on %s: %s\n", a.Type, a.Fingerprint, a.Summary)
	}
	fmt.Fprintf(w, "posture findings: %d/%d planted cases reported, %d findings on anything else\n", r.PostureDetected, r.PostureCases, len(r.PostureFalse))
	types = types[:0]
	for k := range r.PosturePerType {
		types = append(types, k)
	}
	sort.Strings(types)
	for _, k := range types {
		c := r.PosturePerType[k]
		fmt.Fprintf(w, "  %-28s %d/%d\n", k, c[1], c[0])
	}
	for _, m := range r.PostureMissed {
		fmt.Fprintf(w, "  missed %s\n", m.ID)
	}
	for _, a := range r.PostureFalse {
		fmt.Fprintf(w, "  unplanned %s: %s\n", a.Type, a.Summary)
	}
}
