package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"
)

// serveConfig is what `serve` needs to build its NATS server.
type serveConfig struct {
	listen     string // host:port; port 0 picks a free one
	data       string // JetStream storage directory
	token      string
	user       string
	password   string
	tlsCert    string
	tlsKey     string
	tlsCA      string // when set, clients must present a certificate it signed
	configFile string // a nats-server configuration file, for anything else (nkeys, accounts, clustering)
	quiet      bool   // no server log
}

// newServeCommand runs a NATS server with JetStream embedded in sglr-pipe.
func newServeCommand() *cobra.Command {
	c := &serveConfig{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a NATS server with JetStream for sweeps across machines (if you have no NATS of your own)",
		Long: `serve runs a NATS server with JetStream, embedded in sglr-pipe, for
'sglr-pipe worker' and 'sglr-pipe run --executor nats' to meet on. Any NATS
server or cluster with JetStream works the same. It keeps the work queue, the
shared object store and the action cache in --data, and runs until Ctrl-C.

Listening beyond this machine without authentication lets anyone who reaches
the port submit work to your workers: give --token or --user/--password (or
nkeys through --config), and TLS with --tls-cert/--tls-key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, c) },
	}
	fl := cmd.Flags()
	fl.StringVar(&c.listen, "listen", "127.0.0.1:4222", "address to listen on, host:port (port 0: any free port)")
	fl.StringVar(&c.data, "data", "sglr-nats", "directory for JetStream data (the queue, objects and action cache)")
	fl.StringVar(&c.token, "token", "", "require this token from clients (or $"+natsTokenEnv+")")
	fl.StringVar(&c.user, "user", "", "require this user name from clients (with --password)")
	fl.StringVar(&c.password, "password", "", "password of --user (or $"+natsPasswordEnv+")")
	fl.StringVar(&c.tlsCert, "tls-cert", "", "serve TLS with this certificate (with --tls-key)")
	fl.StringVar(&c.tlsKey, "tls-key", "", "private key of --tls-cert")
	fl.StringVar(&c.tlsCA, "tls-ca", "", "require client certificates signed by this CA")
	fl.StringVar(&c.configFile, "config", "", "nats-server configuration file (flags given explicitly override it)")
	fl.BoolVar(&c.quiet, "quiet", false, "do not print the server's log")
	return cmd
}

// runServe is the body of `serve`.
func runServe(cmd *cobra.Command, c *serveConfig) error {
	if c.token == "" && c.user == "" {
		c.token = os.Getenv(natsTokenEnv)
	}
	if c.user != "" && c.password == "" {
		c.password = os.Getenv(natsPasswordEnv)
	}
	opts, err := c.options(cmd)
	if err != nil {
		return err
	}
	s, err := startServer(opts)
	if err != nil {
		return failed(err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "NATS with JetStream listening on %s (data in %s)\n", s.ClientURL(), opts.StoreDir)
	if host := opts.Host; !isLoopback(host) && opts.Authorization == "" && opts.Username == "" && len(opts.Nkeys) == 0 &&
		len(opts.Users) == 0 && c.configFile == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "sglr-pipe: warning: listening on %s without authentication: anyone who reaches it can submit work to your workers (see --token)\n", host)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case sig := <-sigs:
		fmt.Fprintf(cmd.ErrOrStderr(), "sglr-pipe: %s: shutting the NATS server down\n", sig)
	case <-cmd.Context().Done():
	}
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// options builds the server options from the flags (over --config if given).
func (c *serveConfig) options(cmd *cobra.Command) (*server.Options, error) {
	opts := &server.Options{}
	if c.configFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(c.configFile); err != nil {
			return nil, usageErrorf(cmd, "--config %s: %v", c.configFile, err)
		}
	}
	changed := func(name string) bool { return c.configFile == "" || cmd.Flags().Changed(name) }
	if changed("listen") {
		host, portText, err := net.SplitHostPort(c.listen)
		if err != nil {
			return nil, usageErrorf(cmd, "--listen %q: want host:port (e.g. 0.0.0.0:4222): %v", c.listen, err)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 0 || port > 65535 {
			return nil, usageErrorf(cmd, "--listen %q: bad port %q", c.listen, portText)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, port
	}
	if changed("data") || opts.StoreDir == "" {
		opts.StoreDir = c.data
	}
	opts.JetStream = true
	if c.token != "" && c.user != "" {
		return nil, usageErrorf(cmd, "give --token or --user/--password, not both")
	}
	if (c.user == "") != (c.password == "") {
		return nil, usageErrorf(cmd, "--user needs --password (or $%s) and --password needs --user", natsPasswordEnv)
	}
	if c.token != "" {
		opts.Authorization = c.token
	}
	if c.user != "" {
		opts.Username, opts.Password = c.user, c.password
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usageErrorf(cmd, "--tls-cert needs --tls-key and --tls-key needs --tls-cert")
	}
	if c.tlsCA != "" && c.tlsCert == "" {
		return nil, usageErrorf(cmd, "--tls-ca (verifying clients) needs the server's own --tls-cert and --tls-key")
	}
	if c.tlsCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: c.tlsCert, KeyFile: c.tlsKey, CaFile: c.tlsCA, Verify: c.tlsCA != "",
		})
		if err != nil {
			return nil, usageErrorf(cmd, "TLS: %v", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = tc, true, c.tlsCA != "", 2
	}
	opts.NoSigs = true // signals are ours: Ctrl-C shuts down cleanly
	opts.NoLog = c.quiet
	return opts, nil
}

// startServer starts a NATS server (logging to stderr unless opts.NoLog)
// and waits until it accepts connections.
func startServer(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if !opts.NoLog {
		s.ConfigureLogger()
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s:%d did not start within 30s", opts.Host, opts.Port)
	}
	return s, nil
}

// isLoopback reports whether host only accepts connections from this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
