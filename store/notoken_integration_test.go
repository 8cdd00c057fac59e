//go:build integration

package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/testenv"
)

type chdbMigrator struct{ c *testenv.CHDB }

func (m chdbMigrator) Exec(_ context.Context, s string) error { return m.c.Exec(s) }

func (m chdbMigrator) QueryUint32s(_ context.Context, q string) ([]uint32, error) {
	rows, cols, err := m.c.Query(q)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, r := range rows {
		var v uint32
		if _, err := fmt.Sscan(fmt.Sprint(r[cols[0]]), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// TestNoRawTokenStoredCHDB stores the planted batch in a real ClickHouse
// (chDB) through the migrations and the row builder, then reads back every
// column of every row of every table and view of the database, aggregate
// tables included, and searches them for the planted tokens.
func TestNoRawTokenStoredCHDB(t *testing.T) {
	c := testenv.NewCHDB(t)
	cfg := DefaultConfig()
	if _, err := Migrate(context.Background(), chdbMigrator{c}, cfg); err != nil {
		t.Fatal(err)
	}
	b, planted := plantedBatch(t)
	rows := NewRows()
	if err := rows.AddBatch(b); err != nil {
		t.Fatal(err)
	}
	rows.AddDelivery(&Delivery{AlertID: "alert-0", Sink: "soar", SinkKind: "webhook", Attempt: 1, Outcome: "delivered", Time: time.Now()})
	stmts, err := rows.InsertStatements(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if err := c.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tables, tcols, err := c.Query("SELECT name FROM system.tables WHERE database = 'tokenwatch' AND engine != 'MaterializedView' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]string{}
	total := 0
	for _, tr := range tables {
		name := fmt.Sprint(tr[tcols[0]])
		// Aggregate-function states are searched as chDB renders them (their
		// uniq states hold hashes, never strings).
		got, cols, err := c.Query("SELECT * FROM tokenwatch." + name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if name != "schema_migrations" && len(got) == 0 {
			t.Errorf("table %s is empty; the search would not cover it", name)
		}
		for _, r := range got {
			for _, col := range cols {
				values[name+"."+col] = append(values[name+"."+col], fmt.Sprint(r[col]))
			}
		}
		total += len(got)
	}
	if hits := searchPlanted(t, values, planted); hits == 0 {
		t.Logf("searched %d rows in %d tables (%d columns): no planted token", total, len(tables), len(values))
	}
}
