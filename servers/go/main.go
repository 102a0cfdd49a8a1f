// grpclab-go-server: the lab's four tutorial services on grpc-go, a reference for the Python servers.
//
// It serves the wire contract of servers/ (the Python servers): the same services, lab fields, status
// codes, lab.Control, health, reflection, TLS/mTLS from the lab's cert directory, the same JSON ready
// line, and exit 0 after a graceful stop on SIGTERM/SIGINT. Start it with `grpclab serve --impl go`,
// which checks the options, writes the text corpus, and then execs this binary in its own place.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // registers gzip: requests may be gzip, replies can be
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"grpclab/servers/go/gen/chatpb"
	"grpclab/servers/go/gen/greetpb"
	"grpclab/servers/go/gen/labpb"
	"grpclab/servers/go/gen/numberstreampb"
	"grpclab/servers/go/gen/sumstreampb"
)

const exitUsage = 2

type config struct {
	host              string
	port              int
	tlsDir            string
	mtls              bool
	compression       string
	maxMessageBytes   int
	maxConcurrentRPCs int
	grace             time.Duration
	textCorpus        string
}

// usageError is a bad flag, file or address: one line on stderr and exit 2, as `grpclab serve` does.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func parseFlags(args []string) (config, bool, error) {
	var c config
	var grace float64
	fs := flag.NewFlagSet("grpclab-go-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error is printed as one line below, not with the usage block
	fs.StringVar(&c.host, "host", "127.0.0.1", "address to bind")
	fs.IntVar(&c.port, "port", 50051, "port; 0 picks a free one")
	fs.StringVar(&c.tlsDir, "tls", "", "serve TLS with DIR/server.crt and DIR/server.key")
	fs.BoolVar(&c.mtls, "mtls", false, "also require client certificates signed by DIR/ca.crt")
	fs.StringVar(&c.compression, "compression", "none", "reply compression: none or gzip")
	fs.IntVar(&c.maxMessageBytes, "max-message-bytes", 64<<20, "largest message received or sent")
	fs.IntVar(&c.maxConcurrentRPCs, "max-concurrent-rpcs", 0, "RPCs in flight beyond this get RESOURCE_EXHAUSTED (0: no limit)")
	fs.Float64Var(&grace, "grace", 2.0, "seconds open RPCs get after SIGTERM/SIGINT")
	fs.StringVar(&c.textCorpus, "text-corpus", "", "the Python lab's text payload, 32 MiB (grpclab serve writes it)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return c, false, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return c, false, usagef("unexpected argument %q", fs.Arg(0))
	}
	if *version {
		return c, true, nil
	}
	switch c.compression {
	case "none", "gzip":
	case "deflate":
		return c, false, usagef("--compression deflate: grpc-go has no deflate compressor; use none or gzip")
	default:
		return c, false, usagef("--compression: unknown value %q; allowed: none, gzip", c.compression)
	}
	if c.port < 0 || c.port > 65535 {
		return c, false, usagef("--port: must be 0-65535, got %d", c.port)
	}
	if c.maxMessageBytes < 1 {
		return c, false, usagef("--max-message-bytes: must be >= 1, got %d", c.maxMessageBytes)
	}
	if c.maxConcurrentRPCs < 0 {
		return c, false, usagef("--max-concurrent-rpcs: must be >= 1, got %d", c.maxConcurrentRPCs)
	}
	if grace < 0 {
		return c, false, usagef("--grace: must be >= 0, got %g", grace)
	}
	if c.mtls && c.tlsDir == "" {
		return c, false, usagef("--mtls: needs --tls DIR (the server certificate and the CA that signs client certs)")
	}
	c.grace = time.Duration(grace * float64(time.Second))
	return c, false, nil
}

