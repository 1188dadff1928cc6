package extract

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A transaction is sent once it commits, but a large one (100,000 rows, a
// few 64 MB blobs) would hold hundreds of MB until then, decoded values
// and source events alike. So, as the server does with its binlog cache,
// the completed fragments of a transaction that outgrows Config.SpillBytes
// go to a temporary file and leave memory; at the commit they are read
// back, stamped and sent in parts of about that size, before the
// fragments still in memory. The file lives as long as the transaction:
// its commit, discard or drop (reset), or the end of Run, removes it.

// spillFile holds the spilled fragments of one transaction, in order, as
// records: a byte that is 1 on the first fragment of each spill, the
// length of the fragment as a uvarint, the marshalled fragment. A spill
// weighs about spillBytes, so a spill is what one call to send takes.
type spillFile struct {
	f   *os.File
	w   *bufio.Writer
	r   *bufio.Reader // once reading back
	buf []byte
}

// spillBuffer is the size of a spill file's write and read buffers.
const spillBuffer = 64 << 10

// spill moves the fragments held in memory, all completed, to the spill
// file (creating it on the first spill). A transaction that failed already
// (t.err) is never sent: its fragments are dropped instead. A write that
// fails becomes t.err, returned at the commit unless the transaction is
// dropped by then, and no longer holds anything in memory.
func (t *txn) spill() {
	if t.err == nil && t.file == nil {
		f, err := os.CreateTemp(t.lim.spillDir, t.lim.spillPattern)
		if err != nil {
			t.err = errorf(ErrSpill, "transaction %s outgrew the memory bound (SpillBytes %d) and no spill file could be created in %s: %v; "+
				"free space there or set the spill directory to a file system with room for the largest transaction", t.name(), t.lim.spillBytes, t.lim.spillDir, err)
		} else {
			t.file = &spillFile{f: f, w: bufio.NewWriterSize(f, spillBuffer)}
			t.lim.log.Info("large transaction: spilling its fragments to a file until its commit", "gtid", t.gtid, "file", f.Name(), "spill_bytes", t.lim.spillBytes)
		}
	}
	if t.err == nil {
		for i, f := range t.frags {
			if err := t.file.write(f, i == 0); err != nil {
				t.err = errorf(ErrSpill, "transaction %s could not be written to its spill file %s: %v; "+
					"free space there or set the spill directory to a file system with room for the largest transaction", t.name(), t.file.f.Name(), err)
				break
			}
			t.spilled++
		}
	}
	clear(t.frags)
	t.frags, t.held = t.frags[:0], 0
}

// write appends fragment f, the first of a spill or not.
func (s *spillFile) write(f *thlpb.Event, first bool) error {
	flag := byte(0)
	if first {
		flag = 1
	}
	b := append(s.buf[:0], flag)
	b = binary.AppendUvarint(b, uint64(proto.Size(f)))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, f)
	s.buf = b
	if err != nil {
		return err
	}
	_, err = s.w.Write(b)
	return err
}

// rewind ends the writing and starts reading from the first record.
func (s *spillFile) rewind() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	s.r = bufio.NewReaderSize(s.f, spillBuffer)
	return nil
}

// next reads the next fragment, and whether it is the first of a spill.
func (s *spillFile) next() (*thlpb.Event, bool, error) {
	flag, err := s.r.ReadByte()
	if err != nil {
		return nil, false, err
	}
	n, err := binary.ReadUvarint(s.r)
	if err != nil {
		return nil, false, err
	}
	if n > uint64(cap(s.buf)) {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, false, err
	}
	f := &thlpb.Event{}
	if err := proto.Unmarshal(b, f); err != nil { // copies b's bytes
		return nil, false, err
	}
	return f, flag == 1, nil
}

// remove closes and deletes the file.
func (s *spillFile) remove(log *slog.Logger) {
	name := s.f.Name()
	err := s.f.Close()
	if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	if err != nil {
		log.Warn("the spill file of a transaction could not be removed; delete it by hand", "file", name, "error", err)
	}
}

// stamp is what every fragment of a transaction shares, known at its
// commit.
type stamp struct {
	pos                             position.Position
	sourceID, service, preparedFrom string
	commitUS, extractUS             int64
	after                           appliedVector // on fragment 0
}

// finish stamps the fragments and sends them in order, returning how many
// it sent (when all were). A transaction held in memory goes in one call
// to send. A spilled one goes in several: each spill, read back, then the
// fragments still in memory, so that no call carries much more than
// lim.spillBytes; only the last ends with the fragment marked LastFrag.
// An error reading the spill file is an ErrSpill; any other is send's.
func (t *txn) finish(st stamp, send func([]*thlpb.Event) error) (int, error) {
	shard := t.shard
	if t.multi {
		shard = multiShard
	}
	id := eventID(st.pos)
	total := t.spilled + len(t.frags)
	set := func(i int, f *thlpb.Event) {
		f.Fragno = uint32(i)
		f.LastFrag = i == total-1
		f.EventId = id
		f.SourceId = st.sourceID
		f.OriginService = st.service
		f.Shard = shard
		f.SourceCommitTimeUs = st.commitUS
		f.ExtractTimeUs = st.extractUS
		f.PreparedFrom = st.preparedFrom
		if i == 0 {
			f.After = st.after
		}
		if t.heartbeat {
			f.Heartbeat = t.heartName
		}
	}
	for i, f := range t.frags {
		set(t.spilled+i, f)
	}
	if t.spilled == 0 {
		return total, send(t.frags)
	}
	if err := t.file.rewind(); err != nil {
		return 0, t.readError(err)
	}
	var batch []*thlpb.Event
	for i := range t.spilled {
		f, first, err := t.file.next()
		if err != nil {
			return 0, t.readError(err)
		}
		if first && len(batch) > 0 {
			// A new slice each time: send may keep it.
			if err := send(batch); err != nil {
				return 0, err
			}
			batch = nil
		}
		set(i, f)
		batch = append(batch, f)
	}
	if err := send(batch); err != nil {
		return 0, err
	}
	return total, send(t.frags)
}

// readError explains a failure to read the spill file back.
func (t *txn) readError(err error) error {
	return &kindError{kind: ErrSpill, err: err, msg: fmt.Sprintf("transaction %s could not be read back from its spill file %s: %v; "+
		"check the file system of the spill directory: extraction stops, and its next run drops the parts sent and reads the transaction again", t.name(), t.file.f.Name(), err)}
}

// name names the transaction in messages: its GTID, when it has one.
func (t *txn) name() string {
	if t.gtid == "" {
		return "(no GTID)"
	}
	return t.gtid
}
