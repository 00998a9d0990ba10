package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// magic starts every datagram of the tool, so stray packets are ignored.
var magic = [4]byte{'G', 'W', 'T', '1'}

// headerLen is the size of a request: magic, flow, seq, send time.
const headerLen = 4 + 4 + 8 + 8

// maxName bounds the identity and address strings of a reply.
const maxName = 64

// ErrMalformed marks a datagram that is not the tool's.
var ErrMalformed = errors.New("traffic: malformed datagram")

// Probe is one UDP request: flow id, sequence number and the client's send
// time (Unix nanoseconds).
type Probe struct {
	Flow uint32
	Seq  uint64
	Sent int64
}

// Echo is the server's reply: the request plus who answered and from
// which source address it saw the request.
type Echo struct {
	Probe
	ISP    string // server identity, e.g. isp1
	Source string // the request's source as the server saw it (ip:port)
}

// AppendProbe appends p's encoding to b.
func AppendProbe(b []byte, p Probe) []byte {
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint32(b, p.Flow)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	return binary.BigEndian.AppendUint64(b, uint64(p.Sent))
}

// ParseProbe decodes a request (trailing bytes are ignored).
func ParseProbe(b []byte) (Probe, error) {
	if len(b) < headerLen || [4]byte(b[:4]) != magic {
		return Probe{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	return Probe{
		Flow: binary.BigEndian.Uint32(b[4:]),
		Seq:  binary.BigEndian.Uint64(b[8:]),
		Sent: int64(binary.BigEndian.Uint64(b[16:])),
	}, nil
}

// AppendEcho appends e's encoding to b. Strings longer than 64 bytes are
// cut.
func AppendEcho(b []byte, e Echo) []byte {
	b = AppendProbe(b, e.Probe)
	for _, s := range []string{e.ISP, e.Source} {
		if len(s) > maxName {
			s = s[:maxName]
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// ParseEcho decodes a reply.
func ParseEcho(b []byte) (Echo, error) {
	p, err := ParseProbe(b)
	if err != nil {
		return Echo{}, err
	}
	e := Echo{Probe: p}
	rest := b[headerLen:]
	for _, dst := range []*string{&e.ISP, &e.Source} {
		if len(rest) < 1 || int(rest[0]) > maxName || len(rest) < 1+int(rest[0]) {
			return Echo{}, fmt.Errorf("%w: truncated echo", ErrMalformed)
		}
		*dst = string(rest[1 : 1+rest[0]])
		rest = rest[1+rest[0]:]
	}
	if !printable(e.ISP) || !printable(e.Source) {
		return Echo{}, fmt.Errorf("%w: unprintable identity", ErrMalformed)
	}
	return e, nil
}

// Greeting is the line the server writes on every TCP connection.
func Greeting(isp, source string) string { return isp + " " + source + "\n" }

// ParseGreeting splits a greeting line into identity and source.
func ParseGreeting(line string) (isp, source string, err error) {
	line = strings.TrimSuffix(line, "\n")
	isp, source, ok := strings.Cut(line, " ")
	if !ok || isp == "" || source == "" || len(isp) > maxName || len(source) > maxName || !printable(line) {
		return "", "", fmt.Errorf("%w: greeting %q", ErrMalformed, line)
	}
	return isp, source, nil
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x21 && c != ' ' || c > 0x7e {
			return false
		}
	}
	return true
}
