"""Process and machine measurements for the benchmark: the CPU time of a
server's whole process tree, its PSS, the machine's busy time, waiting for a
quiet machine, pinning, and starting/stopping processes by PID."""

import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_stat(pid):
    """(ppid, utime+stime, cutime+cstime, utime+cutime) in clock ticks, or
    None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name may contain spaces and ')': split after the last ')'.
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[1]), int(rest[11]) + int(rest[12]),
            int(rest[13]) + int(rest[14]), int(rest[11]) + int(rest[13]))


def all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def comm_cpu():
    """{pid: (name, own+reaped children's CPU ticks)} of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                s = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        out[int(name)] = (s[s.index("(") + 1:s.rindex(")")],
                          sum(int(x) for x in rest[11:15]))
    return out


def top_other(before, after, exclude, n=3):
    """The processes (outside exclude) that used the most CPU between two
    comm_cpu() snapshots, as "name:ms" strings."""
    by = {}
    for pid, (name, t) in after.items():
        if pid in exclude:
            continue
        d = t - before.get(pid, (name, 0))[1]
        if d > 0:
            by[name] = by.get(name, 0) + d
    top = sorted(by.items(), key=lambda x: -x[1])[:n]
    return ",".join("%s:%d" % (k, v * 1000 // CLK_TCK) for k, v in top)


def tree_pids(root, stats=None):
    """root and every descendant of it (by ppid), from one /proc scan."""
    if stats is None:
        stats = all_stats()
    if root not in stats:
        return []
    children = {}
    for pid, st in stats.items():
        children.setdefault(st[0], []).append(pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_cpu_ms(root):
    """CPU milliseconds of a process tree, counted so that deltas are exact
    even when processes come and go: every live process's own user+system
    time plus the time of the children it has reaped (cutime+cstime). A
    process that exits moves its whole time into its parent's cutime when
    it is reaped, so the sum only grows by CPU actually used. Postfix's
    master reaps every process it starts; Dovecot's master too; posternd is
    one process whose stat sums all its threads."""
    stats = all_stats()
    total = user = 0
    pids = tree_pids(root, stats)
    for pid in pids:
        st = stats.get(pid)
        if st is not None:
            total += st[1] + st[2]
            user += st[3]
    return total * 1000.0 / CLK_TCK, len(pids), user * 1000.0 / CLK_TCK


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def machine_cpu():
    """(busy ms over all CPUs, steal ms) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    busy = user + nice + system + irq + softirq
    return busy * 1000.0 / CLK_TCK, steal * 1000.0 / CLK_TCK


def cpu_user_ms():
    """User+nice milliseconds of each CPU since boot, from /proc/stat."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                x = line.split()
                out.append((int(x[1]) + int(x[2])) * 1000.0 / CLK_TCK)
    return out


def self_user_ms():
    t = os.times()
    return t.user * 1000.0


def self_cpu_ms():
    t = os.times()
    return (t.user + t.system) * 1000.0


def wait_quiet(max_wait, busy_limit=0.15, sample=0.5, log=None):
    """Waits (at most max_wait s) until the machine's busy time over a
    sample is below busy_limit of one CPU. Returns the last busy fraction."""
    end = time.monotonic() + max_wait
    frac = 0.0
    while True:
        b0, _ = machine_cpu()
        s0 = self_cpu_ms()
        time.sleep(sample)
        b1, _ = machine_cpu()
        s1 = self_cpu_ms()
        frac = max(0.0, (b1 - b0) - (s1 - s0)) / (sample * 1000.0)
        if frac < busy_limit or time.monotonic() > end:
            break
    if frac >= busy_limit and log:
        log("machine still busy (%.0f%% of a CPU) after %ds; going on"
            % (frac * 100, max_wait))
    return frac


def pin_to(cpus):
    """A preexec_fn that pins the child (and what it starts) to cpus."""
    def fn():
        if cpus:
            os.sched_setaffinity(0, cpus)
    return fn


def raise_nofile(want=32768):
    """Raises this process's fd limit to want (root may raise the hard
    limit too), or at least to the hard limit; children inherit it.
    Returns the new soft limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    target = want if hard == resource.RLIM_INFINITY else max(soft, min(want, hard))
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout, proc=None):
    """True once 127.0.0.1:port accepts a connection (and, for SMTP/POP3,
    the server has answered). False after timeout or if proc exited."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(3)
                if s.recv(512):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists": check its state.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_pids(pids, sig=signal.SIGTERM, wait=5.0):
    """Sends sig to each pid, waits for them, then SIGKILLs survivors."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    end = time.monotonic() + wait
    while time.monotonic() < end and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_children(procs, timeout):
    """Waits for every Popen in procs (bounded); returns (rusage CPU ms
    summed, of which user ms, last exit time, list of exit codes).
    Survivors are killed and get code None."""
    end = time.monotonic() + timeout
    cpu = user = 0.0
    last = time.monotonic()
    pending = {p.pid: p for p in procs}
    codes = {}
    while pending and time.monotonic() < end:
        for pid in list(pending):
            try:
                wpid, status, ru = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                codes[pid] = None
                del pending[pid]
                continue
            if wpid == 0:
                continue
            cpu += (ru.ru_utime + ru.ru_stime) * 1000.0
            user += ru.ru_utime * 1000.0
            codes[pid] = os.waitstatus_to_exitcode(status)
            pending[pid].returncode = codes[pid]
            last = time.monotonic()
            del pending[pid]
        if pending:
            time.sleep(0.005)
    for pid, p in pending.items():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        codes[pid] = None
    return cpu, user, last, [codes[p.pid] for p in procs]


def run_quiet(cmd, **kw):
    """Runs a setup command; returns CompletedProcess with text output."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)
