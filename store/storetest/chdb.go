package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
	"github.com/tokenwatch/tokenwatch/store"
)

// CHDBExecer runs store migrations on a chDB session.
type CHDBExecer struct{ C *testenv.CHDB }

// Exec runs one statement.
func (e CHDBExecer) Exec(_ context.Context, stmt string) error { return e.C.Exec(stmt) }

// QueryUint32s runs a query whose first column is an unsigned integer.
func (e CHDBExecer) QueryUint32s(_ context.Context, q string) ([]uint32, error) {
	rows, cols, err := e.C.Query(q)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, len(rows))
	for _, r := range rows {
		var v uint32
		if _, err := fmt.Sscan(fmt.Sprint(r[cols[0]]), &v); err != nil {
			return nil, fmt.Errorf("parse %v: %w", r[cols[0]], err)
		}
		out = append(out, v)
	}
	return out, nil
}

// SeedCHDB applies the migrations (default config: database tokenwatch) to c
// and inserts the data set for the week before now, copies times (2 copies
// simulate a replay), through store.Rows.
func SeedCHDB(t testing.TB, c *testenv.CHDB, now time.Time, copies int) DataSet {
	t.Helper()
	cfg := store.DefaultConfig()
	if _, err := store.Migrate(context.Background(), CHDBExecer{c}, cfg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ds := Generate(now)
	rows, err := ds.Rows()
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := rows.InsertStatements(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	for range copies {
		for _, s := range stmts {
			if err := c.Exec(s); err != nil {
				t.Fatalf("insert: %v", err)
			}
		}
	}
	return ds
}
