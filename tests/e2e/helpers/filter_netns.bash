# shellcheck shell=bash
# $output is set by bats' run.
# shellcheck disable=SC2154
# Real posternd instances behind the connection filter, for the suites that
# need clients which are not on loopback (loopback is always allow-listed):
# a server and a client network namespace joined by a veth pair, TEST-NET
# addresses only (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32). Each
# instance has its own config, data_dir and log under $FN_STATE/NAME, and its
# own pin_root, so an XDP and a user-space instance can run side by side on
# different ports. Typical use:
#   setup_file()    { _fn_setup_file pdr || return 1; [[ -n $FN_SKIP ]] && return 0
#                     _fn_instance xdp xdp 2525 ...; _fn_start xdp; }
#   teardown_file() { _fn_teardown_file; }
#   setup()         { _fn_skip_unless_ready; }
# Everything a suite creates (namespaces, veth, XDP links, pins, daemons)
# is removed by _fn_teardown_file; daemons are stopped by PID.

# For setup_file: checks that the machine can run the suite (root, the
# programs, a BPF load), then creates the namespaces and the veth pair.
# When it cannot, FN_SKIP says why (tests then skip) and it returns 0;
# it returns 1 when setting up failed.
# @param $1 a short tag for this suite's names (<= 4 characters)
_fn_setup_file() {
	local tag=$1 why i
	export FN_STATE="$BATS_FILE_TMPDIR" FN_SKIP=""
	export FN_NS_SRV="$tag-srv-$$" FN_NS_CLI="$tag-cli-$$"
	export FN_IF_SRV="${tag}s$$" FN_IF_CLI="${tag}c$$"
	export FN_PIN="/sys/fs/bpf/postern-test-$tag-$$"
	export FN_FILTERCTL="$REPO_ROOT/build/filterctl"
	if [[ $(id -u) -ne 0 ]]; then
		FN_SKIP="not root: network namespaces and XDP need root"
		return 0
	fi
	if [[ ! -x $POSTERND || ! -x $POSTERNCTL || ! -x $FN_FILTERCTL ]]; then
		FN_SKIP="build/posternd, posternctl or filterctl is missing (run make)"
		return 0
	fi
	if ! why=$("$FN_FILTERCTL" probe 2>&1); then
		FN_SKIP="this machine cannot load the XDP program: $why"
		return 0
	fi
	ip netns add "$FN_NS_SRV" || return 1
	ip netns add "$FN_NS_CLI" || return 1
	ip link add "$FN_IF_SRV" type veth peer name "$FN_IF_CLI" || return 1
	ip link set "$FN_IF_SRV" netns "$FN_NS_SRV"
	ip link set "$FN_IF_CLI" netns "$FN_NS_CLI"
	ip -n "$FN_NS_SRV" addr add 192.0.2.1/24 dev "$FN_IF_SRV"
	ip -n "$FN_NS_SRV" addr add 198.51.100.1/24 dev "$FN_IF_SRV"
	ip -n "$FN_NS_SRV" addr add 2001:db8::1/64 dev "$FN_IF_SRV" nodad
	ip -n "$FN_NS_SRV" addr add 2001:db8:1::1/64 dev "$FN_IF_SRV" nodad
	for i in $(seq 2 40); do
		ip -n "$FN_NS_CLI" addr add "192.0.2.$i/24" dev "$FN_IF_CLI"
		ip -n "$FN_NS_CLI" addr add "198.51.100.$i/24" dev "$FN_IF_CLI"
	done
	ip -n "$FN_NS_CLI" addr add 198.51.100.60/24 dev "$FN_IF_CLI"
	ip -n "$FN_NS_CLI" addr add 198.51.100.61/24 dev "$FN_IF_CLI"
	for i in 2 3 4 5; do
		ip -n "$FN_NS_CLI" addr add "2001:db8::$i/64" dev "$FN_IF_CLI" nodad
	done
	ip -n "$FN_NS_CLI" addr add 2001:db8:1::2/64 dev "$FN_IF_CLI" nodad
	ip -n "$FN_NS_SRV" link set lo up
	ip -n "$FN_NS_CLI" link set lo up
	ip -n "$FN_NS_SRV" link set "$FN_IF_SRV" up
	ip -n "$FN_NS_CLI" link set "$FN_IF_CLI" up
	# A certificate for STARTTLS (SMTP AUTH is refused without TLS off
	# loopback), valid for the run only.
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.example.test \
		-keyout "$FN_STATE/key.pem" -out "$FN_STATE/cert.pem" 2>/dev/null || return 1
}

# For setup(): skips the test when setup_file found the machine unfit.
# @param (none)
_fn_skip_unless_ready() {
	[[ -z ${FN_SKIP:-} ]] || skip "$FN_SKIP"
}

