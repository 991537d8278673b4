# shellcheck shell=bash
# Shared by the outbound_*.bats files: a local DNS server (dnsmasq on
# 127.0.0.1) whose MX records point at 127.0.0.x, aiosmtpd sinks playing the
# remote MXs (tools/sink_smtp.py), and a test daemon whose config has the
# [queue] and [dns] sections pointing at them. Load after helpers/common and
# helpers/daemon:
#   load helpers/common
#   load helpers/daemon
#   load tools/outbound
# Every process started here is recorded in $BATS_FILE_TMPDIR/pids/ and
# stopped by PID in _outbound_teardown_file.

# The DNS data every outbound test file gets (dnsmasq options).
#   remote.test    MX 10 mx.remote.test  -> 127.0.0.2 (the main sink)
#   down.test      MX 10 mx.down.test    -> 127.0.0.3 (nothing, until a
#                                           test starts a sink there)
#   plain.test     no MX, A 127.0.0.5     (implicit MX, RFC 5321 §5.1)
#   tls.test       MX 10 mx.tls.test     -> 127.0.0.6 (a sink with STARTTLS)
#   relay.test     A 127.0.0.4            (the relay host)
#   nullmx.test    MX 0 "."               (RFC 7505)
#   anything else under .test: NXDOMAIN
__outbound_dns_args() {
	cat <<EOF
--mx-host=remote.test,mx.remote.test,10
--host-record=mx.remote.test,127.0.0.2
--mx-host=down.test,mx.down.test,10
--host-record=mx.down.test,127.0.0.3
--host-record=plain.test,127.0.0.5
--mx-host=tls.test,mx.tls.test,10
--host-record=mx.tls.test,127.0.0.6
--host-record=relay.test,127.0.0.4
--dns-rr=nullmx.test,15,000000
EOF
}

# Starts a background process, remembering its PID under a name.
# @param $1 name
# @param $@ command
__outbound_spawn() {
	local name=$1
	shift
	mkdir -p "$BATS_FILE_TMPDIR/pids"
	# fd 3 must not stay open, or bats waits for the process forever.
	"$@" </dev/null >>"$BATS_FILE_TMPDIR/$name.log" 2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/pids/$name.pid"
}

# Stops a process started by __outbound_spawn (SIGTERM, then SIGKILL).
# @param $1 name
_outbound_stop() {
	local f="$BATS_FILE_TMPDIR/pids/$1.pid" pid deadline=$((SECONDS + 10))
	[[ -f $f ]] || return 0
	pid=$(cat "$f")
	rm -f "$f"
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# Starts dnsmasq on 127.0.0.1:$DNS_PORT with the records above.
_dns_start() {
	local -a extra
	mapfile -t extra < <(__outbound_dns_args)
	__outbound_spawn dnsmasq dnsmasq --keep-in-foreground --no-resolv \
		--no-hosts --no-poll --bind-interfaces \
		--listen-address=127.0.0.1 --port="$DNS_PORT" \
		--user=root --group=root --pid-file= --conf-file=/dev/null \
		--log-facility=- --local=/test/ "${extra[@]}"
	_repeat_until_timeout 10 __dns_ready || {
		cat "$BATS_FILE_TMPDIR/dnsmasq.log" >&2
		return 1
	}
}

# Succeeds once dnsmasq answers an A query for mx.remote.test.
__dns_ready() {
	"$PY" - "$DNS_PORT" <<'EOF'
import socket, struct, sys
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p for p in (b"mx", b"remote", b"test"))
q += b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
try:
    s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
    s.recv(512)
except OSError:
    sys.exit(1)
EOF
}

# Starts a sink (tools/sink_smtp.py) on HOST:$MX_PORT (or another port);
# its messages go to $BATS_FILE_TMPDIR/sink-NAME/.
# @param $1 name (also the directory suffix)
# @param $2 host (127.0.0.x)
# @param $@ more sink_smtp.py options (--port P overrides $MX_PORT)
_sink_start() {
	local name=$1 host=$2 dir port=$MX_PORT
	shift 2
	dir="$BATS_FILE_TMPDIR/sink-$name"
	mkdir -p "$dir"
	rm -f "$dir/ready"
	if [[ ${1:-} == --port ]]; then
		port=$2
		shift 2
	fi
	__outbound_spawn "sink-$name" "$PY" "$TOOLS/sink_smtp.py" \
		--host "$host" --port "$port" --dir "$dir" "$@"
	_repeat_until_timeout 15 test -e "$dir/ready" || {
		cat "$BATS_FILE_TMPDIR/sink-$name.log" >&2
		return 1
	}
}

