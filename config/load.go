package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Option changes how Load and Parse treat the configuration.
type Option func(*options)

type options struct {
	offline  bool
	hostname func() (string, error)
}

// Offline is for tools that read the file away from the firewalls
// (gwctl check, gwctl render on an admin's machine). When the node was not
// named (neither the node argument nor the file's node: key), the host name
// still selects it, but a host name that is not in nodes is no error and
// Self returns the zero NodeSpec. A node that was named must exist in nodes
// (when nodes is not empty) even offline: a typo in --node is always an error.
func Offline() Option { return func(o *options) { o.offline = true } }

// withHostname replaces os.Hostname (tests).
func withHostname(name string) Option {
	return func(o *options) { o.hostname = func() (string, error) { return name, nil } }
}

// Load reads the configuration file at path; see Parse.
func Load(path, node string, opts ...Option) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, node, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads a configuration from YAML, fills the defaults, selects the node
// and validates the result. node (the --node flag) wins over the file's node:
// key, which wins over the short host name (os.Hostname up to the first dot,
// lower-cased). On any problem it returns nil and a *ValidationError listing
// every problem found: malformed YAML, unknown keys, values of the wrong type
// and everything Validate and ValidateNode report, with each field named once
// (a value that could not be decoded is not also reported as missing).
//
// Keys are case-insensitive: viper lower-cases every key when it reads the
// file, so "Links:" is "links:" and a node written "FW1:" under nodes is
// node "fw1". Values keep their case.
func Parse(data []byte, node string, opts ...Option) (*Config, error) {
	o := options{hostname: os.Hostname}
	for _, opt := range opts {
		opt(&o)
	}
	raw, err := readYAML(data)
	if err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			ps := make([]Problem, len(te.Errors))
			for i, e := range te.Errors {
				ps[i] = Problem{Msg: "yaml: " + e}
			}
			return nil, &ValidationError{Problems: ps}
		}
		return nil, &ValidationError{Problems: []Problem{{Msg: err.Error()}}}
	}

	cfg := Default()
	unknown := unknownKeys(raw, reflect.TypeFor[Config](), "")
	decodeErr := decode(raw, &cfg)
	bad := append(unknown, decodeProblems(decodeErr, unknown)...)
	slices.SortStableFunc(bad, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	normaliseEmpty(reflect.ValueOf(&cfg).Elem())

	named, nodeProblem := selectNode(&cfg, node, o)
	cfg.ApplyDefaults()

	var later []Problem
	if nodeProblem != nil {
		later = append(later, *nodeProblem)
	} else if named || !o.offline {
		later = append(later, cfg.nodeProblems()...)
	}
	later = append(cfg.problems(), later...)
	for _, p := range later {
		if !covered(bad, p.Path) {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return nil, &ValidationError{Problems: bad}
	}
	return &cfg, nil
}

// covered reports whether a decode problem already names path or a field
// that contains it, so validation does not report the same field again.
func covered(decodeProblems []Problem, path string) bool {
	for _, d := range decodeProblems {
		if d.Msg == msgUnknownKey || d.Path == "" {
			continue
		}
		if path == d.Path || strings.HasPrefix(path, d.Path+".") || strings.HasPrefix(path, d.Path+"[") {
			return true
		}
	}
	return false
}

// selectNode stores the selected node name in cfg.Node. named reports
// whether the node was named by the argument or the file (not the host name).
func selectNode(cfg *Config, arg string, o options) (named bool, p *Problem) {
	switch {
	case arg != "":
		cfg.Node = arg
		return true, nil
	case cfg.Node != "":
		return true, nil
	}
	h, err := o.hostname()
	if err != nil || h == "" {
		return false, &Problem{Path: "node", Msg: fmt.Sprintf("not set and the host name is unknown (%v); set node: or --node", err)}
	}
	h, _, _ = strings.Cut(h, ".")
	cfg.Node = strings.ToLower(h)
	return false, nil
}

// readYAML reads the file with viper and returns the tree viper holds, keys
// lower-cased. viper's own Unmarshal is not used to decode: it rebuilds the
// tree from its flattened key list, which drops keys whose value is null and
// mappings that are empty, so "intervall:" would pass unnoticed and
// "nodes: {fw2: {}}" would lose fw2. The decoder registered here keeps the
// map viper builds, and mapstructure decodes that, with the options in strict.
func readYAML(data []byte) (map[string]any, error) {
	codec := &yamlCodec{}
	reg := viper.NewCodecRegistry()
	if err := reg.RegisterCodec("yaml", codec); err != nil {
		return nil, err
	}
	v := viper.NewWithOptions(viper.WithDecoderRegistry(reg), viper.KeyDelimiter("\x00"))
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		if codec.err != nil {
			return nil, codec.err
		}
		return nil, err
	}
	if codec.tree == nil {
		return map[string]any{}, nil
	}
	return codec.tree, nil
}

