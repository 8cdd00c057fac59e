// Command tokenwatch finds bearer credentials in logs, watches how every token is
// used, and alerts on leaks, replays and impossible use.
//
// main only dispatches: each subcommand lives in a file of its own (scan.go,
// redact.go, run.go, …) and registers itself in init with register.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes (DESIGN.md contract for scan; every command uses 2 for usage and I/O errors).
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
)

// command is one subcommand. run gets the arguments after the subcommand name and
// returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a command may touch, so tests can run commands in process.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stderrTTY is true when stderr is a terminal (progress lines).
	stderrTTY bool
	getenv    func(string) string
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("BUG: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr), getenv: os.Getenv}
	code := runCLI(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// runCLI dispatches args to a subcommand and returns the exit code.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		usage(env.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, env, []string{"--help"})
			}
		}
		usage(env.stdout)
		return exitOK
	case "--version", "-version":
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "tokenwatch: unknown command %q\n\n", args[0])
		usage(env.stderr)
		return exitUsage
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tokenwatch <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'tokenwatch <command> --help' for a command's flags.")
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// errUsage marks errors that are the user's invocation, not I/O.
var errUsage = errors.New("usage")

// fail prints "tokenwatch <cmd>: err" and returns the matching exit code.
func fail(env *cliEnv, cmd string, err error) int {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "usage: ")
	fmt.Fprintf(env.stderr, "tokenwatch %s: %s\n", cmd, msg)
	return exitUsage
}

// newFlagSet returns a ContinueOnError flag set whose usage prints text first.
func newFlagSet(env *cliEnv, name, text string) *flag.FlagSet {
	fs := flag.NewFlagSet("tokenwatch "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; help goes to stdout with exit 0, errors exit 2.
func parseFlags(env *cliEnv, fs *flag.FlagSet, args []string) (code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(env.stdout)
			fs.Usage()
			return exitOK, false
		}
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage, false
	}
	return 0, true
}
