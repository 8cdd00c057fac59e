package store

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one numbered migration file, rendered for a configuration.
type Migration struct {
	Version int
	Name    string // file name without the number and extension
	// Statements are the rendered DDL statements, in order, each idempotent
	// (IF NOT EXISTS), without a trailing semicolon.
	Statements []string
	// Checksum is the SHA-256 of the template file, recorded when applied.
	Checksum string
}

// Execer is what migrations need from a ClickHouse connection: run one
// statement, and run a query returning one UInt32 column.
type Execer interface {
	Exec(ctx context.Context, stmt string) error
	QueryUint32s(ctx context.Context, query string) ([]uint32, error)
}

var fileRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// stmtSplit separates statements: a semicolon that ends a line.
var stmtSplit = regexp.MustCompile(`;[ \t]*(\n|$)`)

// Migrations renders every embedded migration for cfg, in version order.
func Migrations(cfg Config) ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			panic("BUG: migration file not named NNNN_name.sql: " + e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		src, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		stmts, err := render(e.Name(), string(src), cfg)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(src)
		out = append(out, Migration{Version: v, Name: m[2], Statements: stmts, Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			panic(fmt.Sprintf("BUG: migrations must be numbered 1..n without gaps; found %04d at position %d", out[i].Version, i+1))
		}
	}
	return out, nil
}

// bootstrap returns the statements that must exist before migrations run:
// the database and the schema_migrations table.
func bootstrap(cfg Config) ([]string, error) {
	const src = `CREATE DATABASE IF NOT EXISTS {{db}}{{on_cluster}};
CREATE TABLE IF NOT EXISTS {{local "schema_migrations"}}{{on_cluster}}
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = {{engine "ReplacingMergeTree" "schema_migrations" ""}}
ORDER BY version;`
	return render("bootstrap", src, cfg)
}

// render expands the template helpers of a migration and splits it into
// statements. Helpers:
//
//	{{db}}                        the database
//	{{local "t"}}                 the table that stores rows: db.t, or db.t_local on a cluster
//	{{table "t"}}                 the table to query and insert into: db.t (Distributed on a cluster)
//	{{on_cluster}}                "" or " ON CLUSTER name"
//	{{engine "XMergeTree" "t" "args"}}  XMergeTree(args), or ReplicatedXMergeTree('path/db/t_local', '{replica}', args)
//	{{ttl "group" "col"}}         TTL clause from Retention, or ""
//	{{distributed "t" "key"}}     the Distributed table over t_local on a cluster, or ""
func render(name, src string, cfg Config) ([]string, error) {
	db := cfg.Database
	local := func(t string) string {
		if cfg.Cluster != "" {
			return db + "." + t + "_local"
		}
		return db + "." + t
	}
	funcs := template.FuncMap{
		"db":    func() string { return db },
		"local": local,
		"table": func(t string) string { return db + "." + t },
		"on_cluster": func() string {
			if cfg.Cluster == "" {
				return ""
			}
			return " ON CLUSTER " + cfg.Cluster
		},
		"engine": func(engine, t, args string) string {
			if cfg.Cluster == "" {
				if args == "" {
					return engine
				}
				return engine + "(" + args + ")"
			}
			p := fmt.Sprintf("'%s/%s/%s_local', '{replica}'", strings.TrimRight(cfg.ReplicationPath, "/"), db, t)
			if args != "" {
				p += ", " + args
			}
			return "Replicated" + engine + "(" + p + ")"
		},
		"ttl": func(group, col string) string {
			d := cfg.Retention.days(group)
			if d == 0 {
				return ""
			}
			return fmt.Sprintf("TTL toDateTime(%s) + INTERVAL %d DAY", col, d)
		},
		"distributed": func(t, key string) string {
			if cfg.Cluster == "" {
				return ""
			}
			return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s ENGINE = Distributed(%s, %s, %s_local, %s)",
				db, t, cfg.Cluster, local(t), cfg.Cluster, db, t, key)
		},
	}
	tmpl, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse migration %s: %w", name, err)
	}
	var sb strings.Builder
	if err := tmpl.Execute(&sb, nil); err != nil {
		return nil, fmt.Errorf("render migration %s: %w", name, err)
	}
	var stmts []string
	for _, s := range stmtSplit.Split(sb.String(), -1) {
		if s = strings.TrimSpace(stripComments(s)); s != "" {
			stmts = append(stmts, s)
		}
	}
	return stmts, nil
}