// yamlCodec decodes YAML for viper and remembers the map it filled (which
// viper then lower-cases in place and keeps as its configuration).
type yamlCodec struct {
	tree map[string]any
	err  error
}

func (c *yamlCodec) Encode(m map[string]any) ([]byte, error) { return yaml.Marshal(m) }

func (c *yamlCodec) Decode(b []byte, m map[string]any) error {
	c.err = c.decode(b, m)
	return c.err
}

func (c *yamlCodec) decode(b []byte, m map[string]any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errEOF) {
			c.tree = m
			return nil // empty file: every required field will be reported
		}
		return err
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return errors.New("yaml: the file holds more than one document (---); write one")
	} else if !errors.Is(err, errEOF) {
		return err
	}
	if doc == nil {
		c.tree = m
		return nil
	}
	top, err := normaliseYAML(doc, "")
	if err != nil {
		return err
	}
	tm, ok := top.(map[string]any)
	if !ok {
		return fmt.Errorf("yaml: the file must be a mapping of keys (cluster:, lan:, links: ...), not %s", kindOf(top))
	}
	for k, v := range tm {
		m[k] = v
	}
	c.tree = m
	return nil
}

// errEOF is what yaml.Decoder returns at the end of the input.
var errEOF = func() error {
	var x any
	return yaml.NewDecoder(strings.NewReader("")).Decode(&x)
}()

// normaliseYAML turns every mapping into map[string]any and refuses keys
// that only differ in case (viper would silently keep one of them).
func normaliseYAML(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		seen := map[string]string{}
		for k, e := range x {
			if prev, dup := seen[strings.ToLower(k)]; dup {
				a, b := min(prev, k), max(prev, k)
				return nil, fmt.Errorf("yaml: %s: keys %q and %q differ only in case", nonEmpty(path), a, b)
			}
			seen[strings.ToLower(k)] = k
			n, err := normaliseYAML(e, joinField(path, strings.ToLower(k)))
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = e
		}
		return normaliseYAML(m, path)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normaliseYAML(e, joinIndex(path, i))
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	return v, nil
}

