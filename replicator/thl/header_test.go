package thl

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestHeaderOfKeepsEveryField: Last and Info keep every field of an event
// but its changes; a field added to thlpb.Event and left out of headerOf
// (a master's restart reads prepared_from from Last) fails here.
func TestHeaderOfKeepsEveryField(t *testing.T) {
	ev := &thlpb.Event{}
	m := ev.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Cardinality() == protoreflect.Repeated {
			continue
		}
		switch f.Kind() {
		case protoreflect.StringKind:
			m.Set(f, protoreflect.ValueOfString("v-"+string(f.Name())))
		case protoreflect.BoolKind:
			m.Set(f, protoreflect.ValueOfBool(true))
		case protoreflect.Uint32Kind:
			m.Set(f, protoreflect.ValueOfUint32(uint32(f.Number())))
		case protoreflect.Uint64Kind:
			m.Set(f, protoreflect.ValueOfUint64(uint64(f.Number())))
		case protoreflect.Int64Kind:
			m.Set(f, protoreflect.ValueOfInt64(int64(f.Number())))
		default:
			t.Fatalf("field %s of kind %s: teach this test to set it", f.Name(), f.Kind())
		}
	}
	ev.Changes = []*thlpb.Change{{Change: &thlpb.Change_Statement{Statement: &thlpb.Statement{Sql: "x"}}}}
	want := proto.Clone(ev).(*thlpb.Event)
	want.Changes = nil
	if got := headerOf(ev); !proto.Equal(got, want) {
		t.Errorf("headerOf =\n%v\nwant\n%v", got, want)
	}
}
