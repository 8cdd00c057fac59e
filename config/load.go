package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path over DefaultConfig. It expands
// ${NAME} in string values from the environment and rejects unknown keys; it
// does not validate (call Validate). Errors carry the file name and line.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, os.Getenv)
}

// ErrSyntax marks a file that does not parse as YAML (errors.Is).
var ErrSyntax = errors.New("not valid YAML")

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string        { return e.msg }
func (e *syntaxError) Is(target error) bool { return target == ErrSyntax }

// Parse is Load on bytes; name labels errors (the file path, or "" for none),
// getenv resolves ${NAME} (os.Getenv in production). When the only mistakes are
// unknown keys, unset variables or type errors, the returned Config holds
// everything else that decoded, so Validate can report further mistakes too.
//
// Environment expansion: ${NAME} inside any string value (quoted or not) is
// replaced by the variable's value; an unset variable is an error (an empty
// one is not); $${ gives a literal ${. Keys, numbers, booleans and durations
// are never expanded, so secrets (passwords, keys) are the intended use.
//
// A file that is not YAML at all fails with ErrSyntax and a zero Config:
// there is nothing to validate then.
func Parse(data []byte, name string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, nil // empty file: all defaults
		}
		return Config{}, &syntaxError{fmt.Sprintf("%s: %v", label(name), err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Config{}, linef(name, extra.Line, "a second YAML document; the configuration is one document")
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return cfg, nil
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, linef(name, root.Line, "the configuration must be a mapping of sections (ingest:, detect:, …)")
	}
	var errs errorList
	checkKeys(root, reflect.TypeOf(cfg), "", name, &errs)
	expandEnv(root, name, getenv, &errs)
	// Decode even after key or environment mistakes, so that the returned
	// Config can still be validated and every mistake reported at once.
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Config{}, fmt.Errorf("%s: %w", label(name), err)
		}
		for _, m := range te.Errors {
			errs = append(errs, fmt.Errorf("%s: %s", label(name), m))
		}
	}
	return cfg, errs.err()
}

func label(name string) string {
	if name == "" {
		return "config"
	}
	return name
}

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkKeys reports every mapping key that no yaml tag of t accepts, with its
// line and dotted path, and the keys that would be accepted.
func checkKeys(n *yaml.Node, t reflect.Type, path, file string, errs *errorList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return // the type decodes itself and decides which keys it accepts
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == durationType || n.Kind != yaml.MappingNode {
			return // scalars and type mismatches are reported by Decode
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue // merge key
			}
			p := joinPath(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, linef(file, k.Line, "%s: unknown key; known keys here: %s", p, knownKeys(fields)))
				continue
			}
			checkKeys(v, f, p, file, errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), file, errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), file, errs)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the yaml keys of struct t (inline structs flattened) to types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		out[name] = f.Type
	}
	return out
}

func knownKeys(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// expandEnv replaces ${NAME} in every string scalar value under n.
func expandEnv(n *yaml.Node, file string, getenv func(string) string, errs *errorList) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			expandEnv(c, file, getenv, errs)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], file, getenv, errs)
		}
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expandString(n.Value, getenv)
		if err != nil {
			*errs = append(*errs, linef(file, n.Line, "%v", err))
			return
		}
		n.Value = v
		n.Tag = "!!str" // stays a string even if the value now looks like a number
		n.Style = yaml.DoubleQuotedStyle
	}
}

// expandString expands ${NAME} references; $${ is a literal ${.
func expandString(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in a string value; close it with } or write $${ for a literal ${")
		}
		name := s[i+2 : i+2+end]
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: not a valid environment variable name (letters, digits, _; not starting with a digit)", name)
		}
		v, ok := lookup(getenv, name)
		if !ok {
			return "", fmt.Errorf("${%s}: environment variable %s is not set; set it, or write $${ for a literal ${", name, name)
		}
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), nil
}

// lookup distinguishes unset from empty when getenv is os.Getenv.
func lookup(getenv func(string) string, name string) (string, bool) {
	if v := getenv(name); v != "" {
		return v, true
	}
	if isOSGetenv(getenv) {
		return os.LookupEnv(name)
	}
	return "", false
}

func isOSGetenv(f func(string) string) bool {
	return reflect.ValueOf(f).Pointer() == reflect.ValueOf(os.Getenv).Pointer()
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// DefaultYAML renders DefaultConfig as a commented YAML document.
func DefaultYAML() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(DefaultConfig()); err != nil {
		return nil, fmt.Errorf("encode default config: %w", err)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if c, ok := sectionComments[n.Content[i].Value]; ok {
			n.Content[i].HeadComment = c
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# tokenwatch configuration: every key with its default value.\n# See docs/configuration.md. ${NAME} in a string value is read from the environment.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode default config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var sectionComments = map[string]string{
	"ingest":   "Sources: Kafka topics (consumer group), files/directories (plain or gzip, optional follow), stdin.",
	"parse":    "Log-format detection and field extraction for records that carry credentials.",
	"detect":   "Credential scanner and the fingerprint key (TOKENWATCH_FINGERPRINT_KEY overrides fingerprint_key).",
	"pipeline": "Batches in flight, retries of failed stages, shutdown drain time.",
	"output":   "JSON-lines findings file (one line per finding; never a raw token).",
}
