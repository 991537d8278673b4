"""The three servers the benchmark runs, each on loopback and unprivileged
ports, with its own configuration under the benchmark's temporary directory
(nothing under /etc is read or written), started fresh for every run with
fresh mail directories, and stopped by PID:

  Postfix  postfix -c ETC start; smtpd on 127.0.0.1:PORT; virtual(8) into
           Maildir at RUN/mail/<domain>/<user>/ with default durability.
  Dovecot  dovecot -F -c CONF; POP3 on 127.0.0.1:PORT over RUN/mail with a
           passwd-file whose hashes are yescrypt like Postern's.
  Postern  build/posternd -c CONF; SMTP and POP3 on 127.0.0.1, data_dir in
           RUN/data, accounts made once with build/posternctl.
"""

import ctypes
import os
import shutil
import signal
import subprocess
import time

import bench_proc as bp

DOMAIN = "bench.test"
NOBODY = 65534          # owner of the peers' mail (virtual(8), Dovecot)


def user_name(i):
    return "user%d" % i


def yescrypt_hash(password):
    """A "$y$" hash with libcrypt's default cost, as posternctl makes."""
    lc = ctypes.CDLL("libcrypt.so.1")
    lc.crypt_gensalt.restype = ctypes.c_char_p
    lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                 ctypes.c_char_p, ctypes.c_int]
    lc.crypt.restype = ctypes.c_char_p
    lc.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lc.crypt_gensalt(b"$y$", 0, None, 0)
    return lc.crypt(password.encode(), salt).decode()


def count_delivered(mail_root):
    """Files in every <mail_root>/<domain>/<user>/new/."""
    n = 0
    droot = os.path.join(mail_root, DOMAIN)
    try:
        users = os.listdir(droot)
    except OSError:
        return 0
    for u in users:
        try:
            with os.scandir(os.path.join(droot, u, "new")) as it:
                for _ in it:
                    n += 1
        except OSError:
            pass
    return n


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Server:
    """What the driver needs from each server."""
    name = "?"
    root = None            # PID whose process tree is the server
    rundir = None

    def start(self, rundir):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def mail_root(self):
        raise NotImplementedError

    def alive(self):
        return self.root is not None and bp.pid_alive(self.root)

    def cpu_ms(self):
        """(CPU ms, processes, user CPU ms) of the server's tree."""
        return bp.tree_cpu_ms(self.root)

    def pss_kib(self):
        pids = bp.tree_pids(self.root)
        return bp.pss_kib(pids), len(pids)

    def log_tail(self):
        return ""


