package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/carbidedb/carbide/internal/config"
)

// EnvHome names the environment variable that binds a program to an
// install directory; the wrappers in bin/ set it.
const EnvHome = "CARBIDE_HOME"

// EnvHost and EnvINI are exported by share/env.sh: the host this shell
// acts as, and the ini files tpm reads by default.
const (
	EnvHost    = "CARBIDE_HOST"
	EnvINI     = "CARBIDE_INI"
	EnvStaging = "CARBIDE_STAGING"
)

// ErrNotInstalled is returned when a directory holds no install.
var ErrNotInstalled = errors.New("install: not an install directory")

// Manifest is conf/install.json.
type Manifest struct {
	Host      string             `json:"host"`
	Kind      config.InstallKind `json:"kind"`
	Dir       string             `json:"dir"`
	Staging   string             `json:"staging"`
	INI       []string           `json:"ini"`
	Prefix    string             `json:"executable_prefix,omitempty"`
	Installed time.Time          `json:"installed"`
}

// Paths inside an install directory.
func ConfDir(home string) string      { return filepath.Join(home, "conf") }
func INIPath(home string) string      { return filepath.Join(home, "conf", "tungsten.ini") }
func ManifestPath(home string) string { return filepath.Join(home, "conf", "install.json") }
func EnvPath(home string) string      { return filepath.Join(home, "share", "env.sh") }
func BinDir(home string) string       { return filepath.Join(home, "bin") }
func LogDir(home string) string       { return filepath.Join(home, "var", "log") }
func RunDir(home string) string       { return filepath.Join(home, "var", "run") }
func UnitDir(home string) string      { return filepath.Join(home, "share", "systemd") }

// PIDFile is where the agent program (replicator, manager, connector) of
// the install at home records its process.
func PIDFile(home, program string) string { return filepath.Join(RunDir(home), program+".pid") }

// ProvisionMarker is the file tprovision leaves while a host's database
// holds part of a copy; the host's manager refuses to bring it back.
func ProvisionMarker(home string) string { return filepath.Join(RunDir(home), "tprovision.incomplete") }

// ReadManifest reads home's conf/install.json.
func ReadManifest(home string) (*Manifest, error) {
	data, err := os.ReadFile(ManifestPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no Carbide install (no conf/install.json); run tpm install: %w", home, ErrNotInstalled)
	}
	if err != nil {
		return nil, fmt.Errorf("read install manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); run tpm update to rewrite it", ManifestPath(home), err)
	}
	if m.Host == "" || (m.Kind != config.ClusterInstall && m.Kind != config.CrossSiteInstall) {
		return nil, fmt.Errorf("%s names no host or an unknown install kind; run tpm update to rewrite it", ManifestPath(home))
	}
	return &m, nil
}

// Bound is an install as a program bound to it sees it.
type Bound struct {
	Home     string
	Manifest *Manifest
	Config   *config.Config
	Host     *config.HostPlan
	Install  *config.Install
}

// Open reads the install at home: its manifest and installed config, and
// finds the host's plan in it.
func Open(home string) (*Bound, error) {
	m, err := ReadManifest(home)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(INIPath(home))
	if err != nil {
		return nil, fmt.Errorf("installed configuration %s: %w", INIPath(home), err)
	}
	h, ok := cfg.Plan().Host(m.Host)
	if !ok {
		return nil, fmt.Errorf("%s installs host %s, which its configuration no longer has; run tpm update", home, m.Host)
	}
	in := h.Install(m.Kind)
	if in == nil {
		return nil, fmt.Errorf("host %s has no %s install in its configuration any more; run tpm update", m.Host, m.Kind)
	}
	return &Bound{Home: home, Manifest: m, Config: cfg, Host: h, Install: in}, nil
}

// OpenFromEnv opens the install named by CARBIDE_HOME. It returns
// (nil, nil) when the variable is unset.
func OpenFromEnv() (*Bound, error) {
	home := os.Getenv(EnvHome)
	if home == "" {
		return nil, nil
	}
	return Open(home)
}