func transportCredentials(c config) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.tlsDir, "server.crt"), filepath.Join(c.tlsDir, "server.key"))
	if err != nil {
		return nil, usagef("--tls %s: %v", c.tlsDir, err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}}
	if c.mtls {
		caPath := filepath.Join(c.tlsDir, "ca.crt")
		pem, err := os.ReadFile(caPath)
		if err != nil {
			return nil, usagef("--mtls: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--mtls: no certificate in %s", caPath)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(conf), nil
}

// serviceNames are the services health reports SERVING (servers/logic.py SERVICE_NAMES + Control).
var serviceNames = []string{
	greetpb.Greeter_ServiceDesc.ServiceName,
	numberstreampb.NumberService_ServiceDesc.ServiceName,
	sumstreampb.SumService_ServiceDesc.ServiceName,
	chatpb.ChatService_ServiceDesc.ServiceName,
	labpb.Control_ServiceDesc.ServiceName,
}

type readyLine struct {
	Event          string `json:"event"`
	Impl           string `json:"impl"`
	Host           string `json:"host"`
	Port           int    `json:"port"`
	Pid            int    `json:"pid"`
	Pids           []int  `json:"pids"`
	TLS            bool   `json:"tls"`
	MTLS           bool   `json:"mtls"`
	Compression    string `json:"compression"`
	Workers        *int   `json:"workers"` // null: no thread pool to size (goroutine per RPC)
	Processes      int    `json:"processes"`
	GrpcGo         string `json:"grpc_go"`
	Go             string `json:"go"`
	Gomaxprocs     int    `json:"gomaxprocs"` // the runtime's default: the CPUs this process may run on
	FaultsInjected bool   `json:"faults_injected"`
}

func run(args []string) error {
	c, showVersion, err := parseFlags(args)
	if err != nil {
		return err
	}
	if showVersion {
		fmt.Printf("grpclab-go-server (grpc-go %s, %s)\n", grpc.Version, runtime.Version())
		return nil
	}
	f, err := faultsFromEnv(os.Getenv)
	if err != nil {
		return &usageError{err.Error()}
	}
	b, err := newBodies(c.textCorpus)
	if err != nil {
		return &usageError{err.Error()}
	}
	hooks := &rpcHooks{maxConcurrent: int64(c.maxConcurrentRPCs)}
	if c.compression == "gzip" {
		hooks.sendCompressor = "gzip"
	}
	options := []grpc.ServerOption{grpc.MaxRecvMsgSize(c.maxMessageBytes), grpc.MaxSendMsgSize(c.maxMessageBytes)}
	if c.tlsDir != "" {
		creds, err := transportCredentials(c)
		if err != nil {
			return err
		}
		options = append(options, grpc.Creds(creds))
	}

	// Signals are caught before the port is bound: a SIGTERM right after the ready line stops gracefully.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	server := grpc.NewServer(options...)
	registrar := countingRegistrar{server: server, hooks: hooks}
	state := &lab{bodies: b, faults: f, hooks: hooks, started: time.Now()}
	greetpb.RegisterGreeterServer(registrar, &greeter{lab: state})
	numberstreampb.RegisterNumberServiceServer(registrar, &numberService{lab: state})
	sumstreampb.RegisterSumServiceServer(registrar, &sumService{lab: state})
	chatpb.RegisterChatServiceServer(registrar, &chatService{lab: state})
	labpb.RegisterControlServer(registrar, &control{lab: state})
	healthServer := health.NewServer() // "" is SERVING from the start
	for _, name := range serviceNames {
		healthServer.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthgrpc.RegisterHealthServer(registrar, healthServer)
	reflection.Register(registrar) // ghz and grpcurl need no .proto files

	address := net.JoinHostPort(c.host, fmt.Sprint(c.port))
	listener, err := net.Listen("tcp", address)
	if err != nil {
		var errno syscall.Errno // "address already in use" rather than "listen tcp ...: bind: ..."
		if errors.As(err, &errno) {
			err = errno
		}
		return usagef("cannot bind %s: %v", address, err)
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	pid := os.Getpid()
	ready, _ := json.Marshal(readyLine{
		Event: "ready", Impl: "go", Host: c.host, Port: listener.Addr().(*net.TCPAddr).Port,
		Pid: pid, Pids: []int{pid}, TLS: c.tlsDir != "", MTLS: c.mtls, Compression: c.compression,
		Processes: 1, GrpcGo: grpc.Version, Go: runtime.Version(), Gomaxprocs: runtime.GOMAXPROCS(0),
		FaultsInjected: f.active,
	})
	if _, err := os.Stdout.Write(append(ready, '\n')); err != nil {
		return fmt.Errorf("writing the ready line: %v", err)
	}

	select {
	case <-stop:
	case err := <-served:
		return fmt.Errorf("serving stopped: %v", err)
	}
	// New RPCs are refused at once; open ones get the grace period, then are cancelled.
	stopped := make(chan struct{})
	go func() { server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(c.grace):
		server.Stop()
		select { // bounded, like the Python servers' stop(): exit even if a handler ignores its context
		case <-stopped:
		case <-time.After(time.Second):
		}
	}
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "grpclab serve: error: %v\n", err)
		var usage *usageError
		if errors.As(err, &usage) {
			os.Exit(exitUsage)
		}
		os.Exit(1)
	}
}
