// Package receiver is a webhook endpoint for tokenwatch's own demo and
// benchmarks, standing in for a SOAR: an HTTP server on 127.0.0.1 that checks
// every Standard Webhooks signature (webhook-id, webhook-timestamp,
// webhook-signature over id.timestamp.body with a whsec_ secret) and keeps
// each alert once per webhook-id, since retries of one delivery carry the
// same id. It verifies independently of the signer in package alerts.
package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Receiver is a running webhook endpoint.
type Receiver struct {
	// URL to configure as the webhook sink, and the whsec_ Secret to sign with.
	URL, Secret string
	// Rejected counts requests with a bad signature or a body that is not an alert.
	Rejected atomic.Int64

	key    []byte
	srv    *http.Server
	onRecv func(tokenwatch.Alert, time.Time)

	mu   sync.Mutex
	seen map[string]bool
	got  []tokenwatch.Alert
}

// Start listens on 127.0.0.1 with a fresh random secret. onRecv, when not nil,
// is called once per new webhook-id with the alert and its arrival time.
func Start(onRecv func(tokenwatch.Alert, time.Time)) (*Receiver, error) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the webhook receiver: %w", err)
	}
	r := &Receiver{
		URL:    "http://" + ln.Addr().String() + "/tokenwatch",
		Secret: "whsec_" + base64.StdEncoding.EncodeToString(key),
		key:    key, onRecv: onRecv, seen: map[string]bool{},
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, r.key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	ok := false
	for _, sig := range strings.Fields(req.Header.Get("webhook-signature")) {
		ok = ok || hmac.Equal([]byte(sig), []byte(want))
	}
	var a tokenwatch.Alert
	if !ok || json.Unmarshal(body, &a) != nil {
		r.Rejected.Add(1)
		http.Error(w, "bad signature or body", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	fresh := !r.seen[id]
	if fresh {
		r.seen[id] = true
		r.got = append(r.got, a)
	}
	r.mu.Unlock()
	if fresh && r.onRecv != nil {
		r.onRecv(a, now)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Count is the number of distinct webhook-ids received.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Alerts returns the newest update of each alert id, in arrival order.
func (r *Receiver) Alerts() []tokenwatch.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := map[string]int{}
	var out []tokenwatch.Alert
	for _, a := range r.got {
		if i, ok := idx[a.ID]; ok {
			if a.Update >= out[i].Update {
				out[i] = a
			}
			continue
		}
		idx[a.ID] = len(out)
		out = append(out, a)
	}
	return out
}

// Close stops the server.
func (r *Receiver) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}
