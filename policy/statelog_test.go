package policy

import (
	"strings"
	"testing"
)

func TestStateLogConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  StateLogConfig
		want string // in the error; empty: valid
	}{
		{"default", DefaultStateLogConfig(), ""},
		{"brokers and topic", StateLogConfig{Brokers: []string{"kafka-1:9092", "[::1]:9092"}, Topic: "tw.policy_state-1"}, ""},
		{"broker without port", StateLogConfig{Brokers: []string{"kafka-1"}}, "policy.state_log.brokers[0]: \"kafka-1\" is not host:port"},
		{"empty broker", StateLogConfig{Brokers: []string{"k:1", ""}}, "policy.state_log.brokers[1]"},
		{"topic with a space", StateLogConfig{Topic: "policy state"}, "policy.state_log.topic: \"policy state\" is not a Kafka topic name"},
		{"topic too long", StateLogConfig{Topic: strings.Repeat("a", 250)}, "policy.state_log.topic"},
		{"topic dot", StateLogConfig{Topic: ".."}, "policy.state_log.topic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
			c := DefaultConfig()
			c.StateLog = tc.cfg
			if err := c.Validate(); (err != nil) != (tc.want != "") {
				t.Errorf("policy Config.Validate = %v", err)
			}
		})
	}
}

func TestStateLogDefaults(t *testing.T) {
	ingest := []string{"kafka-1:9092"}
	for _, tc := range []struct {
		name        string
		cfg         StateLogConfig
		brokers     []string
		group       string
		wantTopic   string
		wantEnabled bool
	}{
		{"on with ingest kafka", StateLogConfig{}, ingest, "tw", "tw-policy-state", true},
		{"off without kafka (files, stdin)", StateLogConfig{}, nil, "", "", false},
		{"disabled", StateLogConfig{Disabled: true}, ingest, "tw", "tw-policy-state", false},
		{"own topic", StateLogConfig{Topic: "mine"}, ingest, "tw", "mine", true},
		{"own brokers", StateLogConfig{Brokers: []string{"other:9092"}}, nil, "tw", "tw-policy-state", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.WithDefaults(tc.brokers, tc.group)
			if c.Topic != tc.wantTopic || c.Enabled() != tc.wantEnabled {
				t.Errorf("topic %q enabled %v, want %q %v", c.Topic, c.Enabled(), tc.wantTopic, tc.wantEnabled)
			}
		})
	}
}
