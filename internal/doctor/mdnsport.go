package doctor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// mdnsPort is the mDNS port, 5353 (0x14E9).
const mdnsPort = 5353

// MDNSPort checks that lanft can listen on UDP 5353 on the first of ifs,
// as its mDNS responder does (with SO_REUSEADDR, and SO_REUSEPORT where the
// system has it), and names the programs already listening there (avahi,
// systemd-resolved, another lanft). Sharing the port is fine: every
// listener hears the multicast queries. A program holding it without
// sharing keeps lanft from answering.
func MDNSPort(ifs []net.Interface) Result {
	r := Result{Check: "mdns port"}
	others := mdnsListeners()
	if len(ifs) == 0 {
		r.Status, r.Detail = Warn, "not checked: no usable interface"
		r.Fix = "fix the interface check first"
		return r
	}
	c, err := net.ListenMulticastUDP("udp4", &ifs[0], &net.UDPAddr{IP: mdnsGroup, Port: mdnsPort})
	if err != nil {
		r.Status = Fail
		holder := "another program"
		if len(others) > 0 {
			holder = strings.Join(others, ", ")
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			r.Detail = "UDP 5353 is held by " + holder + " without sharing: lanft cannot answer mDNS queries"
			r.Fix = "stop it or let it share the port (SO_REUSEADDR), or skip discovery with --signal URL"
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			r.Detail = "not allowed to listen on UDP 5353: " + oneLine(unwrapOp(err))
			r.Fix = "a security policy forbids it; allow lanft to bind UDP 5353, or skip discovery with --signal URL"
		default:
			r.Detail = "cannot listen on UDP 5353: " + oneLine(unwrapOp(err))
			r.Fix = "skip discovery with --signal URL until this is solved"
		}
		return r
	}
	c.Close()
	r.Status = OK
	if len(others) > 0 {
		r.Detail = "shared with " + strings.Join(others, ", ") + ": each hears the mDNS queries"
	} else {
		r.Detail = "free: lanft can listen on UDP 5353"
	}
	return r
}

// mdnsListeners describes the programs listening on UDP 5353, as far as
// this system lets us see: "avahi-daemon (pid 812)", or "a program (uid
// 104)" when the process is not visible.
func mdnsListeners() []string {
	socks, err := procUDPSockets()
	if err != nil {
		// No /proc (not Linux): try the port without sharing it.
		c, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", mdnsPort))
		if err == nil {
			c.Close()
			return nil
		}
		if runtime.GOOS == "darwin" {
			return []string{"another program (on macOS, mDNSResponder)"}
		}
		return []string{"another program"}
	}
	var inodes []uint64
	for _, s := range socks {
		if s.Port == mdnsPort && s.Inode != 0 {
			inodes = append(inodes, s.Inode)
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	owners := socketOwners("/proc", inodes)
	var out []string
	seen := map[string]bool{}
	for _, s := range socks {
		if s.Port != mdnsPort {
			continue
		}
		d := fmt.Sprintf("a program of uid %d", s.UID)
		if o, ok := owners[s.Inode]; ok {
			d = o
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// udpSocket is one line of /proc/net/udp or /proc/net/udp6.
type udpSocket struct {
	Addr  netip.Addr
	Port  int
	UID   int
	Inode uint64
}

// procUDPSockets reads this network namespace's UDP sockets (IPv4 and IPv6).
func procUDPSockets() ([]udpSocket, error) {
	var all []udpSocket
	for i, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(name)
		if err != nil {
			if i > 0 {
				continue // IPv6 disabled
			}
			return nil, err
		}
		socks, err := parseProcNetUDP(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, socks...)
	}
	return all, nil
}

// parseProcNetUDP parses the Linux /proc/net/udp (or udp6) table:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//	 0: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 21765 ...
//
// Addresses are hex 32-bit words in host byte order, the port is hex.
func parseProcNetUDP(r io.Reader) ([]udpSocket, error) {
	sc := bufio.NewScanner(r)
	var out []udpSocket
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if strings.Contains(line, "local_address") {
				continue
			}
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("short line %q", line)
		}
		addr, port, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil {
			return nil, fmt.Errorf("line %q: uid: %w", line, err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %q: inode: %w", line, err)
		}
		out = append(out, udpSocket{Addr: addr, Port: port, UID: uid, Inode: inode})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseHexAddrPort parses "0100007F:14E9" (IPv4) or 32 hex digits and a
// port (IPv6).
func parseHexAddrPort(s string) (netip.Addr, int, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: port: %w", s, err)
	}
	if len(a) != 8 && len(a) != 32 {
		return netip.Addr{}, 0, fmt.Errorf("address %q: %d hex digits, want 8 or 32", s, len(a))
	}
	b := make([]byte, len(a)/2)
	for i := 0; i < len(a); i += 8 {
		w, err := strconv.ParseUint(a[i:i+8], 16, 32)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("address %q: %w", s, err)
		}
		binary.NativeEndian.PutUint32(b[i/2:], uint32(w))
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr.Unmap(), int(port), nil
}

// socketOwners maps socket inodes to "command (pid N)" by reading the
// processes' open files under procDir. Processes we may not inspect are
// left out.
func socketOwners(procDir string, inodes []uint64) map[uint64]string {
	want := map[uint64]bool{}
	for _, in := range inodes {
		want[in] = true
	}
	owners := map[uint64]string{}
	procs, err := os.ReadDir(procDir)
	if err != nil {
		return owners
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(procDir, p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(procDir, p.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			in, ok := socketInode(link)
			if !ok || !want[in] {
				continue
			}
			if _, done := owners[in]; done {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(procDir, p.Name(), "comm"))
			name := strings.TrimSpace(string(comm))
			if name == "" {
				name = "a program"
			}
			owners[in] = fmt.Sprintf("%s (pid %d)", name, pid)
		}
		if len(owners) == len(want) {
			break
		}
	}
	return owners
}

// socketInode parses a /proc/PID/fd link target "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