func nonEmpty(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// strict is the mapstructure configuration: no unknown keys, no weak type
// conversion (a quoted "443" is not a port, 250 is not a duration) and hooks
// for the typed values.
var strict viper.DecoderConfigOption = func(dc *mapstructure.DecoderConfig) {
	dc.ErrorUnused = true
	dc.WeaklyTypedInput = false
	dc.TagName = "mapstructure"
	dc.MatchName = func(mapKey, fieldName string) bool { return mapKey == fieldName }
	// shapeHook runs last, on what decodeHook made of the value.
	dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(decodeHook, shapeHook)
}

// shapeHook refuses a value whose shape the field cannot hold — a scalar
// or a mapping where a list goes, anything but a mapping where a section
// goes — with a valueError, so that decodeProblems words it from the
// value itself rather than from mapstructure's message text.
func shapeHook(from, to reflect.Type, data any) (any, error) {
	if data == nil || from == to {
		return data, nil
	}
	switch to.Kind() {
	case reflect.Slice, reflect.Array:
		if k := from.Kind(); k != reflect.Slice && k != reflect.Array {
			if k := kindOf(data); k != fmt.Sprintf("%T", data) {
				return nil, &valueError{msg: "must be a list, not " + k}
			}
			return nil, &valueError{msg: "must be a list"}
		}
	case reflect.Struct:
		if from.Kind() != reflect.Map {
			return nil, &valueError{msg: "must be a mapping (key: value)"}
		}
	}
	return data, nil
}

func decode(raw map[string]any, cfg *Config) error {
	dc := &mapstructure.DecoderConfig{}
	strict(dc)
	dc.Result = cfg
	d, err := mapstructure.NewDecoder(dc)
	if err != nil {
		return err
	}
	return d.Decode(raw)
}

var (
	addrType     = reflect.TypeFor[netip.Addr]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	durationType = reflect.TypeFor[time.Duration]()
	percentType  = reflect.TypeFor[Percent]()
)

// valueError is a decode hook's complaint about one value.
type valueError struct {
	value string
	msg   string
}

func (e *valueError) Error() string { return fmt.Sprintf("%q %s", e.value, e.msg) }

func decodeHook(from, to reflect.Type, data any) (any, error) {
	switch to {
	case addrType:
		s, ok := data.(string)
		if !ok {
			return nil, mismatch(data, "an IP address")
		}
		if s == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &valueError{s, "is not an IP address"}
		}
		return a, nil
	case prefixType:
		s, ok := data.(string)
		if !ok {
			return nil, mismatch(data, "a network (e.g. 192.168.0.0/24)")
		}
		if s == "" {
			return netip.Prefix{}, nil
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if _, aerr := netip.ParseAddr(s); aerr == nil {
				return nil, &valueError{s, "is an address, not a network: add the prefix length (e.g. /24)"}
			}
			return nil, &valueError{s, "is not a network (e.g. 192.168.0.0/24)"}
		}
		return p, nil
	case durationType:
		switch x := data.(type) {
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return nil, &valueError{x, "is not a duration (e.g. 250ms, 2s, 1m)"}
			}
			return d, nil
		case int, int64, uint64, float64:
			if reflect.ValueOf(x).IsZero() {
				return time.Duration(0), nil
			}
			return nil, &valueError{scalarText(x), "is a duration without a unit: write e.g. 250ms or 2s"}
		}
		return nil, mismatch(data, "a duration (e.g. 250ms, 2s, 1m)")
	case percentType:
		var f float64
		switch x := data.(type) {
		case string:
			s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(x), "%"))
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || strings.ContainsAny(s, "xXpP_") {
				return nil, &valueError{x, "is not a percentage (e.g. 40%)"}
			}
			f = v
		case int:
			f = float64(x)
		case int64:
			f = float64(x)
		case uint64:
			f = float64(x)
		case float64:
			f = x
		default:
			return nil, mismatch(data, "a percentage (e.g. 40%)")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, &valueError{scalarText(data), "is not a percentage (e.g. 40%)"}
		}
		return Percent(f), nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch x := data.(type) {
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, &valueError{scalarText(x), "is not a whole number"}
			}
		case uint64:
			if x > math.MaxInt32 {
				return nil, &valueError{scalarText(x), "is too large"}
			}
		}
	case reflect.Float32, reflect.Float64:
		if x, ok := data.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			return nil, &valueError{scalarText(x), "is not a number"}
		}
	}
	return data, nil
}

// mismatch is the complaint about a value of the wrong kind.
func mismatch(data any, what string) *valueError {
	switch data.(type) {
	case map[string]any, []any:
		return &valueError{msg: "must be " + what + ", not " + kindOf(data)}
	}
	return &valueError{scalarText(data), "is not " + what}
}

// scalarText is how a YAML value is quoted in a problem.
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	case map[string]any, []any:
		return ""
	}
	return fmt.Sprint(v)
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "text"
	case bool:
		return "true/false"
	case int, int64, uint64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// want names what a field of type t must hold.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "a mapping (key: value)"
	}
	return t.String()
}

const msgUnknownKey = "unknown key"

