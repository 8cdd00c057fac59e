// Command scenario generates a token-incident scenario and scores alerts
// against it:
//
//	scenario gen  -o DIR [-seed N] [-users N] [-per-type N] [-key K]
//	scenario eval -dir DIR -alerts FILE [-json]
//
// eval exits 1 when an incident is missed or a benign pattern alerts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/tokenwatch/tokenwatch/bench/scenario"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: scenario gen|eval [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "gen":
		os.Exit(gen(os.Args[2:]))
	case "eval":
		os.Exit(eval(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "scenario: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func gen(args []string) int {
	cfg := scenario.DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("o", "", "output directory (required)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "background users")
	fs.IntVar(&cfg.Hours, "hours", cfg.Hours, "hours of traffic (≥ 9)")
	fs.IntVar(&cfg.PerType, "per-type", cfg.PerType, "instances of each incident type and benign pattern")
	fs.IntVar(&cfg.AppLinesPerAuthLine, "app-lines", cfg.AppLinesPerAuthLine, "clean application lines per auth line")
	key := fs.String("key", string(cfg.Key), "fingerprint key tokenwatch will run with")
	if err := fs.Parse(args); err != nil || *out == "" {
		fmt.Fprintln(os.Stderr, "scenario gen: -o DIR is required")
		return 2
	}
	cfg.Key = []byte(*key)
	t, err := scenario.Generate(*out, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario gen:", err)
		return 2
	}
	fmt.Printf("wrote %s: %d incidents, %d benign traps, %d background tokens, lines %v\n", *out, len(t.Incidents), len(t.Traps), t.Background, t.Lines)
	return 0
}

func eval(args []string) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	dir := fs.String("dir", "", "scenario directory (required)")
	alertsFile := fs.String("alerts", "", "alerts JSON lines file (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil || *dir == "" || *alertsFile == "" {
		fmt.Fprintln(os.Stderr, "scenario eval: -dir and -alerts are required")
		return 2
	}
	t, err := scenario.LoadTruth(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario eval:", err)
		return 2
	}
	f, err := os.Open(*alertsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario eval:", err)
		return 2
	}
	defer f.Close()
	alerts, err := scenario.ReadAlerts(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario eval:", err)
		return 2
	}
	r := scenario.Evaluate(t, alerts)
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(r)
	} else {
		r.Print(os.Stdout)
	}
	if len(r.Missed) > 0 || len(r.FalseAlerts) > 0 {
		return 1
	}
	return 0
}
