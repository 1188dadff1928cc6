package restapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/carbidedb/carbide/internal/daemon"
)

// Config configures a Server.
type Config struct {
	// Component is manager, replicator or connector: routes live under
	// /api/v2/<Component>/.
	Component string
	// Addr is the host:port to listen on.
	Addr string
	// User and Password are rest-api-admin-user and
	// rest-api-admin-password; both are required.
	User, Password string
	// Host is this host's name, for ping.
	Host   string
	Logger *slog.Logger
	// ReadHeaderTimeout bounds reading a request's headers (5 s when 0).
	ReadHeaderTimeout time.Duration
	// TLS, when set, serves HTTPS only (thl-ssl=true: the cluster's
	// certificate); a plain HTTP request is answered 400.
	TLS *tls.Config
}

// Validate checks the configuration; ErrNoCredentials when the user or
// password is missing.
func (c *Config) Validate() error {
	if c.User == "" || c.Password == "" {
		return ErrNoCredentials
	}
	switch c.Component {
	case "manager", "replicator", "connector":
	default:
		return fmt.Errorf("restapi: unknown component %q (manager, replicator or connector)", c.Component)
	}
	if c.Addr == "" {
		return errors.New("restapi: no listen address")
	}
	return nil
}

// Handler answers a request with a payload, sent in the envelope
// {"payloadType", "payloadVersion", "payload"}, or with an error, sent as
// {"error": "sentence"} with the status httpStatus gives it.
type Handler func(r *http.Request) (payload any, err error)

type route struct {
	payloadType string
	open        bool
	h           Handler
}

// Server is one agent's REST API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  map[string]map[string]route // path → method → route
	started time.Time
	user    [sha256.Size]byte
	pass    [sha256.Size]byte
}

// New returns a server with the ping routes registered.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 5 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), routes: map[string]map[string]route{}, started: time.Now(),
		user: sha256.Sum256([]byte(cfg.User)), pass: sha256.Sum256([]byte(cfg.Password))}
	ping := func(*http.Request) (any, error) {
		return Ping{Message: "pong", Component: cfg.Component, HostName: cfg.Host, PID: os.Getpid(),
			Date: time.Now().UTC().Format(time.RFC3339), UptimeSeconds: time.Since(s.started).Round(time.Millisecond).Seconds()}, nil
	}
	s.add(http.MethodGet, "/api/v2/ping", "PingPayload", true, ping)
	s.add(http.MethodGet, s.Path("ping"), "PingPayload", true, ping)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (see docs/rest-api.md)", r.Method, r.URL.Path))
	})
	return s, nil
}

// Ping is the payload of the open ping routes.
type Ping struct {
	Message       string  `json:"message"`
	Component     string  `json:"component"`
	HostName      string  `json:"hostName"`
	PID           int     `json:"pid"`
	Date          string  `json:"date"`
	UptimeSeconds float64 `json:"uptimeSeconds"`
}

// Path is /api/v2/<component>/<rel>.
func (s *Server) Path(rel string) string {
	return "/api/v2/" + s.cfg.Component + "/" + strings.TrimPrefix(rel, "/")
}

// Handle registers h for method on /api/v2/<component>/<rel>, behind
// authentication; rel may hold {wildcards} (http.ServeMux patterns).
func (s *Server) Handle(method, rel, payloadType string, h Handler) {
	s.add(method, s.Path(rel), payloadType, false, h)
}

func (s *Server) add(method, path, payloadType string, open bool, h Handler) {
	byMethod, ok := s.routes[path]
	if !ok {
		byMethod = map[string]route{}
		s.routes[path] = byMethod
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, byMethod) })
	}
	byMethod[method] = route{payloadType: payloadType, open: open, h: h}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, byMethod map[string]route) {
	rt, ok := byMethod[r.Method]
	if !ok && r.Method == http.MethodHead {
		rt, ok = byMethod[http.MethodGet]
	}
	if !ok || !rt.open {
		if !s.authorized(w, r) {
			return
		}
	}
	if !ok {
		var allow []string
		for m := range byMethod {
			allow = append(allow, m)
		}
		sort.Strings(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", r.URL.Path, strings.Join(allow, " or "), r.Method))
		return
	}
	begin := time.Now()
	payload, err := rt.h(r)
	code := http.StatusOK
	if err != nil {
		code = httpStatus(err)
		writeError(w, code, message(err))
	} else {
		pt := rt.payloadType
		if t, ok := payload.(typed); ok {
			pt, payload = t.payloadType, t.payload
		}
		writeJSON(w, code, Envelope{PayloadType: pt, PayloadVersion: "1", Payload: payload})
	}
	level := slog.LevelDebug
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		level = slog.LevelInfo
	}
	user, _, _ := r.BasicAuth()
	s.log.Log(r.Context(), level, "REST API request", "method", r.Method, "path", r.URL.Path, "user", user,
		"remote", r.RemoteAddr, "status", code, "took", time.Since(begin).Round(time.Millisecond))
}

// authorized checks the request's basic credentials in constant time,
// answering 401 and logging the attempt (user and remote address, never
// the password) when they are missing or wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	match := subtle.ConstantTimeCompare(u[:], s.user[:]) & subtle.ConstantTimeCompare(p[:], s.pass[:])
	if ok && match == 1 {
		return true
	}
	why := "wrong user or password"
	if !ok {
		why = "no credentials"
	}
	s.log.Warn("REST API authentication failed", "user", user, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", why)
	w.Header().Set("WWW-Authenticate", `Basic realm="carbide"`)
	writeError(w, http.StatusUnauthorized, "authentication required: give the rest-api-admin-user and rest-api-admin-password of the install (HTTP basic auth)")
	return false
}

// Handler is the server's HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens on the configured address and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	l, err := daemon.Listen(ctx, s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen for the REST API on %s (%s-rest-api-port): %w", s.cfg.Addr, s.cfg.Component, err)
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx ends, then shuts down: no new requests,
// requests under way get up to 5 s to finish.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
		srv.TLSConfig = s.cfg.TLS
		l = tls.NewListener(l, s.cfg.TLS)
	}
	s.log.Info("REST API listening", "component", s.cfg.Component, "address", l.Addr().String(), "scheme", scheme)
	err := srv.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Start serves an agent's API, its routes added by routes, in a goroutine
// of wg until ctx ends. Without credentials it logs why and serves
// nothing: the API is never served unauthenticated.
func Start(ctx context.Context, wg *sync.WaitGroup, cfg Config, routes func(*Server)) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.User == "" || cfg.Password == "" {
		log.Info("REST API off", "reason", "rest-api-admin-user and rest-api-admin-password are not both set; the API is never served without credentials")
		return
	}
	srv, err := New(cfg)
	if err != nil {
		log.Error("REST API", "error", err)
		return
	}
	routes(srv)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			log.Error("REST API", "error", err)
		}
	}()
}
