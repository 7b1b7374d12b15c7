package discovery

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkLANTimes measures discovery and failover times with real mDNS
// between helper processes on a 3-host namespace LAN (see lan_test.go):
//
//	go test -run '^$' -bench BenchmarkLANTimes -benchtime 1x ./discovery/
//
// It is a measurement, not a timing test: it fails only when a helper
// process ends by itself or nothing converges within timingLimit. Each run
// (LANFT_TIMING_RUNS, default and minimum 5) starts three fresh processes,
// one per host, on the same LAN, and measures:
//
//   - listed: for each process, from its start to the moment it lists the
//     other two and they both list it; the run's figure is the largest of
//     the three (everyone lists everyone);
//   - host: from the first start to the moment all three agree on one host;
//   - failover: from killing the host's process (SIGKILL, no goodbye) to the
//     moment the two survivors list each other and no longer the dead one,
//     and agree on a new host. The kill comes 1-2 query intervals (at
//     random) after the agreement, so that it falls at any phase of the
//     survivors' queries, as a crash would.
//
// It prints each run and the median, min and max, and reports the medians
// as the metrics listed-ms, host-ms and failover-ms. The runs are set by
// LANFT_TIMING_RUNS, not by b.N.
func BenchmarkLANTimes(b *testing.B) {
	runs := 5
	if s := os.Getenv("LANFT_TIMING_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 5 {
			b.Fatalf("LANFT_TIMING_RUNS=%q: want a number of runs >= 5", s)
		}
		runs = n
	}
	c := newCluster(b, 3)
	out := os.Stdout // not b.Output, which a benchmark trims to 10 lines
	fmt.Fprintf(out, "3-host namespace LAN, %d runs (times in ms)\n", runs)
	fmt.Fprintf(out, "%-6s %8s %-17s %8s %6s %9s %8s\n", "run", "listed", "(each)", "host", "(host)", "failover", "(new)")
	var all []lanTimes
	for run := 1; run <= runs; run++ {
		r := measureLANRun(c, run)
		all = append(all, r)
		each := make([]string, len(r.each))
		for i, d := range r.each {
			each[i] = ms(d)
		}
		fmt.Fprintf(out, "%-6d %8s %-17s %8s %6s %9s %8s\n", run, ms(r.listed), strings.Join(each, " "), ms(r.host), r.hostID, ms(r.failover), r.newHostID)
	}

	listed := summary(all, func(r lanTimes) time.Duration { return r.listed })
	host := summary(all, func(r lanTimes) time.Duration { return r.host })
	failover := summary(all, func(r lanTimes) time.Duration { return r.failover })
	for _, row := range []struct {
		name string
		pick func(stats) time.Duration
	}{{"median", stats.median}, {"min", stats.min}, {"max", stats.max}} {
		fmt.Fprintf(out, "%-6s %8s %-17s %8s %6s %9s\n", row.name, ms(row.pick(listed)), "", ms(row.pick(host)), "", ms(row.pick(failover)))
	}
	b.ReportMetric(0, "ns/op") // the wall time of all runs means nothing
	b.ReportMetric(msFloat(listed.median()), "listed-ms")
	b.ReportMetric(msFloat(host.median()), "host-ms")
	b.ReportMetric(msFloat(failover.median()), "failover-ms")
}

// timingLimit is how long a run waits for convergence before failing.
const timingLimit = 30 * time.Second

// lanTimes is one run of BenchmarkLANTimes.
type lanTimes struct {
	each              []time.Duration // per process: start to mutually listed
	listed            time.Duration   // max of each
	host              time.Duration   // first start to one agreed host
	failover          time.Duration   // host killed to survivors agreed
	hostID, newHostID string
}

// measureLANRun starts one process per host of c's LAN with ids unique to
// the run, measures, and kills them all.
func measureLANRun(c *cluster, run int) lanTimes {
	c.t.Helper()
	n := c.lan.Len()
	ps := make([]*proc, n)
	started := make([]time.Time, n)
	begin := time.Now()
	for i := range ps {
		started[i] = time.Now()
		ps[i] = c.start(fmt.Sprintf("%c%d", 'a'+i, run), i+1, 8001+i)
	}
	defer func() {
		for _, p := range ps {
			c.kill(p) // again for the dead host: harmless
		}
	}()

	r := lanTimes{each: make([]time.Duration, n)}
	c.waitFor("everyone lists everyone", begin, timingLimit, func() bool {
		done := true
		for i, p := range ps {
			if r.each[i] == 0 && mutual(p, ps) {
				r.each[i] = time.Since(started[i])
			}
			done = done && r.each[i] != 0
		}
		return done
	}, ps...)
	r.listed = slices.Max(r.each)

	host, took := c.waitAgreed("one host", begin, timingLimit, ps...)
	r.host, r.hostID = took, host.id

	time.Sleep(DefaultQueryInterval + rand.N(DefaultQueryInterval))
	var rest []*proc
	for _, p := range ps {
		if p != host {
			rest = append(rest, p)
		}
	}
	killed := time.Now()
	c.kill(host)
	newHost, took := c.waitAgreed("failover after killing the host", killed, timingLimit, rest...)
	r.failover, r.newHostID = took, newHost.id
	return r
}

// mutual reports whether p lists every process of ps and each of them lists
// p. Call it with the cluster's mu held.
func mutual(p *proc, ps []*proc) bool {
	for _, q := range ps {
		if !lists(p.state, q.id) || !lists(q.state, p.id) {
			return false
		}
	}
	return true
}

func lists(st State, id string) bool {
	return slices.ContainsFunc(st.Peers, func(p Peer) bool { return p.ID == id })
}

// stats is a sorted list of durations.
type stats []time.Duration

func summary(runs []lanTimes, pick func(lanTimes) time.Duration) stats {
	s := make(stats, len(runs))
	for i, r := range runs {
		s[i] = pick(r)
	}
	slices.Sort(s)
	return s
}

func (s stats) min() time.Duration { return s[0] }
func (s stats) max() time.Duration { return s[len(s)-1] }

// median is the middle value, or the mean of the two middle ones.
func (s stats) median() time.Duration {
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func msFloat(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string { return strconv.FormatFloat(msFloat(d), 'f', 0, 64) }
