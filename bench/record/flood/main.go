// Command flood publishes N messages to an MQTT 3.1.1 broker as fast as
// the broker takes them, over one raw TCP connection (no client library:
// the publisher must not be the bottleneck of a recorder benchmark).
//
//	go run ./bench/record/flood -addr 127.0.0.1:1883 -n 100000 -size 64 -qos 1 -topic bench/a
//
// QoS 0 packets are written back to back; QoS 1 packets are pipelined with
// a window of in-flight PUBACKs (-window). It exits when every QoS 1
// message was acknowledged.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"github.com/mqtape/mqtape/internal/rawmqtt"
	"io"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "broker host:port")
	n := flag.Int("n", 100000, "messages")
	size := flag.Int("size", 64, "payload bytes")
	qos := flag.Int("qos", 0, "0 or 1")
	topic := flag.String("topic", "bench/a", "topic")
	window := flag.Int("window", 1000, "QoS 1 messages in flight at most")
	id := flag.String("id", fmt.Sprintf("flood-%d", os.Getpid()), "client id")
	flag.Parse()
	if err := run(*addr, *n, *size, byte(*qos), *topic, *window, *id); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

func run(addr string, n, size int, qos byte, topic string, window int, id string) error {
	conn, err := rawmqtt.Connect(addr, id, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	acked := make(chan int, 1)
	tokens := make(chan struct{}, window)
	if qos == 1 {
		go func() {
			r := bufio.NewReaderSize(conn, 64<<10)
			hdr := make([]byte, 4)
			count := 0
			for count < n {
				if _, err := io.ReadFull(r, hdr); err != nil {
					break
				}
				if hdr[0] == 0x40 {
					count++
					<-tokens
				}
			}
			acked <- count
		}()
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	w := bufio.NewWriterSize(conn, 256<<10)
	var b []byte
	for i := range n {
		if qos == 1 {
			select {
			case tokens <- struct{}{}:
			default:
				w.Flush()
				tokens <- struct{}{}
			}
		}
		b = rawmqtt.AppendPublishHeader(b[:0], topic, qos, uint16(i%65535+1), len(payload))
		w.Write(b)
		w.Write(payload)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if qos == 1 {
		select {
		case got := <-acked:
			if got != n {
				return fmt.Errorf("%d of %d PUBACKs", got, n)
			}
		case <-time.After(60 * time.Second):
			return fmt.Errorf("PUBACKs timed out")
		}
	}
	conn.Write([]byte{0xe0, 0}) // DISCONNECT
	return nil
}
