package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tokenwatch/tokenwatch"
)

// Dial opens a native-protocol connection pool to the servers of cfg. It does
// not select cfg.Database (which may not exist before migrations): every
// statement tokenwatch sends names its tables as database.table.
func Dial(cfg Config) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Addr: cfg.Addr,
		Auth: clickhouse.Auth{Username: cfg.Username, Password: cfg.Password},
		Compression: &clickhouse.Compression{
			Method: clickhouse.CompressionLZ4,
		},
		DialTimeout:     cfg.DialTimeout,
		ReadTimeout:     cfg.WriteTimeout,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: 10 * time.Minute,
	}
	if cfg.Secure {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", cfg.Addr, err)
	}
	return conn, nil
}

// NativeExecer runs migrations over a clickhouse-go connection.
type NativeExecer struct{ Conn driver.Conn }

// Exec runs one statement.
func (n NativeExecer) Exec(ctx context.Context, stmt string) error { return n.Conn.Exec(ctx, stmt) }

// QueryUint32s runs a query whose single column is UInt32.
func (n NativeExecer) QueryUint32s(ctx context.Context, query string) ([]uint32, error) {
	rows, err := n.Conn.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// sendFunc inserts rows [i, j) of t; the Writer retries it on error.
type sendFunc func(ctx context.Context, t *table, i, j int) error

// Writer stores batches in ClickHouse. It is a tokenwatch.Stage:
//
// Process builds the rows of a batch (token uses, leak findings, alerts,
// revocations), inserts them in INSERTs of at most batch_rows rows, retrying
// each failed INSERT with exponential backoff and jitter until it succeeds or
// ctx ends, and returns only when every row is acknowledged. A pipeline that
// commits Kafka offsets after Process therefore never commits a record whose
// rows are not stored (at-least-once); a batch retried after a failure writes
// the same row ids again, which ReplacingMergeTree folds (docs/store.md).
//
// Rows not yet acknowledged count against max_pending_rows over all
// concurrent Process calls and buffered deliveries; when the limit is reached
// Process and AddDeliveries wait, which holds ingest back (backpressure).
//
// Deliveries (AddDeliveries) are buffered and flushed when batch_rows are
// waiting, every flush_interval, on Flush and on Close.
type Writer struct {
	cfg  Config
	log  *slog.Logger
	send sendFunc
	ping func(ctx context.Context) error

	pool sync.Pool // *Rows

	// pending counts rows built and not yet acknowledged.
	pmu     sync.Mutex
	pending int
	space   chan struct{} // closed and replaced when pending drops

	// buf holds buffered deliveries; flushMu serialises their flushes.
	bmu     sync.Mutex
	buf     *Rows
	flushMu sync.Mutex
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closeMu sync.Once
}

// NewWriter returns a Writer that inserts over conn. cfg must be valid.
// Close it to flush buffered rows and stop its flush loop; Close does not
// close conn.
func NewWriter(cfg Config, conn driver.Conn, log *slog.Logger) *Writer {
	w := newWriter(cfg, nativeSend(conn, cfg.Database), log)
	w.ping = conn.Ping
	return w
}

func nativeSend(conn driver.Conn, db string) sendFunc {
	return func(ctx context.Context, t *table, i, j int) error {
		if t.insert == "" {
			t.insert = t.insertSQL(db)
		}
		b, err := conn.PrepareBatch(ctx, t.insert)
		if err != nil {
			return fmt.Errorf("prepare insert into %s: %w", t.name, err)
		}
		defer b.Close()
		for k, c := range t.cols {
			if err := b.Column(k).Append(c.values(i, j)); err != nil {
				_ = b.Abort()
				return fmt.Errorf("append column %s.%s: %w", t.name, c.name(), err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", j-i, t.name, err)
		}
		return nil
	}
}

func newWriter(cfg Config, send sendFunc, log *slog.Logger) *Writer {
	if err := cfg.Validate(); err != nil {
		panic("BUG: store.NewWriter with invalid config: " + err.Error())
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{
		cfg: cfg, log: log.With("component", "store"), send: send,
		space: make(chan struct{}), buf: NewRows(),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.pool.New = func() any { return NewRows() }
	go w.loop()
	return w
}

// Ping checks that ClickHouse answers (a readiness check).
func (w *Writer) Ping(ctx context.Context) error {
	if w.ping == nil {
		return nil
	}
	if err := w.ping(ctx); err != nil {
		return fmt.Errorf("clickhouse ping: %w", err)
	}
	return nil
}

// Process stores the rows of b and returns once ClickHouse acknowledged all
// of them, or with ctx's error. It does not retain b.
func (w *Writer) Process(ctx context.Context, b *tokenwatch.Batch) error {
	rows := w.pool.Get().(*Rows)
	defer func() { rows.Reset(); w.pool.Put(rows) }()
	if err := rows.AddBatch(b); err != nil {
		return fmt.Errorf("build rows: %w", err)
	}
	n := rows.Len()
	if n == 0 {
		return nil
	}
	if err := w.acquire(ctx, n); err != nil {
		return err
	}
	defer w.release(n)
	return w.insertRows(ctx, rows)
}

// AddDeliveries buffers delivery rows; they are inserted by the flush loop.
// It blocks while max_pending_rows rows are pending.
func (w *Writer) AddDeliveries(ctx context.Context, ds ...Delivery) error {
	// Chunks of at most max_pending_rows, so what Flush releases (the rows it
	// inserted) always equals what was acquired.
	for len(ds) > w.cfg.MaxPendingRows {
		if err := w.AddDeliveries(ctx, ds[:w.cfg.MaxPendingRows]...); err != nil {
			return err
		}
		ds = ds[w.cfg.MaxPendingRows:]
	}
	if len(ds) == 0 {
		return nil
	}
	if err := w.acquire(ctx, len(ds)); err != nil {
		return err
	}
	w.bmu.Lock()
	for i := range ds {
		w.buf.AddDelivery(&ds[i])
	}
	full := w.buf.Len() >= w.cfg.BatchRows
	w.bmu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Flush inserts the buffered deliveries now, retrying until they are stored
// or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.bmu.Lock()
	rows := w.buf
	if rows.Len() == 0 {
		w.bmu.Unlock()
		return nil
	}
	w.buf = w.pool.Get().(*Rows)
	w.bmu.Unlock()
	n := rows.Len()
	err := w.insertRows(ctx, rows)
	if err != nil {
		// Keep the rows, in front of anything buffered meanwhile; they stay
		// counted as pending.
		w.bmu.Lock()
		mergeDeliveries(rows, w.buf)
		w.buf, rows = rows, w.buf
		w.bmu.Unlock()
		rows.Reset()
		w.pool.Put(rows)
		return err
	}
	w.release(n)
	rows.Reset()
	w.pool.Put(rows)
	return nil
}

// mergeDeliveries appends the deliveries of src to dst.
func mergeDeliveries(dst, src *Rows) {
	s, d := src.deliveries, dst.deliveries
	d.alertID.v = append(d.alertID.v, s.alertID.v...)
	d.sink.v = append(d.sink.v, s.sink.v...)
	d.sinkKind.v = append(d.sinkKind.v, s.sinkKind.v...)
	d.attempt.v = append(d.attempt.v, s.attempt.v...)
	d.statusCode.v = append(d.statusCode.v, s.statusCode.v...)
	d.outcome.v = append(d.outcome.v, s.outcome.v...)
	d.err.v = append(d.err.v, s.err.v...)
	d.time.v = append(d.time.v, s.time.v...)
	d.durationMs.v = append(d.durationMs.v, s.durationMs.v...)
	d.check()
}

// Close flushes buffered rows (waiting at most until ctx ends) and stops the
// flush loop. It does not close the connection.
func (w *Writer) Close(ctx context.Context) error {
	w.closeMu.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush(ctx)
}

func (w *Writer) loop() {
	defer close(w.done)
	t := time.NewTicker(w.cfg.FlushInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-w.stop; cancel() }()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		if err := w.Flush(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("flush deliveries", "err", err)
		}
	}
}

// acquire reserves room for n pending rows, waiting while the limit is
// reached. A single request larger than the limit is admitted alone.
func (w *Writer) acquire(ctx context.Context, n int) error {
	n = min(n, w.cfg.MaxPendingRows)
	var start time.Time
	for {
		w.pmu.Lock()
		if w.pending == 0 || w.pending+n <= w.cfg.MaxPendingRows {
			w.pending += n
			pendingRows.Set(float64(w.pending))
			w.pmu.Unlock()
			if !start.IsZero() {
				blockedSeconds.Add(time.Since(start).Seconds())
			}
			return nil
		}
		ch := w.space
		w.pmu.Unlock()
		if start.IsZero() {
			start = time.Now()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			blockedSeconds.Add(time.Since(start).Seconds())
			return fmt.Errorf("wait for clickhouse backlog (%d rows pending): %w", w.cfg.MaxPendingRows, ctx.Err())
		}
	}
}

func (w *Writer) release(n int) {
	n = min(n, w.cfg.MaxPendingRows)
	w.pmu.Lock()
	w.pending -= n
	if w.pending < 0 {
		panic("BUG: store pending rows below zero")
	}
	pendingRows.Set(float64(w.pending))
	close(w.space)
	w.space = make(chan struct{})
	w.pmu.Unlock()
}

// Pending returns the rows built and not yet acknowledged.
func (w *Writer) Pending() int {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	return w.pending
}

// insertRows inserts every table of rows, in chunks of batch_rows, with retries.
func (w *Writer) insertRows(ctx context.Context, rows *Rows) error {
	for _, t := range rows.tables() {
		t.check()
		n := t.rows()
		for i := 0; i < n; i += w.cfg.BatchRows {
			j := min(i+w.cfg.BatchRows, n)
			if err := w.insertRetry(ctx, t, i, j); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertRetry inserts rows [i, j) of t, retrying until success or ctx ends.
// Every error is retried: a server that is down or restarting comes back, and
// a schema problem (a migration not yet applied) is fixed by an operator
// while the pipeline waits, with tokenwatch_store_insert_errors_total rising.
func (w *Writer) insertRetry(ctx context.Context, t *table, i, j int) error {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := w.send(ctx, t, i, j)
		if err == nil {
			insertDuration.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
			rowsWritten.WithLabelValues(t.name).Add(float64(j - i))
			if attempt > 0 {
				w.log.Info("clickhouse insert succeeded after retries", "table", t.name, "rows", j-i, "attempts", attempt+1)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("insert into %s: %w", t.name, errors.Join(ctx.Err(), err))
		}
		insertErrors.WithLabelValues(t.name).Inc()
		d := backoff(w.cfg.RetryInitial, w.cfg.RetryMax, attempt)
		w.log.Warn("clickhouse insert failed; retrying", "table", t.name, "rows", j-i, "attempt", attempt+1, "retry_in", d, "err", err)
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return fmt.Errorf("insert into %s: %w", t.name, errors.Join(ctx.Err(), err))
		}
	}
}

// backoff returns the wait before retry attempt+1: exponential from initial,
// capped at max, with "equal jitter" (half fixed, half random) so that many
// writers do not retry in step and the wait never collapses to zero.
func backoff(initial, max time.Duration, attempt int) time.Duration {
	d := initial
	for k := 0; k < attempt && d < max; k++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}
