package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBrokersReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A port that refuses: listen, note the address, close.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := brokersReachable([]string{deadAddr, ln.Addr().String()})(ctx); err != nil {
		t.Errorf("one broker up: %v", err)
	}
	err = brokersReachable([]string{deadAddr})(ctx)
	if err == nil || !strings.Contains(err.Error(), "no kafka broker reachable") {
		t.Errorf("all brokers down: %v", err)
	}
}
