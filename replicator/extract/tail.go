package extract

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// When the database process dies (kill -9, OOM) while its host lives,
// the binlog files on disk hold every transaction it acknowledged
// (sync_binlog=1), some of which the binlog stream had not yet passed on.
// RunTail reads them from the files, so that a failover does not lose
// them: the replicator runs on the database's host (as Tungsten's does).

// rememberLocal keeps, while the database answers, what RunTail needs.
func (x *Extractor) rememberLocal(ctx context.Context, si serverInfo, coll collations) {
	var index string
	if err := x.db.QueryRowContext(ctx, "SELECT @@GLOBAL.log_bin_index").Scan(&index); err != nil {
		x.log.Warn("the binlog index is unknown: a tail the stream did not pass on cannot be read from the files if the database dies", "error", err)
	}
	if index != "" && !filepath.IsAbs(index) {
		var datadir string
		if err := x.db.QueryRowContext(ctx, "SELECT @@GLOBAL.datadir").Scan(&datadir); err == nil {
			index = filepath.Join(datadir, index)
		}
	}
	x.local.Lock()
	x.local.si, x.local.coll, x.local.index = si, coll, index
	x.local.Unlock()
}

// RunTail reads the binlog files of the local database from from (and
// prepared, as RunFrom) to their end, sending what they hold after from
// as RunFrom would (a large transaction in several calls to send, the
// last ending with the LastFrag fragment), and returns where it stopped. It is for a database
// that no longer answers: the files must not grow meanwhile. A torn last
// event (the process died writing it) ends the tail, its transaction
// unsent, as the server's own recovery drops it.
func (x *Extractor) RunTail(ctx context.Context, from, prepared position.Position, send func([]*thlpb.Event) error) (position.Position, error) {
	if !x.running.CompareAndSwap(false, true) {
		return from, errorf(ErrConfig, "the extractor for %s is already running; stop it before reading the binlog files", x.cfg.Addr)
	}
	defer x.running.Store(false)
	x.local.Lock()
	si, coll, index := x.local.si, x.local.coll, x.local.index
	x.local.Unlock()
	if index == "" || si.flavor == "" {
		return from, errorf(ErrConfig, "the binlog files of %s are unknown (the extractor never read from it while it answered)", x.cfg.Addr)
	}
	files, err := binlogFiles(index)
	if err != nil {
		return from, errorf(ErrConnect, "read the binlog index %s: %v", index, err)
	}
	start := from
	if !prepared.IsZero() && prepared.Compare(from) < 0 {
		start = prepared
	}
	r := &run{
		x:      x,
		flavor: si.flavor,
		coll:   coll,
		tables: newTables(x.db, si.flavor, x.cfg.Service, x.cfg.LoopSchemaPrefix),
		file:   start.File,
		send:   send,
	}
	defer r.close()
	if start != from {
		r.after = from
	}
	r.tx.lim = x.cfg.txnLimits()
	begin := time.Now()
	sent0 := x.transactions.Load()
	reached := false
	for _, f := range files {
		name := filepath.Base(f)
		if !reached {
			if name != start.File {
				continue
			}
			reached = true
		}
		offset := int64(4)
		if name == start.File {
			offset = int64(start.Offset)
		}
		r.file, r.lastPos = name, uint32(offset)
		p := replication.NewBinlogParser()
		p.SetFlavor(si.flavor)
		p.SetVerifyChecksum(true)
		p.SetTimestampStringLocation(time.UTC)
		p.SetUseDecimal(false)
		p.SetParseTime(false)
		var comp compression
		err := p.ParseFile(f, offset, func(ev *replication.BinlogEvent) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			compressed, err := comp.see(ev)
			if err != nil {
				return errorf(ErrDecode, "%s at %d: %v", name, ev.Header.LogPos, err)
			}
			r.tables.noteCompressed(ev, compressed)
			if ev.Header.EventType == replication.ROTATE_EVENT {
				return nil // the next file in the index follows
			}
			if err := r.handle(ctx, ev, ev.Header.LogPos); err != nil {
				return err
			}
			if !r.tx.open {
				x.setRead(r.file, r.lastPos)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return x.Stats().Position, ctx.Err()
			}
			var ke *kindError
			if errors.As(err, &ke) {
				return x.Stats().Position, err
			}
			// A torn event at the end of the last file: the process died
			// writing it.
			x.log.Warn("binlog file ends in a torn event; the tail stops there", "file", name, "after", r.lastPos, "error", err)
			break
		}
	}
	if !reached {
		return from, errorf(ErrPositionGone, "the binlog index %s does not list %s, where the tail begins", index, start.File)
	}
	if r.tx.open {
		r.discard("the binlog files end inside it (the database died while writing it)")
	}
	pos := x.Stats().Position
	x.log.Warn("read the binlog tail from the files of the stopped database", "from", from.String(), "to", pos.String(),
		"transactions", x.transactions.Load()-sent0, "took", time.Since(begin).Round(time.Millisecond))
	return pos, nil
}

// binlogFiles lists the binlog files an index file names, in order, as
// paths (relative names are relative to the index's directory).
func binlogFiles(index string) ([]string, error) {
	f, err := os.Open(index)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(index), l)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}
