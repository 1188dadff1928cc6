package consistency

import (
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// ChunkToProto and ChunkFromProto convert a chunk for the control API.
func ChunkToProto(ch *Chunk) *replicatorpb.CheckChunk {
	return &replicatorpb.CheckChunk{Chunk: ch.No, Schema: ch.Schema, Table: ch.Table, Key: ch.Key, Lo: ch.Lo, Hi: ch.Hi, Query: ch.Query,
		IntKey: ch.IntKey, HasLo: ch.HasLo, HasHi: ch.HasHi, LoInt: ch.LoInt, HiInt: ch.HiInt,
		RowsQuery: ch.RowsQuery, TextKey: ch.TextKey, Rows: ch.Rows}
}

func ChunkFromProto(pc *replicatorpb.CheckChunk) Chunk {
	return Chunk{No: pc.GetChunk(), Schema: pc.GetSchema(), Table: pc.GetTable(), Key: pc.GetKey(), Lo: pc.GetLo(), Hi: pc.GetHi(),
		Query: pc.GetQuery(), IntKey: pc.GetIntKey(), HasLo: pc.GetHasLo(), HasHi: pc.GetHasHi(), LoInt: pc.GetLoInt(), HiInt: pc.GetHiInt(),
		RowsQuery: pc.GetRowsQuery(), TextKey: pc.GetTextKey(), Rows: pc.GetRows()}
}

// ResultToProto and ResultFromProto convert a result for the control API.
func ResultToProto(r *Result) *replicatorpb.CheckResult {
	return &replicatorpb.CheckResult{CheckId: r.CheckID, Chunk: r.Chunk, Host: r.Host, MarkerSeqno: r.Seqno, Count: r.Count, Crc: r.CRC,
		Vector: r.Tracking, Error: r.Err, Seconds: r.Took.Seconds(), BinlogPosition: r.BinlogPos, Rows: r.Rows}
}

func ResultFromProto(p *replicatorpb.CheckResult) Result {
	return Result{CheckID: p.GetCheckId(), Chunk: p.GetChunk(), Host: p.GetHost(), Seqno: p.GetMarkerSeqno(), Err: p.GetError(),
		Snapshot: Snapshot{Count: p.GetCount(), CRC: p.GetCrc(), Tracking: p.GetVector(), BinlogPos: p.GetBinlogPosition(), Rows: p.GetRows(), Took: time.Duration(p.GetSeconds() * float64(time.Second))}}
}
