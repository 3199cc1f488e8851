// Command plainbroker runs the same embedded mochi broker as `mqtape serve`
// but records nothing: the reference for bench/serve/run.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mqtape/mqtape/broker"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:1883", "address")
	queued := flag.Int("max-queued", 8192, "messages queued for a slow subscriber before the broker drops")
	flag.Parse()
	b, err := broker.Start(broker.Options{Listen: []string{*addr}, MaxPending: int32(*queued)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	b.Close()
}
