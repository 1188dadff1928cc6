package router

import (
	"testing"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

func TestOperatorHold(t *testing.T) {
	a := &Agent{proxy: NewProxy(ProxyConfig{}), bound: &install.Bound{Host: &config.HostPlan{Name: "east2"}}}
	a.log = a.proxy.cfg.Logger
	t.Cleanup(a.proxy.Close)
	e1 := Target{Host: "east1", Addr: "127.0.1.1:13306"}
	e3 := Target{Host: "east3", Addr: "127.0.1.3:13306"}
	online := Table{State: StateOnline, Primary: e1, ReadOnly: e3, Term: 4}

	a.setHold(true) // before any table: the first one is held
	a.setTable(online)
	got := a.proxy.Table()
	if got.State != StateOnHold || got.Primary != e1 || got.ReadOnly != (Target{}) || got.Term != 4 || got.Why == "" {
		t.Fatalf("held table %+v: want ONHOLD, the primary kept, no read-only target", got)
	}
	a.setTable(Table{State: StateOnline, Primary: e3, Term: 5}) // a new table stays held
	if got := a.proxy.Table(); got.State != StateOnHold || got.Primary != e3 || got.Term != 5 {
		t.Fatalf("new table under the hold: %+v", got)
	}
	a.setTable(Table{State: StateOffline, Why: "offline"}) // the managers' OFFLINE wins
	if got := a.proxy.Table(); got.State != StateOffline || got.Why != "offline" {
		t.Fatalf("OFFLINE under the hold: %+v", got)
	}
	a.setTable(online)
	a.setHold(false)
	if got := a.proxy.Table(); got.State != StateOnline || got.ReadOnly != e3 || !a.proxy.routes(false, "east1") {
		t.Fatalf("released: %+v", got)
	}
	if a.onHold() {
		t.Fatal("onHold after release")
	}
}