// stripComments drops whole-line "--" comments (the DDL has no "--" inside strings).
func stripComments(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// retentionTables maps each table with a TTL to its group and time column; the
// migrator re-applies these TTLs on every run so a changed retention setting
// takes effect on existing tables.
var retentionTables = []struct{ table, group, col string }{
	{"token_events", "token_events", "event_time"},
	{"findings", "findings", "event_time"},
	{"alerts", "alerts", "event_time"},
	{"revocations", "revocations", "revoked_at"},
	{"deliveries", "deliveries", "time"},
	{"leaks_hourly", "aggregates", "hour"},
	{"alerts_minutely", "aggregates", "minute"},
	{"uses_minutely", "aggregates", "minute"},
}

// RetentionStatements returns the ALTER TABLE … MODIFY TTL / REMOVE TTL
// statements that bring existing tables to cfg.Retention.
func RetentionStatements(cfg Config) []string {
	var out []string
	oc := ""
	if cfg.Cluster != "" {
		oc = " ON CLUSTER " + cfg.Cluster
	}
	for _, r := range retentionTables {
		t := cfg.Database + "." + r.table
		if cfg.Cluster != "" {
			t += "_local"
		}
		if d := cfg.Retention.days(r.group); d > 0 {
			out = append(out, fmt.Sprintf("ALTER TABLE %s%s MODIFY TTL toDateTime(%s) + INTERVAL %d DAY", t, oc, r.col, d))
		} else {
			out = append(out, fmt.Sprintf("ALTER TABLE %s%s REMOVE TTL", t, oc))
		}
	}
	return out
}

// Script returns every statement Migrate would run on an empty server, in
// order, each terminated by ";\n" (what `tokenwatch migrate --print` shows).
func Script(cfg Config) (string, error) {
	boot, err := bootstrap(cfg)
	if err != nil {
		return "", err
	}
	ms, err := Migrations(cfg)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("-- bootstrap\n")
	for _, s := range boot {
		sb.WriteString(s + ";\n\n")
	}
	for _, m := range ms {
		fmt.Fprintf(&sb, "-- %04d_%s\n", m.Version, m.Name)
		for _, s := range m.Statements {
			sb.WriteString(s + ";\n\n")
		}
	}
	sb.WriteString("-- retention\n")
	for _, s := range RetentionStatements(cfg) {
		sb.WriteString(s + ";\n")
	}
	return sb.String(), nil
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Applied []int // versions applied by this run
	Skipped []int // versions found already applied
}

// Migrate creates the database and schema_migrations when missing, applies
// every migration not yet recorded, in order, records each, then re-applies
// the retention TTLs. Every statement is idempotent, so a run interrupted
// half-way, or two migrators racing, converge on the same schema.
func Migrate(ctx context.Context, ex Execer, cfg Config) (MigrateResult, error) {
	var res MigrateResult
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	boot, err := bootstrap(cfg)
	if err != nil {
		return res, err
	}
	for _, s := range boot {
		if err := ex.Exec(ctx, s); err != nil {
			return res, fmt.Errorf("bootstrap schema_migrations: %w", err)
		}
	}
	ms, err := Migrations(cfg)
	if err != nil {
		return res, err
	}
	vs, err := ex.QueryUint32s(ctx, fmt.Sprintf("SELECT version FROM %s.schema_migrations%s ORDER BY version",
		cfg.Database, map[bool]string{true: "_local", false: ""}[cfg.Cluster != ""]))
	if err != nil {
		return res, fmt.Errorf("read applied migrations: %w", err)
	}
	done := make(map[int]bool, len(vs))
	for _, v := range vs {
		done[int(v)] = true
	}
	for _, m := range ms {
		if done[m.Version] {
			res.Skipped = append(res.Skipped, m.Version)
			continue
		}
		for i, s := range m.Statements {
			if err := ex.Exec(ctx, s); err != nil {
				return res, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		rec := fmt.Sprintf("INSERT INTO %s.schema_migrations%s (version, name, checksum) VALUES (%d, '%s', '%s')",
			cfg.Database, map[bool]string{true: "_local", false: ""}[cfg.Cluster != ""], m.Version, m.Name, m.Checksum)
		if err := ex.Exec(ctx, rec); err != nil {
			return res, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		res.Applied = append(res.Applied, m.Version)
	}
	for _, s := range RetentionStatements(cfg) {
		if err := ex.Exec(ctx, s); err != nil {
			return res, fmt.Errorf("apply retention: %w", err)
		}
	}
	return res, nil
}
