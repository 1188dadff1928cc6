package command

import (
	"fmt"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// Ping is `ping`.
func Ping() *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Ping{Ping: &managerpb.PingCommand{}}}
}

// Members is `members`.
func Members() *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Members{Members: &managerpb.MembersCommand{}}}
}

// Heartbeat is `cluster heartbeat`.
func Heartbeat() *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Heartbeat{Heartbeat: &managerpb.HeartbeatCommand{}}}
}

// Switch is `switch [to HOST]` ("" to: the managers choose).
func Switch(to string) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Switch{Switch: &managerpb.SwitchCommand{To: to}}}
}

// Failover is `failover [to HOST]`.
func Failover(to string) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Failover{Failover: &managerpb.FailoverCommand{To: to}}}
}

// Router is `router HOST|* online|offline`.
func Router(host string, online bool) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Router{Router: &managerpb.RouterCommand{Host: host, Online: online}}}
}

// Replicator is `replicator HOST online|offline`.
func Replicator(host string, online bool) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Replicator{Replicator: &managerpb.ReplicatorCommand{Host: host, Online: online}}}
}

// Datasource is `datasource HOST ACTION`.
func Datasource(host string, action managerpb.DatasourceAction) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Datasource{Datasource: &managerpb.DatasourceCommand{Host: host, Action: action}}}
}

// Policy is `set policy MODE`.
func Policy(mode managerpb.PolicyMode) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Policy{Policy: &managerpb.PolicyCommand{Mode: mode}}}
}

// Service is `service HOST/mysql ACTION`.
func Service(host string, action managerpb.ServiceAction) *managerpb.CommandRequest {
	return &managerpb.CommandRequest{Command: &managerpb.CommandRequest_Service{Service: &managerpb.ServiceCommand{Host: host, Action: action}}}
}

// word is an enum value's name as an operator types it: its last part,
// in lower case (DATASOURCE_ACTION_SHUN → shun).
func word(name, prefix string) string { return strings.ToLower(strings.TrimPrefix(name, prefix)) }

// DatasourceAction is the action an operator names (shun, welcome,
// recover, online, offline, fail).
func DatasourceAction(w string) (managerpb.DatasourceAction, error) {
	v, ok := managerpb.DatasourceAction_value["DATASOURCE_ACTION_"+strings.ToUpper(w)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("unknown action %q; use shun, welcome, recover, online, offline or fail", w)
	}
	return managerpb.DatasourceAction(v), nil
}

// PolicyMode is the policy an operator names (automatic, maintenance).
func PolicyMode(w string) (managerpb.PolicyMode, error) {
	v, ok := managerpb.PolicyMode_value["POLICY_MODE_"+strings.ToUpper(w)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("unknown policy %q; use automatic or maintenance", w)
	}
	return managerpb.PolicyMode(v), nil
}

// ServiceAction is the action an operator names (start, stop, restart).
func ServiceAction(w string) (managerpb.ServiceAction, error) {
	v, ok := managerpb.ServiceAction_value["SERVICE_ACTION_"+strings.ToUpper(w)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("unknown action %q; use start, stop or restart", w)
	}
	return managerpb.ServiceAction(v), nil
}

// OnOff is online (true) or offline (false).
func OnOff(w string) (bool, error) {
	switch w {
	case "online":
		return true, nil
	case "offline":
		return false, nil
	}
	return false, fmt.Errorf("unknown action %q; use online or offline", w)
}

func onOff(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}

// Words renders r as the words cctrl takes for it; nil for no command.
func Words(r *managerpb.CommandRequest) []string {
	switch c := r.GetCommand().(type) {
	case *managerpb.CommandRequest_Ping:
		return []string{"ping"}
	case *managerpb.CommandRequest_Members:
		return []string{"members"}
	case *managerpb.CommandRequest_Heartbeat:
		return []string{"cluster", "heartbeat"}
	case *managerpb.CommandRequest_Policy:
		return []string{"set", "policy", word(c.Policy.GetMode().String(), "POLICY_MODE_")}
	case *managerpb.CommandRequest_Datasource:
		return []string{"datasource", c.Datasource.GetHost(), word(c.Datasource.GetAction().String(), "DATASOURCE_ACTION_")}
	case *managerpb.CommandRequest_Replicator:
		return []string{"replicator", c.Replicator.GetHost(), onOff(c.Replicator.GetOnline())}
	case *managerpb.CommandRequest_Router:
		return []string{"router", c.Router.GetHost(), onOff(c.Router.GetOnline())}
	case *managerpb.CommandRequest_Switch:
		return target("switch", c.Switch.GetTo())
	case *managerpb.CommandRequest_Failover:
		return target("failover", c.Failover.GetTo())
	case *managerpb.CommandRequest_Service:
		return []string{"service", c.Service.GetHost() + "/mysql", word(c.Service.GetAction().String(), "SERVICE_ACTION_")}
	}
	return nil
}

func target(verb, to string) []string {
	if to == "" {
		return []string{verb}
	}
	return []string{verb, "to", to}
}

// Text is Words joined by spaces.
func Text(r *managerpb.CommandRequest) string { return strings.Join(Words(r), " ") }

// Parse builds the request of a command's words as cctrl takes them
// ("switch to east2", "datasource east2 shun", "set policy maintenance",
// "router * offline", "service east1/mysql restart", "cluster heartbeat",
// "ping", "members"), for clients that hold words.
func Parse(words []string) (*managerpb.CommandRequest, error) {
	n := len(words)
	usage := func(u string) error { return fmt.Errorf("usage: %s", u) }
	if n == 0 {
		return nil, fmt.Errorf("no command given")
	}
	switch words[0] {
	case "ping", "members":
		if n != 1 {
			return nil, usage(words[0])
		}
		if words[0] == "ping" {
			return Ping(), nil
		}
		return Members(), nil
	case "set":
		if n != 3 || words[1] != "policy" {
			return nil, usage("set policy automatic|maintenance")
		}
		mode, err := PolicyMode(words[2])
		if err != nil {
			return nil, err
		}
		return Policy(mode), nil
	case "datasource":
		if n != 3 {
			return nil, usage("datasource HOST shun|welcome|recover|online|offline|fail")
		}
		action, err := DatasourceAction(words[2])
		if err != nil {
			return nil, fmt.Errorf("datasource %s: %w", words[1], err)
		}
		return Datasource(words[1], action), nil
	case "replicator", "router":
		if n != 3 {
			return nil, usage(words[0] + " HOST online|offline")
		}
		online, err := OnOff(words[2])
		if err != nil {
			return nil, err
		}
		if words[0] == "router" {
			return Router(words[1], online), nil
		}
		return Replicator(words[1], online), nil
	case "switch", "failover":
		to := ""
		switch {
		case n == 3 && words[1] == "to":
			to = words[2]
		case n != 1:
			return nil, usage(words[0] + " [to HOST]")
		}
		if words[0] == "switch" {
			return Switch(to), nil
		}
		return Failover(to), nil
	case "service":
		if n != 3 {
			return nil, usage("service HOST/mysql start|stop|restart")
		}
		host, comp, ok := strings.Cut(words[1], "/")
		if !ok || comp != "mysql" || host == "" {
			return nil, fmt.Errorf("service %s: name the database as HOST/mysql", words[1])
		}
		action, err := ServiceAction(words[2])
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", words[1], err)
		}
		return Service(host, action), nil
	case "cluster":
		if n != 2 || words[1] != "heartbeat" {
			return nil, usage("cluster heartbeat")
		}
		return Heartbeat(), nil
	}
	return nil, fmt.Errorf("unknown command %q", words[0])
}