# Stops a sink.
# @param $1 name
_sink_stop() {
	_outbound_stop "sink-$1"
}

# Prints the directory of a sink.
# @param $1 name
_sink_dir() {
	echo "$BATS_FILE_TMPDIR/sink-$1"
}

# Prints how many messages a sink has stored.
# @param $1 name
_sink_count() {
	find "$(_sink_dir "$1")" -maxdepth 1 -name 'msg-*.eml' | wc -l
}

# Waits until a sink holds at least N messages.
# @param $1 name
# @param $2 N
# @param $3 timeout in seconds (default 30)
_sink_wait() {
	_repeat_until_timeout "${3:-30}" __sink_has "$1" "$2"
}

__sink_has() {
	(($(_sink_count "$1") >= $2))
}

# Sets a sink's mode (accept, reject, tempfail:N) without a restart.
# @param $1 name
# @param $2 mode
_sink_mode() {
	echo "$2" >"$(_sink_dir "$1")/mode"
}

# Prints how many messages are in the outbound queue (.env files).
_queue_count() {
	find "$DATA_DIR/queue" -maxdepth 1 -name '*.env' 2>/dev/null | wc -l
}

# Waits until the queue holds exactly N messages.
# @param $1 N
# @param $2 timeout in seconds (default 30)
_queue_wait_count() {
	_repeat_until_timeout "${2:-30}" __queue_has "$1"
}

__queue_has() {
	(($(_queue_count) == $1))
}

# Waits until the daemon log (since this test began) contains a string.
# @param $1 string
# @param $2 timeout in seconds (default 30)
_log_wait() {
	_repeat_until_timeout "${2:-30}" __log_has "$1"
}

__log_has() {
	_log_since_test_start | grep -qF -- "$1"
}

# Waits until an address has N messages in new/ and prints the newest.
# @param $1 address
# @param $2 N (default 1)
# @param $3 timeout (default 30)
_mail_wait() {
	_repeat_until_timeout "${3:-30}" __mail_has "$1" "${2:-1}" || return 1
	find "$(_maildir_of "$1")/new" -maxdepth 1 -type f -printf '%T@ %p\n' |
		sort -n | tail -1 | cut -d' ' -f2-
}

__mail_has() {
	(($(_count_new "$1") >= $2))
}

# Sends a message with tools/send_mail.py to the test daemon.
# @param $@ send_mail.py options (--from, --to, --rcpt-opt ...)
_send() {
	"$PY" "$TOOLS/send_mail.py" --port "$SMTP_PORT" "$@"
}

# Writes the test daemon's config (helpers/daemon.bash) plus the outbound
# sections: a short retry schedule and the local DNS server. Whole extra
# "[section]" blocks come from $OUTBOUND_EXTRA_CONFIG (@MX_PORT@ is
# replaced); $OUTBOUND_MAX_LIFETIME sets [queue] max_lifetime.
# @param $@ overrides for _daemon_write_config
_outbound_write_config() {
	_daemon_write_config "$@"
	cat >>"$CONFIG" <<EOF
[queue]
min_backoff = 1
max_backoff = 2
max_lifetime = ${OUTBOUND_MAX_LIFETIME:-3600}
destination_port = $MX_PORT
connect_timeout = 5
command_timeout = 15
data_timeout = 15

[dns]
servers = 127.0.0.1:$DNS_PORT

EOF
	if [[ -n ${OUTBOUND_EXTRA_CONFIG:-} ]]; then
		printf '%s\n' "${OUTBOUND_EXTRA_CONFIG//@MX_PORT@/$MX_PORT}" \
			>>"$CONFIG"
	fi
}