class Postfix(Server):
    name = "postfix"

    def __init__(self, base, mailboxes, cpus):
        self.base = base
        self.cpus = cpus
        self.etc = os.path.join(base, "postfix-etc")
        os.makedirs(self.etc)
        self.port = bp.free_port()
        with open("/etc/postfix/master.cf") as f:
            master = f.read().splitlines()
        out = []
        for line in master:
            fields = line.split()
            if line.startswith("smtp ") and len(fields) > 1 and fields[1] == "inet":
                line = "127.0.0.1:%d inet n - n - - smtpd" % self.port
            elif fields and not line[0].isspace() and not line.startswith("#") \
                    and len(fields) >= 8 and fields[4] == "y":
                # No chroot: the Debian init script would copy /etc files
                # into the queue for it, which this private instance lacks.
                fields[4] = "n"
                line = " ".join(fields)
            out.append(line)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("\n".join(out) + "\n")
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            for i in range(1, mailboxes + 1):
                f.write("%s@%s %s/%s/\n" % (user_name(i), DOMAIN, DOMAIN,
                                            user_name(i)))

    def _postfix(self, *args, timeout=60):
        return subprocess.run(["postfix", "-c", self.etc] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout,
                              preexec_fn=bp.pin_to(self.cpus))

    def start(self, rundir):
        self.rundir = rundir
        self.root = None
        queue = os.path.join(rundir, "queue")
        data = os.path.join(rundir, "data")
        mail = os.path.join(rundir, "mail")
        for d in (queue, data, mail):
            os.makedirs(d)
        os.chown(data, bp_uid("postfix"), -1)
        os.chown(mail, NOBODY, NOBODY)
        self.log = os.path.join(rundir, "postfix.log")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN_CF.format(
                queue=queue, data=data, mail=mail, etc=self.etc,
                log=self.log, base=self.base))
        # "check" creates the queue directories with their owners.
        r = self._postfix("check")
        r2 = self._postfix("start")
        if r2.returncode != 0:
            raise RuntimeError("postfix start failed: %s%s\n%s"
                               % (r.stdout, r2.stdout, tail(self.log)))
        pidfile = os.path.join(queue, "pid", "master.pid")
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                with open(pidfile) as f:
                    self.root = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if self.root is None or not bp.wait_port(self.port, 20):
            raise RuntimeError("postfix did not come up:\n" + tail(self.log))

    def stop(self):
        if self.root is None:
            return
        pids = bp.tree_pids(self.root)
        try:
            self._postfix("stop", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        # Whatever "postfix stop" left (it should leave nothing).
        left = [p for p in pids if bp.pid_alive(p)]
        if left:
            bp.kill_pids(left)
        self.root = None

    def mail_root(self):
        return os.path.join(self.rundir, "mail")

    def log_tail(self):
        return tail(self.log)


POSTFIX_MAIN_CF = """\
# A private Postfix instance for the benchmark: Debian's defaults, plus what
# it takes to run beside the system (own directories, loopback port) and to
# deliver the benchmark's domain with virtual(8) into Maildir.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
myhostname = bench-postfix.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = $myhostname ESMTP
maillog_file = {log}
maillog_file_prefixes = {base}
virtual_mailbox_domains = bench.test
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
"""


def bp_uid(user):
    import pwd
    return pwd.getpwnam(user).pw_uid


class Dovecot(Server):
    name = "dovecot"

    def __init__(self, base, mailboxes, password, cpus):
        self.base = base
        self.cpus = cpus
        self.etc = os.path.join(base, "dovecot-etc")
        os.makedirs(self.etc)
        self.port = self.pop3_port = bp.free_port()
        self.proc = None
        self.users = os.path.join(self.etc, "users")
        # Dovecot verifies the same kind of hash as Postern (yescrypt at
        # libcrypt's default cost), so that a login costs both the same.
        h = yescrypt_hash(password)
        with open(self.users, "w") as f:
            for i in range(1, mailboxes + 1):
                f.write("%s@%s:{CRYPT}%s:%d:%d::/nonexistent::\n"
                        % (user_name(i), DOMAIN, h, NOBODY, NOBODY))
        os.chmod(self.users, 0o644)

    def start(self, rundir):
        self.rundir = rundir
        mail = os.path.join(rundir, "mail")
        os.makedirs(mail, exist_ok=True)
        os.chown(mail, NOBODY, NOBODY)
        run = os.path.join(rundir, "dovecot-run")
        state = os.path.join(rundir, "dovecot-state")
        for d in (run, state):
            os.makedirs(d)
        self.log = os.path.join(rundir, "dovecot.log")
        conf = os.path.join(rundir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF.format(run=run, state=state, log=self.log,
                                        mail=mail, users=self.users,
                                        port=self.port))
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", conf], stdin=subprocess.DEVNULL,
            stdout=open(self.log + ".stdout", "w"), stderr=subprocess.STDOUT,
            preexec_fn=bp.pin_to(self.cpus), start_new_session=True)
        self.root = self.proc.pid
        if not bp.wait_port(self.port, 20, self.proc):
            self.stop()
            raise RuntimeError("dovecot did not come up:\n" + tail(self.log)
                               + tail(self.log + ".stdout"))

    def stop(self):
        if self.proc is None:
            return
        pids = bp.tree_pids(self.root)
        bp.kill_pids([self.root], signal.SIGTERM, wait=10)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        left = [p for p in pids if bp.pid_alive(p)]
        if left:
            bp.kill_pids(left)
        self.proc = None
        self.root = None

    def mail_root(self):
        return os.path.join(self.rundir, "mail")

    def log_tail(self):
        return tail(self.log)


