package multitrepctl

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet defines the options on a new flag set, into cfg and the three
// comma-separated lists; the flag walk in the tests reads the same
// definitions.
func flagSet(cfg *Config, hosts, services, fields *string) *flag.FlagSet {
	fs := flag.NewFlagSet("multi_trepctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&cfg.ByService, "by-service", false, "order by service")
	fs.StringVar(hosts, "hosts", "", "only these hosts")
	fs.StringVar(services, "services", "", "only these services")
	fs.StringVar(fields, "fields", "", "columns")
	fs.StringVar(&cfg.Output, "output", cfg.Output, "info, tab, list, json or name")
	fs.BoolVar(&cfg.HideHeaders, "hide-headers", false, "no header row")
	fs.StringVar(&cfg.SortBy, "sort-by", "", "order rows by this field")
	fs.StringVar(&cfg.INI, "ini", "", "tungsten.ini to read the hosts from")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per-replicator timeout")
	fs.StringVar(&cfg.HeartbeatName, "name", cfg.HeartbeatName, "heartbeat name")
	return fs
}

// runPrints is why the table's options do not apply to run.
const runPrints = "run prints each trepctl's own output, not a table"

// onlyHeartbeat is why -name applies to heartbeat only.
const onlyHeartbeat = "-name goes with heartbeat only: it names the heartbeats that heartbeat writes"

// refusals are the options a command does not carry out, by command, each
// with the reason and what to do instead. A refused option stops
// multi_trepctl before it asks any replicator.
var refusals = map[string]map[string]string{
	"list":     {"name": onlyHeartbeat},
	"position": {"name": onlyHeartbeat},
	"run": {
		"fields":       runPrints + " (use list --fields for a table)",
		"output":       runPrints + " (give trepctl's own -json, as in run status -json)",
		"hide-headers": runPrints,
		"sort-by":      runPrints + "; its blocks come in the list's order (--by-service orders them by service)",
		"timeout":      "run does not bound trepctl's commands: give their own limits (run wait -applied N -limit S, run flush -limit S)",
		"name":         onlyHeartbeat + " (run heartbeat -name N gives trepctl's own)",
	},
}

// refusal refuses an option given to a command that does not carry it
// out, and --hide-headers with an output that has no header row.
func refusal(fs *flag.FlagSet, cmd, output string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil {
			return
		}
		if why, ok := refusals[cmd][f.Name]; ok {
			if strings.HasPrefix(why, "-"+f.Name+" ") {
				err = fmt.Errorf("%s: %s", cmd, why)
			} else {
				err = fmt.Errorf("--%s does not apply to %s: %s", f.Name, cmd, why)
			}
			return
		}
		if f.Name == "hide-headers" && output != "info" && output != "tab" {
			err = fmt.Errorf("--hide-headers does not apply to --output %s: only the info and tab outputs have a header row", output)
		}
	})
	return err
}
