package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InsertStatements returns, for each table of r that has rows, one INSERT
// with an explicit column list and the rows inline as JSONEachRow. It is for
// engines reached without the native protocol (chDB, clickhouse-local, the
// HTTP interface): the dashboards' tests seed chDB with it, so the rows there
// are built by the same code as the Writer's.
func (r *Rows) InsertStatements(db string) ([]string, error) {
	var out []string
	for _, t := range r.tables() {
		t.check()
		n := t.rows()
		if n == 0 {
			continue
		}
		var sb strings.Builder
		sb.WriteString(t.insertSQL(db))
		sb.WriteString(" SETTINGS date_time_input_format = 'best_effort' FORMAT JSONEachRow\n")
		for i := range n {
			sb.WriteByte('{')
			for k, c := range t.cols {
				if k > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(strconv.Quote(c.name()))
				sb.WriteByte(':')
				if err := appendJSONValue(&sb, c.values(i, i+1)); err != nil {
					return nil, fmt.Errorf("encode %s.%s: %w", t.name, c.name(), err)
				}
			}
			sb.WriteString("}\n")
		}
		out = append(out, sb.String())
	}
	return out, nil
}

func appendJSONValue(sb *strings.Builder, v any) error {
	var x any
	switch s := v.(type) {
	case []time.Time:
		x = s[0].UTC().Format("2006-01-02 15:04:05.000")
	case []uint64:
		// As a string: JSON numbers above 2^53 lose precision in some readers.
		x = strconv.FormatUint(s[0], 10)
	case []string:
		x = s[0]
	case []uint8:
		x = s[0]
	case []uint16:
		x = s[0]
	case []uint32:
		x = s[0]
	case []int32:
		x = s[0]
	case []int64:
		x = s[0]
	case []float64:
		x = s[0]
	case [][]string:
		x = s[0]
	default:
		panic(fmt.Sprintf("BUG: no JSON encoding for column type %T", v))
	}
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	sb.Write(b)
	return nil
}
