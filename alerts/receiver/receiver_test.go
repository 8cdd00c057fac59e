package receiver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// A correctly signed alert is kept once per webhook-id and reported to
// onRecv; a wrong signature is rejected; Alerts keeps the newest update.
func TestReceiver(t *testing.T) {
	var got []string
	r, err := Start(func(a tokenwatch.Alert, _ time.Time) { got = append(got, fmt.Sprintf("%s/%d", a.JTI, a.Update)) })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	send := func(id string, key []byte, a tokenwatch.Alert) int {
		body, _ := json.Marshal(a)
		ts := fmt.Sprint(time.Now().Unix())
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.", id, ts)
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, r.URL, bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a := tokenwatch.Alert{ID: "al-1", Type: tokenwatch.AlertTokenLeak, JTI: "j1"}
	upd := a
	upd.Update = 1
	for i, tc := range []struct {
		id   string
		key  []byte
		a    tokenwatch.Alert
		want int
	}{
		{"msg_1", r.key, a, http.StatusNoContent},
		{"msg_1", r.key, a, http.StatusNoContent}, // a retry: accepted, kept once
		{"msg_2", []byte("wrong key"), a, http.StatusUnauthorized},
		{"msg_3", r.key, upd, http.StatusNoContent}, // an update of the same alert
	} {
		if code := send(tc.id, tc.key, tc.a); code != tc.want {
			t.Errorf("request %d: status %d, want %d", i, code, tc.want)
		}
	}
	if r.Count() != 2 || len(got) != 2 || got[0] != "j1/0" || got[1] != "j1/1" || r.Rejected.Load() != 1 {
		t.Errorf("kept %d, onRecv %v, rejected %d; want 2, [j1/0 j1/1], 1", r.Count(), got, r.Rejected.Load())
	}
	if as := r.Alerts(); len(as) != 1 || as[0].Update != 1 {
		t.Errorf("Alerts = %+v, want the one alert at update 1", as)
	}
}
