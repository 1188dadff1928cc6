package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// backupChunk is the size of the Backup stream's messages.
const backupChunk = 256 << 10

// Backup streams mariabackup --backup --stream=mbstream of this host's
// database: the files are read here, where they are, and nothing but the
// replicator's control port carries them (no ssh).
func (c *controlServer) Backup(req *replicatorpb.BackupRequest, stream replicatorpb.Replicator_BackupServer) error {
	if len(c.a.services) == 0 {
		return toStatus(fmt.Errorf("%w: this replicator has no service, so no database", errUnknownService))
	}
	svc := c.a.services[0]
	addr, user, password := svc.DB()
	ctx := stream.Context()
	datadir, err := svc.Datadir(ctx)
	if err != nil {
		return toStatus(err)
	}
	tmp, err := os.MkdirTemp("", "carbide-backup-")
	if err != nil {
		return toStatus(err)
	}
	defer os.RemoveAll(tmp)
	host, port, _ := strings.Cut(addr, ":")
	// The password goes in a file only we read, not on a command line.
	cnf := filepath.Join(tmp, "client.cnf")
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\n", user, password, host, port)), 0o600); err != nil {
		return toStatus(err)
	}
	target := filepath.Join(tmp, "target")
	args := []string{"--defaults-file=" + cnf, "--backup", "--stream=mbstream", "--target-dir=" + target, "--datadir=" + datadir}
	if n := req.GetThreads(); n > 1 {
		args = append(args, "--parallel="+strconv.Itoa(int(n)))
	}
	prog, err := exec.LookPath("mariabackup")
	if err != nil {
		prog, err = exec.LookPath("mariadb-backup")
	}
	if err != nil {
		return toStatus(fmt.Errorf("mariabackup is not installed on %s (Debian package mariadb-backup)", c.a.bound.Host.Name))
	}
	if err := stream.Send(&replicatorpb.BackupChunk{Size: dirSize(datadir)}); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return toStatus(err)
	}
	c.a.log.Info("backup started", "datadir", datadir)
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return toStatus(err)
	}
	buf := make([]byte, backupChunk)
	var sent int64
	var sendErr error
	for {
		n, rerr := io.ReadFull(out, buf)
		if n > 0 && sendErr == nil {
			sendErr = stream.Send(&replicatorpb.BackupChunk{Data: buf[:n]})
			sent += int64(n)
		}
		if rerr != nil {
			break
		}
	}
	werr := cmd.Wait()
	switch {
	case sendErr != nil:
		c.a.log.Warn("backup ended: the receiver went away", "error", sendErr)
		return sendErr
	case werr != nil:
		msg := textutil.LastLines(stderr.String(), 3)
		c.a.log.Warn("backup failed", "error", werr, "mariabackup", msg)
		return toStatus(fmt.Errorf("mariabackup on %s failed (%v): %s", c.a.bound.Host.Name, werr, msg))
	}
	c.a.log.Info("backup sent", "bytes", sent, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// Locate finds the last transaction extracted at or before a position.
func (c *controlServer) Locate(ctx context.Context, req *replicatorpb.LocateRequest) (*replicatorpb.LocateReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	p, err := position.Parse(req.GetBinlogPosition())
	if err != nil {
		return nil, badInput(err)
	}
	if t := req.GetTimeoutSeconds(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t*float64(time.Second)))
		defer cancel()
	}
	ev, ok, err := s.Locate(ctx, p)
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok {
		return &replicatorpb.LocateReply{Seqno: -1}, nil
	}
	return &replicatorpb.LocateReply{Seqno: int64(ev.GetSeqno()), Epoch: ev.GetEpoch(), EventId: ev.GetEventId(), SourceId: ev.GetSourceId()}, nil
}

// SetPosition makes an offline service start after a given transaction.
func (c *controlServer) SetPosition(ctx context.Context, req *replicatorpb.SetPositionRequest) (*replicatorpb.StatusReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetSeqno() < 0 {
		return nil, badInput(fmt.Errorf("seqno %d: a position is a seqno of 0 or more", req.GetSeqno()))
	}
	if _, err := position.Parse(req.GetEventId()); err != nil {
		return nil, badInput(err)
	}
	ev := &thlpb.Event{Seqno: uint64(req.GetSeqno()), Epoch: req.GetEpoch(), EventId: req.GetEventId(), SourceId: req.GetSourceId(), LastFrag: true}
	if err := s.SetPosition(ctx, ev); err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.StatusReply{Status: s.Status()}, nil
}

// badInput is toStatus for bad input.
func badInput(err error) error { return toStatus(fmt.Errorf("%w: %v", errBadInput, err)) }

// dirSize adds up the regular files under dir (0 when unreadable).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
