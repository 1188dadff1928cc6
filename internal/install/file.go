package install

import (
	"encoding/json"

	"github.com/carbidedb/carbide/internal/fileutil"
)

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, append(data, '\n'), 0o644)
}
