// The API of the monorepo example: `serve`, `work`, `migrate up` and `ping`.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: api serve|work|migrate|ping")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		addr := fs.String("addr", ":8000", "listen address")
		fs.Parse(os.Args[2:])
		http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, `{"hello":"monorepo"}`) })
		fmt.Println("listening on", *addr)
		if err := http.ListenAndServe(*addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "work":
		for {
			fmt.Println("worker: polling the queue")
			time.Sleep(5 * time.Second)
		}
	case "migrate":
		fmt.Println("migrations: up to date")
	case "ping":
		resp, err := http.Get("http://localhost:8000/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
