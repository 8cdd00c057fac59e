package dashboards

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Datasource uids, fixed by the provisioning file so dashboards can name them.
const (
	ClickHouseUID  = "tokenwatch-clickhouse"
	PrometheusUID  = "tokenwatch-prometheus"
	ClickHouseType = "grafana-clickhouse-datasource"
	PrometheusType = "prometheus"
)

// Kind says what a panel's query must return, which tests check.
type Kind int

const (
	// TimeSeries: a time column named "time", numeric values, optional
	// string columns (series labels; the plugin pivots long to wide).
	TimeSeries Kind = iota
	// Table: any columns; Want lists the ones the panel's links and
	// overrides refer to.
	Table
	// Geo: lat and lon columns for a geomap.
	Geo
	// Stat: one row of numeric values.
	Stat
)

// Panel is one dashboard panel over ClickHouse (SQL) or Prometheus (PromQL).
type Panel struct {
	Title, Description string
	// Type is the Grafana panel type: timeseries, table, geomap, stat, barchart.
	Type string
	Kind Kind
	// SQL is the ClickHouse query (with plugin macros and ${variables}).
	SQL string
	// Want are columns the query must return (besides what Kind implies).
	Want []string
	// Prom are PromQL targets; Legend is the legend format.
	Prom []PromTarget
	Unit string
	// Links are data links on a column: column -> URL.
	Links map[string]Link
	// W and H are the grid size (24 columns wide); 0 means 12x8.
	W, H int
	// Stack stacks timeseries.
	Stack bool
	// Options are extra panel options merged in (geomap layers, …).
	Options map[string]any
}

// Link is a data link.
type Link struct{ Title, URL string }

// PromTarget is one PromQL query.
type PromTarget struct{ Expr, Legend string }

// Variable is a dashboard variable.
type Variable struct {
	Name, Label string
	// Type is "textbox" or "query" (ClickHouse query variable).
	Type string
	// Query is the SQL of a query variable.
	Query string
	Multi bool
	// Default is the initial value of a textbox.
	Default string
}

// Dashboard is one dashboard.
type Dashboard struct {
	UID, Title, Description string
	Tags                    []string
	// From is the default time range start ("now-24h").
	From    string
	Refresh string
	Vars    []Variable
	Panels  []Panel
}

// File is the dashboard's file name under grafana/dashboards.
func (d Dashboard) File() string { return d.UID + ".json" }

func dsRef(prom bool) map[string]any {
	if prom {
		return map[string]any{"type": PrometheusType, "uid": PrometheusUID}
	}
	return map[string]any{"type": ClickHouseType, "uid": ClickHouseUID}
}

