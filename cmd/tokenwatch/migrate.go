package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tokenwatch/tokenwatch/config"
	"github.com/tokenwatch/tokenwatch/store"
)

func init() {
	register(&command{name: "migrate", summary: "create or upgrade the ClickHouse tables (or print their DDL)", run: runMigrate})
}

const migrateUsage = `usage: tokenwatch migrate [--config FILE] [--print] [--cluster NAME]

Applies the ClickHouse migrations that the server named by clickhouse.addr has
not recorded in <database>.schema_migrations, in order, then applies the
retention TTLs of clickhouse.retention. Every statement is idempotent, so
running it again, or after an interruption, is safe.

  --config FILE   configuration file (the clickhouse section is used)
  --print         print the DDL to stdout instead of running it (no server needed)
  --cluster NAME  emit ON CLUSTER DDL with Replicated*MergeTree local tables and
                  Distributed tables (overrides clickhouse.cluster)
`

var errNoClickHouse = errors.New("clickhouse.addr: empty; set the native-protocol address of the server (e.g. [\"127.0.0.1:9000\"]) or use --print")

func runMigrate(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "configuration file")
	printOnly := fs.Bool("print", false, "print the DDL instead of running it")
	cluster := fs.String("cluster", "", "cluster name for ON CLUSTER DDL")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.stdout, migrateUsage)
			return exitOK
		}
		fmt.Fprintf(env.stderr, "tokenwatch migrate: %v\n\n%s", err, migrateUsage)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "tokenwatch migrate: unexpected argument %q\n\n%s", fs.Arg(0), migrateUsage)
		return exitUsage
	}
	cfg := config.DefaultConfig().ClickHouse
	if *cfgPath != "" {
		full, err := config.Load(*cfgPath)
		if err != nil {
			return printProblems(env, "migrate", err)
		}
		cfg = full.ClickHouse
	}
	if *cluster != "" {
		cfg.Cluster = *cluster
	}
	if err := cfg.Validate(); err != nil {
		return fail(env, "migrate", err)
	}
	if *printOnly {
		script, err := store.Script(cfg)
		if err != nil {
			return fail(env, "migrate", err)
		}
		fmt.Fprint(env.stdout, script)
		return exitOK
	}
	if !cfg.Enabled() {
		return fail(env, "migrate", errNoClickHouse)
	}
	conn, err := store.Dial(cfg)
	if err != nil {
		return fail(env, "migrate", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := store.Migrate(ctx, store.NativeExecer{Conn: conn}, cfg)
	if err != nil {
		return fail(env, "migrate", err)
	}
	fmt.Fprintf(env.stdout, "database %s: applied %d migration(s) %v, %d already applied; retention TTLs set\n",
		cfg.Database, len(res.Applied), res.Applied, len(res.Skipped))
	return exitOK
}