# For teardown_file: stops every instance (by PID), detaches and unpins
# the XDP filter, deletes the namespaces (and with them the veth pair).
# When a test failed, prints the end of each instance's log.
# @param (none)
_fn_teardown_file() {
	local d name
	[[ -n ${FN_NS_SRV:-} ]] || return 0
	for d in "$FN_STATE"/inst-*; do
		[[ -d $d ]] || continue
		name=${d##*/inst-}
		_fn_stop "$name" || true
		if [[ -e $FN_STATE/failed ]]; then
			{
				echo "posternd log of instance $name (last 80 lines):"
				tail -n 80 "$d/posternd.log"
			} | sed 's/^/# /' >&3
		fi
	done
	if [[ -d $FN_PIN ]]; then
		"$FN_FILTERCTL" --pin-root "$FN_PIN" uninstall >/dev/null 2>&1 || true
		rm -rf "$FN_PIN"
	fi
	ip netns del "$FN_NS_SRV" 2>/dev/null || true
	ip netns del "$FN_NS_CLI" 2>/dev/null || true
}

# For teardown(): marks the file as failed (logs are then printed).
# @param (none)
_fn_test_teardown() {
	if [[ -z ${BATS_TEST_COMPLETED:-} ]]; then
		touch "$FN_STATE/failed"
	fi
}

# Writes the config of an instance. Its SMTP port is PORT, submission
# PORT+62 (STARTTLS), POP3 PORT+1; all on every address of the server
# namespace, IPv4 and IPv6.
# @param $1 instance name
# @param $2 filter mode: xdp or userspace
# @param $3 SMTP port
# @param $@ extra lines "section.key=value" (a later one wins)
_fn_instance() {
	local name=$1 mode=$2 port=$3 kv section
	shift 3
	local dir="$FN_STATE/inst-$name"
	mkdir -p "$dir"
	local -A val=(
		[server.hostname]=mx.example.test
		[server.data_dir]="$dir/data"
		[server.worker_threads]=2
		[log.level]=debug
		[smtp.listen]="0.0.0.0:$port, [::]:$port"
		[submission.listen]="0.0.0.0:$((port + 62))"
		[pop3.listen]="0.0.0.0:$((port + 1)), [::]:$((port + 1))"
		[pop3.auth_fail_delay]=50
		[pop3.allow_plaintext_auth]=yes
		[auth.fail_delay]=50
		[tls.cert]="$FN_STATE/cert.pem"
		[tls.key]="$FN_STATE/key.pem"
		[filter.mode]="$mode"
		[filter.pin_root]="$FN_PIN-$name"
	)
	if [[ $mode == xdp ]]; then
		val[filter.interfaces]=$FN_IF_SRV
		val[filter.pin_root]=$FN_PIN
	fi
	for kv in "$@"; do
		val[${kv%%=*}]=${kv#*=}
	done
	{
		echo "# written by tests/e2e/helpers/filter_netns.bash"
		for section in server log smtp submission pop3 auth tls filter abuse; do
			echo "[$section]"
			for kv in "${!val[@]}"; do
				[[ $kv == "$section".* ]] || continue
				echo "${kv#*.} = ${val[$kv]}"
			done
			echo
		done
	} >"$dir/postern.conf"
	echo "$port" >"$dir/port"
}

# Prints the config path of an instance. @param $1 instance name
_fn_conf() {
	echo "$FN_STATE/inst-$1/postern.conf"
}

# Prints the log path of an instance. @param $1 instance name
_fn_log() {
	echo "$FN_STATE/inst-$1/posternd.log"
}

# Prints an instance's SMTP port. @param $1 instance name
_fn_port() {
	cat "$FN_STATE/inst-$1/port"
}

# Starts an instance's posternd in the server namespace (nsenter --net
# only: ip netns exec would remount /sys and hide the bpffs pins) and
# waits up to 20 s for "posternd started".
# @param $1 instance name
_fn_start() {
	local name=$1 dir="$FN_STATE/inst-$1" mark pid deadline=$((SECONDS + 20))
	touch "$dir/posternd.log"
	mark=$(($(wc -l <"$dir/posternd.log") + 1))
	# exec: $! is posternd's own PID. 3>&-: bats must not wait for it.
	(exec nsenter --net="/run/netns/$FN_NS_SRV" "$POSTERND" -c "$dir/postern.conf" -d \
		</dev/null >>"$dir/posternd.log" 2>&1 3>&-) &
	pid=$!
	echo "$pid" >"$dir/pid"
	until tail -n +"$mark" "$dir/posternd.log" | grep -q 'posternd started'; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			echo "posternd instance $name did not start; its log:" >&2
			tail -n +"$mark" "$dir/posternd.log" >&2
			return 1
		fi
		sleep 0.1
	done
}

# Stops an instance with SIGTERM (by PID) and waits up to 10 s.
# @param $1 instance name
_fn_stop() {
	local dir="$FN_STATE/inst-$1" pid deadline=$((SECONDS + 10))
	[[ -f $dir/pid ]] || return 0
	pid=$(cat "$dir/pid")
	rm -f "$dir/pid"
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null
			echo "posternd ($1, pid $pid) ignored SIGTERM for 10 s" >&2
			return 1
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# Sends SIGHUP to a running instance. @param $1 instance name
_fn_hup() {
	kill -HUP "$(cat "$FN_STATE/inst-$1/pid")"
}

# Runs posternctl on an instance's config, in the server namespace (the
# filter status names its interfaces).
# @param $1 instance name
# @param $@ posternctl arguments
_fn_ctl() {
	local name=$1
	shift
	nsenter --net="/run/netns/$FN_NS_SRV" "$POSTERNCTL" -c "$(_fn_conf "$name")" "$@"
}

# Opens connections at once from the client namespace and prints
# "ok=N rejected=N dropped=N refused=N other=N" (tools/conn_burst.py):
# ok = SMTP greeting, rejected = 421, dropped = SYN never answered.
# Bounded: at most 200 connections, 0.8 s, under timeout 10.
# @param $1 source address
# @param $2 destination address
# @param $3 port
# @param $4 count (default 1)
_fn_burst() {
	nsenter --net="/run/netns/$FN_NS_CLI" timeout 10 "$PY" "$TOOLS/conn_burst.py" \
		--src "$1" --dst "$2" --port "$3" --count "${4:-1}" --timeout 0.8
}

# Prints the value of key=N in $output. @param $1 key
_fn_field() {
	echo "$output" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1
}

# Prints the value of "key: V" in $output. @param $1 key
_fn_stat() {
	echo "$output" | sed -n "s/^$1: //p" | head -n1
}

# One POP3 session from a source: N times USER/PASS, then QUIT; prints the
# greeting and every reply, one a line, or "dropped" when the connection
# is not answered within 2 s. Bounded by timeout 30.
# @param $1 source address
# @param $2 destination address
# @param $3 port
# @param $4 user
# @param $5 password
# @param $6 attempts (default 1)
_fn_pop3_login() {
	nsenter --net="/run/netns/$FN_NS_CLI" timeout 30 "$PY" - "$@" <<'EOF'
import socket, sys
src, dst, port, user, pw = sys.argv[1:6]
n = int(sys.argv[6]) if len(sys.argv) > 6 else 1
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((src, 0))
s.settimeout(2)
try:
    s.connect((dst, int(port)))
except socket.timeout:
    print("dropped")
    sys.exit(0)
s.settimeout(10)
f = s.makefile("rb")
def line():
    l = f.readline().decode(errors="replace").rstrip("\r\n")
    print(l if l else "<EOF>")
    return l
if not line().startswith("+OK"):
    sys.exit(0)
for _ in range(n):
    s.sendall(b"USER " + user.encode() + b"\r\n")
    if not line().startswith("+OK"):
        break
    s.sendall(b"PASS " + pw.encode() + b"\r\n")
    if line().startswith("+OK"):
        break
s.sendall(b"QUIT\r\n")
line()
EOF
}

# One SMTP AUTH PLAIN attempt after STARTTLS on the submission port
# (swaks), from a source; prints swaks' transcript.
# @param $1 source address
# @param $2 destination address
# @param $3 submission port
# @param $4 user
# @param $5 password
_fn_smtp_auth() {
	nsenter --net="/run/netns/$FN_NS_CLI" timeout 20 swaks --server "$2" --port "$3" \
		--local-interface "$1" --ehlo client.example.test --tls \
		--auth PLAIN --auth-user "$4" --auth-password "$5" \
		--quit-after AUTH --timeout 5 2>&1
}

# Sends raw SMTP lines from a source and prints every reply line (or
# "dropped" / "<EOF>"). Each argument is one line sent after the previous
# reply; "DATA:text" sends text (\n and \r escapes allowed) as a message
# body without waiting in between; "NOW:line" sends a line before the
# greeting. Bounded by timeout 30.
# @param $1 source address
# @param $2 destination address
# @param $3 port
# @param $@ lines
_fn_smtp_raw() {
	nsenter --net="/run/netns/$FN_NS_CLI" timeout 30 "$PY" - "$@" <<'EOF'
import socket, sys
src, dst, port = sys.argv[1:4]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((src, 0))
s.settimeout(2)
try:
    s.connect((dst, int(port)))
except socket.timeout:
    print("dropped")
    sys.exit(0)
s.settimeout(10)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline().decode(errors="replace").rstrip("\r\n")
        if not l:
            print("<EOF>")
            return "<EOF>"
        print(l)
        if len(l) < 4 or l[3] != "-":
            return l
steps = sys.argv[4:]
if steps and steps[0].startswith("NOW:"):
    s.sendall(steps.pop(0)[4:].encode() + b"\r\n")
if reply() == "<EOF>" or not steps:
    sys.exit(0)
for st in steps:
    try:
        if st.startswith("DATA:"):
            body = st[5:].encode().decode("unicode_escape").encode("latin-1")
            s.sendall(body)
        else:
            s.sendall(st.encode() + b"\r\n")
        if reply().startswith(("421", "<EOF>")):
            break
    except OSError:
        print("<EOF>")
        break
EOF
}