# For setup(): skips the test when setup_file found no outbound queue in
# posternd, else marks the log (helpers/daemon.bash _test_setup).
_outbound_setup() {
	if [[ -n ${OUTBOUND_SKIP:-} ]]; then
		skip "$OUTBOUND_SKIP"
	fi
	_test_setup
}

# For setup_file: ports, DNS, the main sink (remote.test at 127.0.0.2) and
# the daemon with example.test, the local mailbox sender@example.test
# (password "secret") and aliases that forward outside. When posternd has
# no outbound queue, sets $OUTBOUND_SKIP and does nothing else: callers
# return at once when it is set, and setup() uses _outbound_setup.
# @param $@ overrides for _daemon_write_config
_outbound_setup_file() {
	if ! command -v dnsmasq >/dev/null ||
		! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
		echo "dnsmasq and python3-aiosmtpd are needed" >&2
		return 1
	fi
	if [[ ! -x $POSTERND || ! -x $POSTERNCTL ]]; then
		echo "build/posternd and build/posternctl are missing" >&2
		return 1
	fi
	# bats 1.8 cannot skip from setup_file: _outbound_setup skips each
	# test instead.
	if ! __outbound_integrated; then
		export OUTBOUND_SKIP="posternd has no outbound queue yet ([dns] \
and [queue] are unknown configuration sections)"
		return 0
	fi
	export DATA_DIR="$BATS_FILE_TMPDIR/data"
	export CONFIG="$BATS_FILE_TMPDIR/postern.conf"
	export DAEMON_LOG="$BATS_FILE_TMPDIR/posternd.log"
	local ports
	read -r SMTP_PORT POP3_PORT DNS_PORT MX_PORT <<<"$(_free_ports 4)"
	export SMTP_PORT POP3_PORT DNS_PORT MX_PORT
	_dns_start || return 1
	_sink_start remote 127.0.0.2 || return 1
	_outbound_write_config "$@"
	_daemon_start || return 1
	_add_domain example.test || return 1
	_add_mailbox sender@example.test secret || return 1
	_add_alias fwd-ok@example.test bob@remote.test || return 1
	_add_alias fwd-multi@example.test a@remote.test b@remote.test \
		c@remote.test || return 1
	_add_alias fwd-reject@example.test reject1@remote.test || return 1
	_add_alias fwd-mixed@example.test ok1@remote.test \
		reject2@remote.test || return 1
	_add_alias fwd-defer@example.test defer1@remote.test || return 1
	_add_alias fwd-nullmx@example.test x@nullmx.test || return 1
	_add_alias fwd-nx@example.test x@nx.test || return 1
	_add_alias fwd-down@example.test y@down.test || return 1
	_add_alias fwd-plain@example.test z@plain.test || return 1
	_add_alias fwd-tls@example.test t@tls.test || return 1
}

# Succeeds when posternd knows the outbound queue's configuration sections.
__outbound_integrated() {
	local conf="$BATS_FILE_TMPDIR/queue-probe.conf"
	printf '[dns]\nservers = 127.0.0.1:53\n[queue]\nmin_backoff = 1\n' \
		>"$conf"
	"$POSTERND" --check-config -c "$conf" >/dev/null 2>&1
}

# For teardown_file: the daemon, then every sink and dnsmasq.
_outbound_teardown_file() {
	local status=0 f
	_daemon_teardown_file || status=1
	for f in "$BATS_FILE_TMPDIR"/pids/*.pid; do
		[[ -e $f ]] || continue
		_outbound_stop "$(basename "$f" .pid)"
	done
	return "$status"
}

# Fetches the newest message of sender@example.test over POP3 into a file
# and prints the file name.
# @param $1 output file
_pop3_fetch_newest() {
	local n
	n=$("$PY" "$TOOLS/pop3_fetch.py" --port "$POP3_PORT" \
		--user sender@example.test --password secret stat |
		awk 'NR == 1 {print $1}')
	"$PY" "$TOOLS/pop3_fetch.py" --port "$POP3_PORT" \
		--user sender@example.test --password secret "retr:$n:$1" \
		>/dev/null || return 1
	echo "$1"
}

# Runs tools/dsn_check.py on a file and fails unless it parses.
# @param $1 file
_dsn_fields() {
	"$PY" "$TOOLS/dsn_check.py" "$1"
}