DOVECOT_CONF = """\
# A private Dovecot instance for the benchmark: Dovecot's defaults (one
# pop3-login process per connection, no auth cache), POP3 only, plaintext
# logins on loopback, passwd-file accounts, Maildir.
base_dir = {run}
state_dir = {state}
log_path = {log}
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{mail}/%d/%n
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


class Postern(Server):
    name = "postern"

    def __init__(self, base, bindir, mailboxes, password, cpus, debug=False,
                 durability=None):
        self.base = base
        self.cpus = cpus
        self.posternd = os.path.join(bindir, "posternd")
        self.posternctl = os.path.join(bindir, "posternctl")
        self.smtp_port = bp.free_port()
        self.pop3_port = bp.free_port()
        self.port = self.smtp_port
        self.proc = None
        self.debug = debug
        self.durability = durability
        # Accounts are made once, in a template data_dir whose files are
        # copied into each run's fresh data_dir.
        self.template = os.path.join(base, "postern-template")
        conf = self._write_conf(os.path.join(base, "postern-template.conf"),
                                self.template)
        self._ctl(conf, ["domain", "add", DOMAIN])
        for i in range(1, mailboxes + 1):
            self._ctl(conf, ["mailbox", "add", "%s@%s" % (user_name(i), DOMAIN)],
                      stdin=password + "\n")

    def _ctl(self, conf, args, stdin=None):
        r = subprocess.run([self.posternctl, "-c", conf] + args, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("posternctl %s failed (%d): %s"
                               % (" ".join(args), r.returncode, r.stdout))

    def _write_conf(self, path, data_dir):
        with open(path, "w") as f:
            f.write(POSTERN_CONF.format(
                data=data_dir, smtp=self.smtp_port, pop3=self.pop3_port,
                level="debug" if self.debug else "info",
                durability=("durability = %s\n" % self.durability
                            if self.durability else "")))
        return path

    def start(self, rundir):
        self.rundir = rundir
        data = os.path.join(rundir, "data")
        os.makedirs(data, exist_ok=True)
        for name in os.listdir(self.template):
            src = os.path.join(self.template, name)
            if os.path.isfile(src):
                shutil.copy2(src, os.path.join(data, name))
        conf = self._write_conf(os.path.join(rundir, "postern.conf"), data)
        self.conf = conf
        self.log = os.path.join(rundir, "posternd.log")
        self.cmd = [self.posternd, "-c", conf]
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT, preexec_fn=bp.pin_to(self.cpus),
            start_new_session=True)
        self.root = self.proc.pid
        if not (bp.wait_port(self.smtp_port, 20, self.proc)
                and bp.wait_port(self.pop3_port, 20, self.proc)):
            code = self.proc.poll()
            self.stop()
            raise RuntimeError("posternd did not come up (exit %s):\n%s"
                               % (code, tail(self.log)))

    def exit_status(self):
        """None while running, else the exit code (negative: signal)."""
        return None if self.proc is None else self.proc.poll()

    def stop(self):
        if self.proc is None:
            return
        self.stopped_with = self.proc.poll()
        if self.stopped_with is None:
            bp.kill_pids([self.root], signal.SIGTERM, wait=10)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        self.root = None

    def mail_root(self):
        return os.path.join(self.rundir, "data", "mail")

    def log_tail(self):
        return tail(self.log)


POSTERN_CONF = """\
# posternd for the benchmark: loopback ports, data in the run's directory,
# connection limits above the 10,000 idle connections the benchmark opens.
[server]
hostname = bench-postern.localdomain
data_dir = {data}
max_connections = 20000
max_connections_per_ip = 20000
{durability}
[log]
level = {level}

[smtp]
listen = 127.0.0.1:{smtp}

[pop3]
listen = 127.0.0.1:{pop3}
auth_fail_delay = 0
# Plaintext USER/PASS on loopback, as Dovecot allows there: no TLS in the
# benchmark.
allow_plaintext_auth = yes
"""


def populate(mail_root, mailboxes, per_box, body_size, uid=None):
    """Writes per_box messages into each <mail_root>/bench.test/userN/new/,
    the same bytes and names for every server: LF line ends, Dovecot-style
    names with S= (size on disk) and W= (size with CRLF). Returns (files,
    bytes on disk)."""
    line = "x" * 78 + "\n"
    body = (line * (body_size // len(line) + 1))[:body_size - 1] + "\n"
    files = total = 0
    t = int(time.time())
    for b in range(1, mailboxes + 1):
        d = os.path.join(mail_root, DOMAIN, user_name(b))
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for m in range(1, per_box + 1):
            head = ("Return-Path: <sender@client.test>\n"
                    "Received: from client.test (localhost [127.0.0.1])\n"
                    "\tby bench.localdomain with ESMTP id %08X%08X\n"
                    "\tfor <%s@%s>; Mon, 1 Jan 2024 00:00:00 +0000\n"
                    "From: <sender@client.test>\n"
                    "To: <%s@%s>\n"
                    "Subject: pop3 bench %d.%d\n"
                    "Message-ID: <%d.%d@client.test>\n"
                    "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
                    "\n" % (b, m, user_name(b), DOMAIN, user_name(b), DOMAIN,
                            b, m, b, m))
            data = (head + body).encode()
            size, crlf = len(data), len(data) + data.count(b"\n")
            name = "%d.M%06dP%dQ%d.bench,S=%d,W=%d" % (t, m, b, m, size, crlf)
            with open(os.path.join(d, "new", name), "wb") as f:
                f.write(data)
            files += 1
            total += size
        if uid is not None:
            for root, dirs, fnames in os.walk(d):
                os.chown(root, uid, uid)
                for fn in fnames:
                    os.chown(os.path.join(root, fn), uid, uid)
    if uid is not None:
        for p in (mail_root, os.path.join(mail_root, DOMAIN)):
            os.chown(p, uid, uid)
    return files, total


def make_maildirs(mail_root, mailboxes, uid=None):
    """Empty maildirs (for the login-cost pass)."""
    populate(mail_root, mailboxes, 0, 1, uid)