// unknownKeys walks the raw tree against the struct type and names every
// key that has no field, with its full path (links[0].probe.intervall).
// mapstructure's ErrorUnused reports the same keys, but grouped per mapping.
func unknownKeys(raw any, t reflect.Type, path string) []Problem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Problem
	switch {
	case t == addrType || t == prefixType:
		return nil
	case t.Kind() == reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil // a type problem, reported by the decoder
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			if tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ","); tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		for k, v := range m {
			ft, ok := fields[k]
			if !ok {
				out = append(out, Problem{Path: joinField(path, k), Msg: msgUnknownKey})
				continue
			}
			out = append(out, unknownKeys(v, ft, joinField(path, k))...)
		}
	case t.Kind() == reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			return nil
		}
		for i, v := range l {
			out = append(out, unknownKeys(v, t.Elem(), joinIndex(path, i))...)
		}
	case t.Kind() == reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil
		}
		for k, v := range m {
			out = append(out, unknownKeys(v, t.Elem(), joinField(path, k))...)
		}
	}
	return out
}

// decodeProblems turns mapstructure's joined errors into problems. The
// "has invalid keys" errors are dropped when unknownKeys already named a key
// under that path.
func decodeProblems(err error, unknown []Problem) []Problem {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []Problem
		for _, e := range j.Unwrap() {
			out = append(out, decodeProblems(e, unknown)...)
		}
		return out
	}
	de, ok := err.(*mapstructure.DecodeError)
	if !ok {
		if w := errors.Unwrap(err); w != nil {
			return decodeProblems(w, unknown) // mapstructure's "decoding failed" wrapper
		}
		return []Problem{{Msg: err.Error()}}
	}
	path := msPath(de.Name())
	inner := de.Unwrap()
	var ve *valueError
	var ut *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(inner, &ve):
		return []Problem{{Path: path, Value: ve.value, Msg: ve.msg}}
	case errors.As(inner, &ut):
		return []Problem{typeProblem(path, ut.Value, ut.Expected.Type())}
	}
	// What is left is mapstructure's own complaint; ErrorUnused's about
	// keys under path is one unknownKeys already named, key by key.
	for _, u := range unknown {
		if u.Path == path || strings.HasPrefix(u.Path, path+".") || strings.HasPrefix(u.Path, path+"[") || path == "" {
			return nil
		}
	}
	return []Problem{{Path: path, Msg: inner.Error()}}
}

func typeProblem(path string, v any, t reflect.Type) Problem {
	switch v.(type) {
	case map[string]any, []any:
		return Problem{Path: path, Msg: "must be " + want(t) + ", not " + kindOf(v)}
	}
	return Problem{Path: path, Value: scalarText(v), Msg: "is not " + want(t)}
}

// msPath rewrites a mapstructure field name (nodes[fw1].probe_source[isp1])
// into this package's path form (nodes.fw1.probe_source.isp1).
func msPath(name string) string {
	var b strings.Builder
	for name != "" {
		i := strings.IndexAny(name, ".[")
		if i < 0 {
			b.WriteString(name)
			break
		}
		b.WriteString(name[:i])
		if name[i] == '.' {
			b.WriteByte('.')
			name = name[i+1:]
			continue
		}
		j := strings.IndexByte(name[i:], ']')
		if j < 0 {
			b.WriteString(name[i:])
			break
		}
		key := name[i+1 : i+j]
		if _, err := strconv.Atoi(key); err == nil {
			b.WriteString("[" + key + "]")
		} else {
			s := joinField("x", key)
			b.WriteString(s[1:])
		}
		name = name[i+j+1:]
	}
	return b.String()
}

// normaliseEmpty sets empty lists and maps to nil, so that "join: []" and
// no join key decode to the same configuration (and the same Hash).
func normaliseEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normaliseEmpty(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == addrType || v.Type() == prefixType {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normaliseEmpty(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 && !v.IsNil() {
			v.SetZero()
			return
		}
		for i := range v.Len() {
			normaliseEmpty(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 && !v.IsNil() {
			v.SetZero()
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			normaliseEmpty(e)
			v.SetMapIndex(k, e)
		}
	}
}
