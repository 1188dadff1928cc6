package tprovision

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// systemSchemas are never copied nor dropped.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// markerFile says a copy began and did not finish: the database may hold
// part of it. tprovision removes it when a run completes.
func markerFile(home string) string { return install.ProvisionMarker(home) }

func (r *run) mark(what string) {
	os.MkdirAll(install.RunDir(r.b.Home), 0o755)
	os.WriteFile(markerFile(r.b.Home), []byte(what+"\n"), 0o644)
}

func (r *run) unmark() { os.Remove(markerFile(r.b.Home)) }

// dbAddr is where host's database listens.
func (r *run) dbAddr(host, site string) string {
	return net.JoinHostPort(r.cfg.Address(host), strconv.Itoa(r.cfg.ClusterSettings(site).ReplicationPort))
}

func (r *run) openDB(addr string) (*sql.DB, error) {
	s := r.b.Install.Settings
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = s.ReplicationUser, s.ReplicationPassword, "tcp", addr
	mc.Timeout = 10 * time.Second
	c, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	return db, nil
}

// clientArgs are the mysqldump/mariadb options reaching addr; the
// password travels in the environment (MYSQL_PWD), not on the command line.
func (r *run) clientArgs(addr string) ([]string, []string) {
	host, port, _ := net.SplitHostPort(addr)
	s := r.b.Install.Settings
	return []string{"--protocol=TCP", "-h", host, "-P", port, "-u", s.ReplicationUser}, append(os.Environ(), "MYSQL_PWD="+s.ReplicationPassword)
}

// changeMaster finds the binlog position mysqldump --master-data=2 writes.
var changeMaster = regexp.MustCompile(`CHANGE MASTER TO MASTER_LOG_FILE='([^'\s]+)', MASTER_LOG_POS=(\d{1,19});`)

// parseChangeMaster reads the position of a dump's "-- CHANGE MASTER TO
// MASTER_LOG_FILE='f', MASTER_LOG_POS=n;" line as an event id position.
func parseChangeMaster(line []byte) (string, bool) {
	m := changeMaster.FindSubmatch(line)
	if m == nil {
		return "", false
	}
	off, err := strconv.ParseUint(string(m[2]), 10, 64)
	if err != nil {
		return "", false
	}
	return position.Position{File: string(m[1]), Offset: off}.String(), true
}

// parseBinlogInfo reads mariabackup's xtrabackup_binlog_info ("file
// offset [gtid]").
func parseBinlogInfo(info []byte) (string, error) {
	f := strings.Fields(string(info))
	if len(f) < 2 || len(f) > 3 {
		return "", fmt.Errorf("the backup's xtrabackup_binlog_info is malformed: %q", info)
	}
	off, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || strings.ContainsAny(f[0], ":;") {
		return "", fmt.Errorf("the backup's xtrabackup_binlog_info is malformed: %q", info)
	}
	return position.Position{File: f[0], Offset: off}.String(), nil
}

