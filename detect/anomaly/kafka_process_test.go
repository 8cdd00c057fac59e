//go:build integration

package anomaly

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

// The owner processes of TestOwnerProcessesRebalance are this test binary
// re-executed with envOwnerProcess set: TestOwnerProcess then runs one Owner
// and reports on stdout, one line each:
//
//	OWNED <n>              partitions owned (on change)
//	USE <fingerprint>      a use it processed
//	ALERT <alert JSON>     an alert it raised
const envOwnerProcess = "TOKENWATCH_ANOMALY_OWNER_PROCESS"

// lineSink prints uses and alerts for the parent test.
type lineSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *lineSink) Process(_ context.Context, b *tokenwatch.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b.Uses {
		fmt.Fprintf(s.w, "USE %s\n", b.Uses[i].Fingerprint)
	}
	for i := range b.Alerts {
		j, err := json.Marshal(&b.Alerts[i])
		if err != nil {
			return err
		}
		fmt.Fprintf(s.w, "ALERT %s\n", j)
	}
	return nil
}

func TestOwnerProcess(t *testing.T) {
	spec := os.Getenv(envOwnerProcess)
	if spec == "" {
		t.Skip("helper process of TestOwnerProcessesRebalance")
	}
	var cfg ScaleOutConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sink := &lineSink{w: os.Stdout}
	o, err := NewOwner(cfg, newTestEngine(t), sink)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		last := -1
		for ctx.Err() == nil {
			if n := len(o.Owned()); n != last {
				sink.mu.Lock()
				fmt.Fprintf(os.Stdout, "OWNED %d\n", n)
				sink.mu.Unlock()
				last = n
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := o.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// ownerProcess is a running owner process as the parent sees it.
type ownerProcess struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	owned  int
	uses   map[string]bool
	alerts []tokenwatch.Alert
	done   chan struct{}
}

func startOwnerProcess(t *testing.T, cfg ScaleOutConfig) *ownerProcess {
	t.Helper()
	spec, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOwnerProcess+"="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ownerProcess{cmd: cmd, uses: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			switch {
			case strings.HasPrefix(line, "OWNED "):
				p.owned, _ = strconv.Atoi(strings.TrimPrefix(line, "OWNED "))
			case strings.HasPrefix(line, "USE "):
				p.uses[strings.TrimPrefix(line, "USE ")] = true
			case strings.HasPrefix(line, "ALERT "):
				var a tokenwatch.Alert
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ALERT ")), &a); err == nil {
					p.alerts = append(p.alerts, a)
				}
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	})
	return p
}

func (p *ownerProcess) ownedCount() int { p.mu.Lock(); defer p.mu.Unlock(); return p.owned }
func (p *ownerProcess) saw(f tokenwatch.Fingerprint) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.uses[f.String()]
}
func (p *ownerProcess) alert(typ string) (tokenwatch.Alert, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.alerts {
		if a.Type == typ {
			return a, true
		}
	}
	return tokenwatch.Alert{}, false
}

// TestOwnerProcessesRebalance is TestOwnersRebalance with two owner
// processes: the process that judged the first use of an impossible-travel
// incident is terminated; the other process takes its partitions over,
// rebuilds their state from the changelog and catches the incident.
func TestOwnerProcessesRebalance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := DefaultScaleOutConfig()
	cfg.Brokers = brokers
	cfg.UsesTopic = testenv.CreateTopic(t, "anomaly-puses", 4)
	cfg.ChangelogTopic = testenv.CreateTopic(t, "anomaly-pstate", 4)
	cfg.GroupID = "anomaly-procs-" + cfg.UsesTopic
	cfg.BatchWait = 5 * time.Millisecond

	a, b := startOwnerProcess(t, cfg), startOwnerProcess(t, cfg)
	poll(t, "both processes to own partitions", 90*time.Second, func() bool {
		na, nb := a.ownedCount(), b.ownedCount()
		return na > 0 && nb > 0 && na+nb == 4
	})
	ctx := context.Background()
	rep, err := NewRepartitioner(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	produce := func(b *tokenwatch.Batch) {
		poll(t, "a batch to be produced", 20*time.Second, func() bool {
			err := rep.Process(ctx, b)
			if err != nil {
				t.Logf("produce (will retry): %v", err)
			}
			return err == nil
		})
	}
	produce(&tokenwatch.Batch{Uses: []tokenwatch.TokenUse{use(1, 0, frankfurt)}})
	var leaver, stayer *ownerProcess
	poll(t, "the first use to be processed", 30*time.Second, func() bool {
		switch {
		case a.saw(fp(1)):
			leaver, stayer = a, b
		case b.saw(fp(1)):
			leaver, stayer = b, a
		}
		return leaver != nil
	})
	part := PartitionOf(fp(1), 4)
	poll(t, "token 1's state in the changelog", 30*time.Second, func() bool {
		return changelogEnd(t, brokers, cfg.ChangelogTopic, part) > 0
	})
	if err := leaver.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leaver.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the leaving owner process did not exit")
	}
	poll(t, "the remaining process to own all partitions", 90*time.Second, func() bool {
		return stayer.ownedCount() == 4
	})
	produce(&tokenwatch.Batch{Uses: []tokenwatch.TokenUse{use(1, 11*time.Minute, sydney)}})
	var got tokenwatch.Alert
	poll(t, "impossible_travel from the process that took over", 30*time.Second, func() bool {
		var ok bool
		got, ok = stayer.alert(tokenwatch.AlertImpossibleTravel)
		return ok
	})
	if len(got.Evidence) != 2 || got.Evidence[0].City != "Frankfurt am Main" || got.Evidence[1].City != "Sydney" {
		t.Errorf("evidence: %+v", got.Evidence)
	}
	if _, ok := leaver.alert(tokenwatch.AlertImpossibleTravel); ok {
		t.Error("the process that left raised the alert")
	}
}
