package store_test

import (
	"fmt"
	"strings"

	"github.com/tokenwatch/tokenwatch/store"
)

// The DDL for a cluster named "prod", as `tokenwatch migrate
// --print --cluster prod` shows it.
func ExampleScript() {
	cfg := store.DefaultConfig()
	cfg.Cluster = "prod"
	script, err := store.Script(cfg)
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(line, "CREATE TABLE IF NOT EXISTS tokenwatch.token_events") {
			fmt.Println(line)
		}
	}
	// Output:
	// CREATE TABLE IF NOT EXISTS tokenwatch.token_events_local ON CLUSTER prod
	// CREATE TABLE IF NOT EXISTS tokenwatch.token_events ON CLUSTER prod AS tokenwatch.token_events_local ENGINE = Distributed(prod, tokenwatch, token_events_local, cityHash64(fingerprint));
}