// dump copies the source's schemas with mysqldump (one consistent
// snapshot) into this host's database, outside its binlog, and returns
// the source's binlog position at the snapshot.
func (r *run) dump(ctx context.Context) (string, error) {
	srcAddr, localAddr := r.dbAddr(r.src.Name, r.src.Site), r.dbAddr(r.self.Name, r.self.Site)
	src, err := r.openDB(srcAddr)
	if err != nil {
		return "", err
	}
	defer src.Close()
	schemas, size, err := userSchemas(ctx, src)
	if err != nil {
		return "", keep(fmt.Errorf("read the schemas of %s: %w", r.src.Name, err))
	}
	local, err := r.openDB(localAddr)
	if err != nil {
		return "", err
	}
	defer local.Close()
	mine, _, err := userSchemas(ctx, local)
	if err != nil {
		return "", keep(fmt.Errorf("read the schemas of %s: %w", r.self.Name, err))
	}
	for _, tool := range []string{"mysqldump", "mariadb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", keep(fmt.Errorf("%s is not installed (Debian package mariadb-client)", tool))
		}
	}
	r.mark(fmt.Sprintf("mysqldump from %s began at %s", r.src.Name, r.env.Now().UTC().Format(time.RFC3339)))
	conn, err := local.Conn(ctx)
	if err != nil {
		return "", err
	}
	_, err = conn.ExecContext(ctx, "SET SESSION sql_log_bin=0")
	for _, s := range mine {
		if err == nil {
			_, err = conn.ExecContext(ctx, "DROP DATABASE "+quoteIdent(s))
		}
	}
	conn.Close()
	if err != nil {
		return "", r.incomplete(fmt.Errorf("drop the schemas of %s: %w", r.self.Name, err))
	}
	r.say("  dropped %d schema(s) of %s; copying %d schema(s) from %s (%s in tables)", len(mine), r.self.Name, len(schemas), r.src.Name, human(size))

	dargs, denv := r.clientArgs(srcAddr)
	dargs = append(dargs, "--single-transaction", "--master-data=2", "--routines", "--events", "--triggers", "--hex-blob",
		"--add-drop-database", "--databases")
	dump := exec.CommandContext(ctx, "mysqldump", append(dargs, schemas...)...)
	dump.Env = denv
	var dumpErr, loadErr bytes.Buffer
	dump.Stderr = &dumpErr
	out, err := dump.StdoutPipe()
	if err != nil {
		return "", err
	}
	largs, lenv := r.clientArgs(localAddr)
	load := exec.CommandContext(ctx, "mariadb", append(largs, "--binary-mode", "--batch")...)
	load.Env = lenv
	load.Stderr = &loadErr
	in, err := load.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := load.Start(); err != nil {
		return "", r.incomplete(err)
	}
	if err := dump.Start(); err != nil {
		in.Close()
		load.Wait()
		return "", r.incomplete(err)
	}
	p := newProgress(r.env.Out, r.env.Terminal, "copied", size, r.env.Now)
	var pos string
	copyErr := func() error {
		// Nothing of the copy enters this host's binlog.
		if _, err := io.WriteString(in, "SET SESSION sql_log_bin=0;\n"); err != nil {
			return err
		}
		br := bufio.NewReaderSize(out, 256<<10)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				if pos == "" && bytes.HasPrefix(line, []byte("-- CHANGE MASTER")) {
					pos, _ = parseChangeMaster(line)
				}
				if _, werr := in.Write(line); werr != nil {
					return werr
				}
				p.add(len(line))
			}
			switch {
			case err == bufio.ErrBufferFull:
			case err == io.EOF:
				return nil
			case err != nil:
				return err
			}
		}
	}()
	if copyErr != nil {
		dump.Process.Kill()
	}
	derr := dump.Wait()
	in.Close()
	lerr := load.Wait()
	switch {
	case derr != nil:
		return "", r.incomplete(fmt.Errorf("mysqldump on %s failed (%v): %s", r.src.Name, derr, textutil.LastLines(dumpErr.String(), 3)))
	case lerr != nil:
		return "", r.incomplete(fmt.Errorf("loading into %s failed (%v): %s", r.self.Name, lerr, textutil.LastLines(loadErr.String(), 3)))
	case copyErr != nil:
		return "", r.incomplete(copyErr)
	case pos == "":
		return "", r.incomplete(fmt.Errorf("the dump of %s names no binlog position (is its binlog on?)", r.src.Name))
	}
	p.finish()
	r.unmark()
	return pos, nil
}

// unchanged is a failure that left this host's data as it was: the run
// puts the host back in service as it found it.
type unchanged struct{ error }

func (u unchanged) Unwrap() error { return u.error }

func keep(err error) error { return unchanged{err} }

// incomplete says what to do after a copy failed half-way.
func (r *run) incomplete(err error) error {
	return fmt.Errorf("%w; the database of %s holds part of the copy (marked in %s): run tprovision again; %s stays SHUNNED and its replicators offline until it succeeds",
		err, r.self.Name, markerFile(r.b.Home), r.self.Name)
}

