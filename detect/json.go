package detect

// A minimal, allocation-free JSON walker used to validate decoded JWT headers on
// the hot path. It checks that data is one JSON object (with bounded nesting) and
// finds the string value of a top-level key. Claim decoding for findings uses
// encoding/json (see jwt.go); this walker only decides "is this a JWT header".

const maxJSONDepth = 32

type jsonWalker struct {
	b []byte
	i int
}

func (w *jsonWalker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\r', '\n':
			w.i++
		default:
			return
		}
	}
}

// str parses a JSON string at w.i and returns its raw contents (escapes kept).
func (w *jsonWalker) str() ([]byte, bool) {
	if w.i >= len(w.b) || w.b[w.i] != '"' {
		return nil, false
	}
	start := w.i + 1
	for j := start; j < len(w.b); j++ {
		c := w.b[j]
		switch {
		case c == '"':
			w.i = j + 1
			return w.b[start:j], true
		case c == '\\':
			if j+1 >= len(w.b) {
				return nil, false
			}
			switch w.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(w.b) || !isHex(w.b[j+2]) || !isHex(w.b[j+3]) || !isHex(w.b[j+4]) || !isHex(w.b[j+5]) {
					return nil, false
				}
				j += 5
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (w *jsonWalker) lit(s string) bool {
	if len(w.b)-w.i < len(s) || string(w.b[w.i:w.i+len(s)]) != s {
		return false
	}
	w.i += len(s)
	return true
}

func (w *jsonWalker) number() bool {
	st := w.i
	if w.i < len(w.b) && w.b[w.i] == '-' {
		w.i++
	}
	digits := 0
	for w.i < len(w.b) {
		c := w.b[w.i]
		if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
			if c >= '0' && c <= '9' {
				digits++
			}
			w.i++
			continue
		}
		break
	}
	return digits > 0 && w.i > st
}

func (w *jsonWalker) value(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	w.ws()
	if w.i >= len(w.b) {
		return false
	}
	switch c := w.b[w.i]; {
	case c == '{':
		return w.object(depth+1, "", nil)
	case c == '[':
		w.i++
		w.ws()
		if w.i < len(w.b) && w.b[w.i] == ']' {
			w.i++
			return true
		}
		for {
			if !w.value(depth + 1) {
				return false
			}
			w.ws()
			if w.i >= len(w.b) {
				return false
			}
			if w.b[w.i] == ']' {
				w.i++
				return true
			}
			if w.b[w.i] != ',' {
				return false
			}
			w.i++
		}
	case c == '"':
		_, ok := w.str()
		return ok
	case c == 't':
		return w.lit("true")
	case c == 'f':
		return w.lit("false")
	case c == 'n':
		return w.lit("null")
	default:
		return w.number()
	}
}

// object parses an object at w.i. When key is not empty, the raw string value of
// that top-level key is stored in *found (nil if absent or not a string).
func (w *jsonWalker) object(depth int, key string, found *[]byte) bool {
	if depth > maxJSONDepth || w.i >= len(w.b) || w.b[w.i] != '{' {
		return false
	}
	w.i++
	w.ws()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return true
	}
	for {
		w.ws()
		k, ok := w.str()
		if !ok {
			return false
		}
		w.ws()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			return false
		}
		w.i++
		w.ws()
		if found != nil && string(k) == key && w.i < len(w.b) && w.b[w.i] == '"' {
			v, ok := w.str()
			if !ok {
				return false
			}
			*found = v
		} else if !w.value(depth) {
			return false
		}
		w.ws()
		if w.i >= len(w.b) {
			return false
		}
		if w.b[w.i] == '}' {
			w.i++
			return true
		}
		if w.b[w.i] != ',' {
			return false
		}
		w.i++
	}
}

// jsonObjectStrings reports whether b is exactly one JSON object and returns the
// raw string values of the top-level keys k1 and k2 (nil when absent).
func jsonObjectStrings(b []byte, k1, k2 string) (v1, v2 []byte, ok bool) {
	// Two passes keep the walker simple; headers are small and bounded.
	w := jsonWalker{b: b}
	w.ws()
	if !w.object(1, k1, &v1) {
		return nil, nil, false
	}
	w.ws()
	if w.i != len(b) {
		return nil, nil, false
	}
	if k2 != "" {
		w = jsonWalker{b: b}
		w.ws()
		w.object(1, k2, &v2)
	}
	return v1, v2, true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// jsonFields calls fn with every top-level key (raw, escapes kept) and the raw
// bytes of its value. It reports whether b is exactly one valid JSON object.
func jsonFields(b []byte, fn func(key, raw []byte)) bool {
	w := jsonWalker{b: b}
	w.ws()
	if w.i >= len(b) || b[w.i] != '{' {
		return false
	}
	w.i++
	w.ws()
	if w.i < len(b) && b[w.i] == '}' {
		w.i++
		w.ws()
		return w.i == len(b)
	}
	for {
		w.ws()
		k, ok := w.str()
		if !ok {
			return false
		}
		w.ws()
		if w.i >= len(b) || b[w.i] != ':' {
			return false
		}
		w.i++
		w.ws()
		st := w.i
		if !w.value(1) {
			return false
		}
		fn(k, b[st:w.i])
		w.ws()
		if w.i >= len(b) {
			return false
		}
		if b[w.i] == '}' {
			w.i++
			w.ws()
			return w.i == len(b)
		}
		if b[w.i] != ',' {
			return false
		}
		w.i++
	}
}

// jsonArrayEach calls fn with the raw bytes of every element of array raw.
func jsonArrayEach(raw []byte, fn func(elem []byte)) {
	w := jsonWalker{b: raw}
	if len(raw) == 0 || raw[0] != '[' {
		return
	}
	w.i = 1
	for {
		w.ws()
		if w.i >= len(raw) || raw[w.i] == ']' {
			return
		}
		st := w.i
		if !w.value(1) {
			return
		}
		fn(raw[st:w.i])
		w.ws()
		if w.i >= len(raw) || raw[w.i] != ',' {
			return
		}
		w.i++
	}
}
