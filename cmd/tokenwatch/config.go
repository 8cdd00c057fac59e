package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/tokenwatch/tokenwatch/config"
)

func init() {
	register(&command{name: "config", summary: "validate a configuration file, or print the default one", run: runConfig})
}

const configUsage = `usage: tokenwatch config validate FILE
       tokenwatch config default

validate  loads FILE (with ${ENV} expansion) and checks every section; prints
          each mistake on its own line as "FIELD: problem; fix" (exit 2), or
          "ok" (exit 0).
default   prints the default configuration, every key with its default value.
`

func runConfig(_ context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, configUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(env.stdout, configUsage)
		return exitOK
	case "validate":
		if len(args) != 2 {
			fmt.Fprint(env.stderr, configUsage)
			return exitUsage
		}
		cfg, err := config.Load(args[1])
		var loadErr *fs.PathError
		if errors.As(err, &loadErr) || errors.Is(err, config.ErrSyntax) {
			return printConfigProblems(env, err) // nothing decoded to validate
		}
		// Load's mistakes (unknown keys, unset ${VARS}, types) and Validate's
		// together, so one run lists everything to fix.
		errs := []error{err, cfg.Validate()}
		if !cfg.Ingest.HasSource() {
			errs = append(errs, errNoSource)
		}
		if err := errors.Join(errs...); err != nil {
			return printConfigProblems(env, err)
		}
		fmt.Fprintln(env.stdout, "ok")
		return exitOK
	case "default":
		if len(args) != 1 {
			fmt.Fprint(env.stderr, configUsage)
			return exitUsage
		}
		y, err := config.DefaultYAML()
		if err != nil {
			return fail(env, "config", err)
		}
		env.stdout.Write(y)
		return exitOK
	}
	fmt.Fprintf(env.stderr, "tokenwatch config: unknown subcommand %q\n\n%s", args[0], configUsage)
	return exitUsage
}

// printConfigProblems prints one mistake per line on stdout (the output a user
// asked for), and returns exit 2.
func printConfigProblems(env *cliEnv, err error) int {
	for _, p := range config.Problems(err) {
		fmt.Fprintln(env.stdout, p)
	}
	return exitUsage
}
