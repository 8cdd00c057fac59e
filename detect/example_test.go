package detect_test

import (
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
)

func ExampleScanner_Scan() {
	s, err := detect.New(detect.WithKey([]byte("example-key-0123456789")))
	if err != nil {
		panic(err)
	}
	line := []byte(`10.0.0.7 - - "GET /api/me HTTP/1.1" 200 "Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA"`)
	for _, f := range s.Scan(line, nil) {
		fmt.Println(f.Kind, f.Rule, f.Scheme, f.Start, f.End, f.Redacted)
	}
	// Output:
	// bearer authorization.bearer Bearer 63 85 2Yo…AA
}

func ExampleRedact() {
	fmt.Println(detect.Redact([]byte("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")))
	fmt.Println(detect.Redact([]byte("2YotnFZFEjr1zCsicMWpAA")))
	fmt.Println(detect.Redact([]byte("short")))
	// Output:
	// eyJhbG…sw5c
	// 2Yo…AA
	// …
}

func ExampleDecodeJWT() {
	tok := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjoxMDAwfQ."
	info, err := detect.DecodeJWT([]byte(tok), time.Unix(1767225600, 0))
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Alg, info.Sub, info.AlgNone, info.Expired)
	// Output:
	// none mallory true true
}
