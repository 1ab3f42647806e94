// Command ferretdb-launcher runs an embedded FerretDB (SQLite backend) for
// mongostore's tests. It is ours rather than `go install .../cmd/ferretdb`
// because a binary built that way panics at start-up: the published module
// lacks the build/version/version.txt that FerretDB's own main expects.
//
// Usage: ferretdb-launcher -dir DATA_DIR [-listen 127.0.0.1:0]
//
// It prints one line, "ready <mongodb-uri> <ferretdb-version>", once the listener is bound, and
// exits cleanly on SIGTERM or SIGINT, or when its standard input closes (so a
// parent that dies cannot leave it running).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "SQLite data directory (required)")
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	watchStdin := flag.Bool("watch-stdin", true, "exit when standard input closes")
	flag.Parse()

	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher: -dir is required")
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()

	// MongoDBURI blocks until Run has bound the listener, so the line below
	// is printed only once clients can connect.
	fmt.Printf("ready %s %s\n", f.MongoDBURI(), ferretDBVersion())
	<-done
}

// ferretDBVersion reports the embedded module's version: the server's own
// buildInfo says "unknown" when FerretDB is embedded.
func ferretDBVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/FerretDB/FerretDB" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
	os.Exit(1)
}
