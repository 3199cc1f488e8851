// Command gen writes JSON lines (mqtape import's input) of a Sparkplug B
// plant: -nodes edge nodes with one device each, NBIRTH and DBIRTH with
// metric names and aliases, then -n DDATA messages with aliases only (two
// metrics each, seq counting on mod 256), 1 ms apart. Deterministic.
//
//	go run ./bench/decode/gen -n 100000 > sparkplug.jsonl
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/mqtape/mqtape/internal/sparkplugtest"
)

type line struct {
	Topic      string `json:"topic"`
	TsNS       int64  `json:"ts_ns"`
	PayloadB64 string `json:"payload_b64"`
}

func main() {
	n := flag.Int("n", 100_000, "DDATA messages")
	nodes := flag.Int("nodes", 10, "edge nodes (one device each)")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	ts := int64(1_790_000_000_000_000_000)
	seq := make([]uint64, *nodes)
	emit := func(topic string, payload []byte) {
		ts += 1e6
		if err := enc.Encode(line{topic, ts, base64.StdEncoding.EncodeToString(payload)}); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	for e := range *nodes {
		node := fmt.Sprintf("spBv1.0/plant/%%s/edge%d", e)
		emit(fmt.Sprintf(node, "NBIRTH"), sparkplugtest.Payload(uint64(ts/1e6), 0,
			sparkplugtest.Metric{Name: "bdSeq", Datatype: sparkplugtest.Int64, Value: int64(0)},
			sparkplugtest.Metric{Name: "Node Control/Rebirth", Alias: 1, HasAlias: true, Datatype: sparkplugtest.Boolean, Value: false}))
		emit(fmt.Sprintf(node, "DBIRTH")+"/pump", sparkplugtest.Payload(uint64(ts/1e6), 1,
			sparkplugtest.Metric{Name: "Temperature", Alias: 10, HasAlias: true, Datatype: sparkplugtest.Double, Value: 20.0},
			sparkplugtest.Metric{Name: "Count", Alias: 11, HasAlias: true, Datatype: sparkplugtest.Int32, Value: int32(0)}))
		seq[e] = 2
	}
	for i := range *n {
		e := i % *nodes
		emit(fmt.Sprintf("spBv1.0/plant/DDATA/edge%d/pump", e), sparkplugtest.Payload(uint64(ts/1e6), seq[e]%256,
			sparkplugtest.Metric{Alias: 10, HasAlias: true, Value: 20 + float64(i%100)/10},
			sparkplugtest.Metric{Alias: 11, HasAlias: true, Value: int32(i)}))
		seq[e]++
	}
}
