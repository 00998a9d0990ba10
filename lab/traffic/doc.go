// Package traffic is the lab's traffic tool: a server that runs in every
// ISP's namespace at the "internet host" address, and a client that runs on
// the LAN host and sends many concurrent flows through the firewall pair.
//
// UDP: each flow is its own socket (its own source port, so its own
// conntrack entry on the firewalls) sending sequence-numbered, timestamped
// datagrams at a fixed rate; the server echoes each one with its identity
// (the ISP whose namespace it runs in) and the source address it saw (the
// NAT address: which firewall's uplink carried it). TCP: the client opens
// new connections continuously; the server answers each with the same
// identity line and closes it. Streams: long-lived TCP connections to the
// server's echo port, each writing a record every interval from start to
// end; their stalls and errors are what a master change of the firewall
// pair costs an established connection (stream.go).
//
// Accounting is pure (Flow, Analyze*): per flow the packets sent, received,
// lost, duplicated and reordered, the longest gap and every gap above three
// send intervals, and the segments of the flow carried by each ISP; per
// connection its start, outcome and ISP. Gaps are measured on the send
// timestamps of consecutive received sequence numbers, so they are the
// outage the network caused (to within one interval), not receive jitter.
//
// cmd gwtraffic (lab/gwtraffic) runs a Server or a Client as a process
// inside a namespace; the lab harness starts it and reads its JSON report.
package traffic
