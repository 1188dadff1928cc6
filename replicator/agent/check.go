package agent

import (
	"context"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Check runs a consistency check's master side (service.Check).
func (c *controlServer) Check(req *replicatorpb.CheckRequest, stream replicatorpb.Replicator_CheckServer) error {
	s, err := c.service(req.GetService())
	if err != nil {
		return toStatus(err)
	}
	return toStatus(s.Check(stream.Context(), req, stream.Send))
}

// CheckResults returns this host's results for a check.
func (c *controlServer) CheckResults(ctx context.Context, req *replicatorpb.CheckResultsRequest) (*replicatorpb.CheckResultsReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	reply := &replicatorpb.CheckResultsReply{}
	for _, r := range s.CheckResults(req.GetCheckId()) {
		reply.Results = append(reply.Results, consistency.ResultToProto(&r))
	}
	return reply, nil
}

// Touched says whether a service's transactions in a range may have
// changed a chunk.
func (c *controlServer) Touched(ctx context.Context, req *replicatorpb.TouchedRequest) (*replicatorpb.TouchedReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	ch := consistency.ChunkFromProto(req.GetChunk())
	all, keys, err := s.Touched(ctx, req.GetFromSeqno(), req.GetToSeqno(), &ch)
	if err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.TouchedReply{Touched: all || len(keys) > 0, All: all, Keys: keys}, nil
}
