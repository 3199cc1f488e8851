// Command flood publishes device-like MQTT 3.1.1 traffic to a broker over
// raw TCP connections (internal/loadgen: no client library, so the
// publisher is never the bottleneck of a recorder benchmark).
//
//	go run ./bench/record/flood -addr 127.0.0.1:1883 -n 100000 -size 64 -qos 1 -topic bench/a
//	go run ./bench/record/flood -devices 50 -rate 10000 -n 20050 -qos 1 -window 10 -topic plant
//
// Device d publishes JSON telemetry to TOPIC/dev-NNN. Without -rate the
// devices send as fast as the broker takes them; with it, message k of the
// run is due at k/rate seconds after the start (one absolute clock). QoS 1/2
// messages are pipelined with -window of them in flight per device. It
// exits 0 when every message was sent and acknowledged.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/mqtape/mqtape/internal/loadgen"
)

func main() {
	var c loadgen.Config
	flag.StringVar(&c.Addr, "addr", "127.0.0.1:1883", "broker host:port")
	flag.IntVar(&c.Messages, "n", 100000, "messages in total")
	flag.IntVar(&c.Size, "size", 0, "pad payloads to at least this many bytes (0: bare JSON telemetry, ~90 B)")
	qos := flag.Int("qos", 0, "0, 1 or 2")
	flag.StringVar(&c.Topic, "topic", "bench", "topic prefix (device d publishes to PREFIX/dev-NNN)")
	flag.IntVar(&c.Window, "window", 10, "QoS 1/2 messages in flight per device at most (mosquitto's default limit is 20)")
	flag.IntVar(&c.Devices, "devices", 1, "devices (connections)")
	flag.Float64Var(&c.Rate, "rate", 0, "total messages per second (0: as fast as the broker takes them)")
	flag.BoolVar(&c.Telemetry, "telemetry", false, "send ~120-byte JSON telemetry whose readings vary, unpadded (-size ignored)")
	flag.StringVar(&c.ClientID, "id", fmt.Sprintf("flood-%d", os.Getpid()), "client id prefix")
	flag.Parse()
	c.QoS = byte(*qos)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
	fmt.Printf("sent %d, acknowledged %d in %.3f s (%.0f msg/s)\n", res.Sent, res.Acked, res.Elapsed.Seconds(), float64(res.Sent)/res.Elapsed.Seconds())
}