// JSON renders d as a Grafana dashboard model (schemaVersion 39).
func (d Dashboard) JSON() ([]byte, error) {
	var panels []any
	x, y, rowH := 0, 0, 0
	for i, p := range d.Panels {
		w, h := p.W, p.H
		if w == 0 {
			w = 12
		}
		if h == 0 {
			h = 8
		}
		if x+w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		prom := len(p.Prom) > 0
		if prom == (p.SQL != "") {
			return nil, fmt.Errorf("dashboard %s panel %q: give exactly one of SQL or Prom", d.UID, p.Title)
		}
		var targets []any
		if prom {
			for k, t := range p.Prom {
				targets = append(targets, map[string]any{
					"refId": string(rune('A' + k)), "datasource": dsRef(true),
					"expr": t.Expr, "legendFormat": t.Legend, "range": true,
				})
			}
		} else {
			format, qt := 1, "table"
			if p.Kind == TimeSeries {
				format, qt = 0, "timeseries"
			}
			targets = append(targets, map[string]any{
				"refId": "A", "datasource": dsRef(false), "editorType": "sql",
				"format": format, "queryType": qt, "rawSql": p.SQL,
			})
		}
		defaults := map[string]any{}
		if p.Unit != "" {
			defaults["unit"] = p.Unit
		}
		custom := map[string]any{}
		if p.Type == "timeseries" {
			custom["drawStyle"] = "line"
			custom["fillOpacity"] = 10
			if p.Stack {
				custom["stacking"] = map[string]any{"mode": "normal", "group": "A"}
				custom["fillOpacity"] = 60
				custom["drawStyle"] = "bars"
			}
		}
		if len(custom) > 0 {
			defaults["custom"] = custom
		}
		var overrides []any
		cols := make([]string, 0, len(p.Links))
		for col := range p.Links {
			cols = append(cols, col)
		}
		sort.Strings(cols)
		for _, col := range cols {
			l := p.Links[col]
			overrides = append(overrides, map[string]any{
				"matcher": map[string]any{"id": "byName", "options": col},
				"properties": []any{map[string]any{"id": "links", "value": []any{
					map[string]any{"title": l.Title, "url": l.URL},
				}}},
			})
		}
		options := map[string]any{}
		switch p.Type {
		case "table":
			options["showHeader"] = true
			options["cellHeight"] = "sm"
		case "timeseries":
			options["legend"] = map[string]any{"displayMode": "table", "placement": "right", "calcs": []string{"sum", "max"}, "showLegend": true}
			options["tooltip"] = map[string]any{"mode": "multi", "sort": "desc"}
		case "stat":
			options["reduceOptions"] = map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}
			options["colorMode"] = "value"
			options["graphMode"] = "none"
		case "geomap":
			options["view"] = map[string]any{"id": "zero", "lat": 20, "lon": 10, "zoom": 1.5}
			options["controls"] = map[string]any{"showZoom": true, "mouseWheelZoom": true}
			options["basemap"] = map[string]any{"type": "default", "name": "Basemap"}
			options["layers"] = []any{map[string]any{
				"type": "markers", "name": "Uses",
				"location": map[string]any{"mode": "coords", "latitude": "lat", "longitude": "lon"},
				"config": map[string]any{
					"showLegend": true,
					"style": map[string]any{
						"size":    map[string]any{"field": "uses", "fixed": 6, "min": 4, "max": 20},
						"color":   map[string]any{"fixed": "red"},
						"opacity": 0.6,
					},
				},
				"tooltip": true,
			}}
			options["tooltip"] = map[string]any{"mode": "details"}
		}
		for k, v := range p.Options {
			options[k] = v
		}
		panels = append(panels, map[string]any{
			"id": i + 1, "type": p.Type, "title": p.Title, "description": p.Description,
			"gridPos":    map[string]any{"x": x, "y": y, "w": w, "h": h},
			"datasource": dsRef(prom), "targets": targets,
			"fieldConfig": map[string]any{"defaults": defaults, "overrides": nonNilSlice(overrides)},
			"options":     options,
		})
		x += w
		rowH = max(rowH, h)
	}
	var vars []any
	for _, v := range d.Vars {
		m := map[string]any{"name": v.Name, "label": v.Label, "type": v.Type, "hide": 0}
		switch v.Type {
		case "textbox":
			m["query"] = v.Default
			m["current"] = map[string]any{"text": v.Default, "value": v.Default}
		case "query":
			m["datasource"] = dsRef(false)
			m["query"] = v.Query
			m["definition"] = v.Query
			m["refresh"] = 2 // on time range change
			m["multi"] = v.Multi
			m["includeAll"] = v.Multi
			m["sort"] = 1
			m["current"] = map[string]any{"text": "All", "value": "$__all"}
		default:
			return nil, fmt.Errorf("dashboard %s variable %s: unknown type %q", d.UID, v.Name, v.Type)
		}
		vars = append(vars, m)
	}
	doc := map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Description, "tags": d.Tags,
		"timezone": "utc", "schemaVersion": 39, "version": 1, "editable": true,
		"graphTooltip": 1, "time": map[string]any{"from": d.From, "to": "now"},
		"refresh":     d.Refresh,
		"templating":  map[string]any{"list": nonNilSlice(vars)},
		"annotations": map[string]any{"list": []any{}},
		"links":       []any{map[string]any{"title": "tokenwatch", "type": "dashboards", "tags": []string{"tokenwatch"}, "asDropdown": true}},
		"panels":      panels,
	}
	return json.MarshalIndent(doc, "", "  ")
}

func nonNilSlice(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}