// userSchemas lists the non-system schemas and their tables' size.
func userSchemas(ctx context.Context, db *sql.DB) ([]string, int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT s.SCHEMA_NAME, IFNULL(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) FROM information_schema.SCHEMATA s "+
		"LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME GROUP BY s.SCHEMA_NAME ORDER BY s.SCHEMA_NAME")
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []string
	var total int64
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, 0, err
		}
		if systemSchemas[strings.ToLower(name)] {
			continue
		}
		out = append(out, name)
		total += n
	}
	return out, total, rows.Err()
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// physical replaces this host's datadir with a mariabackup of the
// source's, streamed by the source's replicator, and returns the source's
// binlog position at the backup. Until the new data is in place the old
// datadir is kept aside: a failure puts it back and restarts the database.
func (r *run) physical(ctx context.Context) (string, error) {
	for _, tool := range []string{"mbstream", "mariabackup"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", keep(fmt.Errorf("%s is not installed (Debian package mariadb-backup)", tool))
		}
	}
	local, err := r.openDB(r.dbAddr(r.self.Name, r.self.Site))
	if err != nil {
		return "", err
	}
	var datadir string
	err = local.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir)
	local.Close()
	if err != nil {
		return "", keep(fmt.Errorf("read the datadir of %s: %w", r.self.Name, err))
	}
	datadir = filepath.Clean(datadir)
	fi, err := os.Stat(datadir)
	if err != nil {
		return "", keep(fmt.Errorf("the datadir of %s: %w (tprovision runs on the host it rebuilds)", r.self.Name, err))
	}
	uid, gid := -1, -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	old := datadir + ".tprovision-old"
	if _, err := os.Stat(old); err == nil {
		return "", keep(fmt.Errorf("%s exists: a previous tprovision did not finish; move it away (it is the data %s had) and run again", old, r.self.Name))
	}
	if err := r.local(ctx, managerpb.LocalOp_LOCAL_OP_DATASERVER_STOP); err != nil {
		return "", keep(fmt.Errorf("stop the database of %s: %w", r.self.Name, err))
	}
	r.say("  database of %s stopped", r.self.Name)
	// From here on a failure puts the old datadir back, even when
	// interrupted (Ctrl-C).
	restore := func(cause error) error {
		ctx := context.WithoutCancel(ctx)
		os.RemoveAll(datadir)
		if err := os.Rename(old, datadir); err != nil {
			return fmt.Errorf("%w; putting the old datadir back failed too (%v): it is %s", cause, err, old)
		}
		if err := r.local(ctx, managerpb.LocalOp_LOCAL_OP_DATASERVER_START); err != nil {
			return fmt.Errorf("%w; the old datadir is back but the database did not start: %v", cause, err)
		}
		return keep(cause)
	}
	if err := os.Rename(datadir, old); err != nil {
		if serr := r.local(ctx, managerpb.LocalOp_LOCAL_OP_DATASERVER_START); serr != nil {
			return "", fmt.Errorf("move the datadir aside: %w; and the database did not start again: %v", err, serr)
		}
		return "", keep(fmt.Errorf("move the datadir aside: %w", err))
	}
	if err := os.Mkdir(datadir, fi.Mode().Perm()); err != nil {
		return "", restore(err)
	}
	if err := r.receive(ctx, datadir); err != nil {
		return "", restore(err)
	}
	prep := exec.CommandContext(ctx, "mariabackup", "--prepare", "--target-dir="+datadir)
	if out, err := prep.CombinedOutput(); err != nil {
		return "", restore(fmt.Errorf("mariabackup --prepare failed (%v): %s", err, textutil.LastLines(string(out), 3)))
	}
	info, err := os.ReadFile(filepath.Join(datadir, "xtrabackup_binlog_info"))
	if err != nil {
		return "", restore(fmt.Errorf("the backup of %s names no binlog position (is its binlog on?): %w", r.src.Name, err))
	}
	pos, err := parseBinlogInfo(info)
	if err != nil {
		return "", restore(err)
	}
	if uid >= 0 {
		filepath.Walk(datadir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				os.Lchown(p, uid, gid)
			}
			return nil
		})
	}
	if err := r.local(ctx, managerpb.LocalOp_LOCAL_OP_DATASERVER_START); err != nil {
		return "", restore(fmt.Errorf("start the database on the copy: %w", err))
	}
	r.say("  database of %s started on the copy", r.self.Name)
	if err := os.RemoveAll(old); err != nil {
		r.say("  note: could not remove the old datadir %s: %v", old, err)
	}
	return pos, nil
}

// receive streams the source's backup into datadir through mbstream.
func (r *run) receive(ctx context.Context, datadir string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.srepl.Backup(ctx, &replicatorpb.BackupRequest{Threads: int32(r.o.threads)})
	if err != nil {
		return fmt.Errorf("backup on %s: %s", r.src.Name, describe(err))
	}
	x := exec.CommandContext(ctx, "mbstream", "-x", "-C", datadir)
	var xerr bytes.Buffer
	x.Stderr = &xerr
	in, err := x.StdinPipe()
	if err != nil {
		return err
	}
	if err := x.Start(); err != nil {
		return err
	}
	var p *progress
	recvErr := func() error {
		for {
			c, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("backup on %s: %s", r.src.Name, describe(err))
			}
			if p == nil {
				p = newProgress(r.env.Out, r.env.Terminal, "copied", c.GetSize(), r.env.Now)
			}
			if len(c.GetData()) > 0 {
				if _, err := in.Write(c.GetData()); err != nil {
					return fmt.Errorf("mbstream: %w", err)
				}
				p.add(len(c.GetData()))
			}
		}
	}()
	in.Close()
	werr := x.Wait()
	switch {
	case recvErr != nil:
		return recvErr
	case werr != nil:
		return fmt.Errorf("mbstream failed (%v): %s", werr, textutil.LastLines(xerr.String(), 3))
	case p == nil:
		return errors.New("the backup stream was empty")
	}
	p.finish()
	return nil
}

// local runs an operation of this host's manager on its database.
func (r *run) local(ctx context.Context, op managerpb.LocalOp) error {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	_, err := r.mgr.Local(ctx, &managerpb.LocalRequest{Op: op})
	if err != nil {
		return errors.New(describe(err))
	}
	return nil
}
