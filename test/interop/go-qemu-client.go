// A peer's real QMP client talking to qmpkit: digitalocean/go-qemu's SocketMonitor (Debian's
// golang-github-digitalocean-go-qemu-dev) connects, negotiates, runs query-status, stop and cont,
// and must receive STOP and RESUME. test/interop/go-qemu.test.ts builds and runs it offline:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o BIN test/interop/go-qemu-client.go
//
// It prints one line per step ("greeting ...", "query-status ...", "event STOP", ...) and exits 0
// only when every step succeeded; any failure prints "error: ..." and exits 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("error: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	network := flag.String("network", "unix", "unix or tcp")
	addr := flag.String("addr", "", "socket path or host:port")
	timeout := flag.Duration("timeout", 10*time.Second, "overall time limit")
	flag.Parse()
	if *addr == "" {
		fail("-addr is required")
	}

	mon, err := qmp.NewSocketMonitor(*network, *addr, 5*time.Second)
	if err != nil {
		fail("dial %s %s: %v", *network, *addr, err)
	}
	if err := mon.Connect(); err != nil {
		fail("connect: %v", err)
	}
	defer mon.Disconnect()
	fmt.Printf("greeting %s capabilities=%v\n", mon.Version.String(), mon.Capabilities)

	// go-qemu delivers events on an unbuffered channel from its reader goroutine, and QEMU sends
	// STOP before the reply to stop: drain events concurrently or the reader blocks.
	events, err := mon.Events(context.Background())
	if err != nil {
		fail("events: %v", err)
	}
	seen := make(chan string, 64)
	go func() {
		for e := range events {
			fmt.Printf("event %s\n", e.Event)
			seen <- e.Event
		}
	}()

	run := func(name string) map[string]interface{} {
		out, err := mon.Run([]byte(fmt.Sprintf(`{"execute":%q}`, name)))
		if err != nil {
			fail("%s: %v", name, err)
		}
		var reply map[string]interface{}
		if err := json.Unmarshal(out, &reply); err != nil {
			fail("%s: reply is not JSON: %v", name, err)
		}
		return reply
	}

	status := run("query-status")
	ret, _ := json.Marshal(status["return"])
	fmt.Printf("query-status %s\n", ret)
	run("stop")
	run("cont")

	want := map[string]bool{"STOP": false, "RESUME": false}
	deadline := time.After(*timeout)
	for !want["STOP"] || !want["RESUME"] {
		select {
		case name := <-seen:
			if _, ok := want[name]; ok {
				want[name] = true
			}
		case <-deadline:
			fail("timed out waiting for STOP and RESUME (seen: %v)", want)
		}
	}
	fmt.Println("ok")
}
