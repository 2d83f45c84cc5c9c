package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user plus system CPU seconds of pid, or 0 if it is
// gone or unreadable.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are at
	// 11 and 12.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

// peakRSS returns VmHWM of pid in bytes, or 0.
func peakRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procs returns the pids whose command line or comm name match.
func procs(match func(cmdline, comm string) bool) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		comm, _ := os.ReadFile(d + "/comm")
		if match(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), strings.TrimSpace(string(comm))) {
			out = append(out, pid)
		}
	}
	return out
}

// postgresCPU returns the CPU seconds of every PostgreSQL backend and
// auxiliary process ("postgres: ..." command lines) on the machine, by pid.
// A phase's share is pgDelta of two samples.
func postgresCPU() map[int]float64 {
	out := map[int]float64{}
	for _, pid := range procs(func(cmdline, _ string) bool { return strings.HasPrefix(cmdline, "postgres:") }) {
		out[pid] = procCPU(pid)
	}
	return out
}

// ownPostgresCPU returns the CPU seconds of the PostgreSQL backends
// connected to database name ("postgres: [<cluster>:] <user> <name>
// <client> ..."), by pid: the bench's own statements, without the server's
// shared processes (WAL writer, checkpointer, autovacuum) or other
// clients' backends.
func ownPostgresCPU(name string) map[int]float64 {
	out := map[int]float64{}
	for _, pid := range procs(func(cmdline, _ string) bool {
		f := strings.Fields(cmdline)
		return len(f) >= 4 && f[0] == "postgres:" && slices.Contains(f[2:4], name)
	}) {
		out[pid] = procCPU(pid)
	}
	return out
}

// pgDelta is the CPU the processes of b spent since a: a pid new in b
// counts whole, one gone from b (a backend that ended) is not seen. Other
// clients of a shared server are counted too.
func pgDelta(a, b map[int]float64) float64 {
	var sum float64
	for pid, v := range b {
		sum += max(0, v-a[pid])
	}
	return sum
}

// redisPids finds the redis-server processes serving port: their command
// line reads "redis-server 127.0.0.1:6379". Without a match, all of them.
func redisPids(port string) []int {
	all := procs(func(_, comm string) bool { return comm == "redis-server" })
	var match []int
	for _, pid := range all {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(cmdline), ":"+port) {
			match = append(match, pid)
		}
	}
	if len(match) > 0 {
		return match
	}
	return all
}

func sumCPU(pids []int) float64 {
	var sum float64
	for _, pid := range pids {
		sum += procCPU(pid)
	}
	return sum
}
