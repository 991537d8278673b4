# shellcheck shell=bash
# Starts and stops one real posternd per .bats file, on free loopback ports,
# with its config, data and log under $BATS_FILE_TMPDIR; plus posternctl
# wrappers to create the accounts a file needs. Typical use:
#   setup_file()    { _daemon_setup_file smtp.max_recipients=5; _add_domain example.test; }
#   teardown_file() { _daemon_teardown_file; }
#   setup()         { _test_setup; }
#   teardown()      { _test_teardown; }

# The settings every test daemon starts from, one "section.key=value" a line.
# auth_fail_delay is short so that failed-login tests stay fast.
# @param (none)
__config_defaults() {
	cat <<EOF
server.hostname=mx.example.test
server.data_dir=$DATA_DIR
server.max_connections=100
server.max_connections_per_ip=50
server.worker_threads=2
log.level=debug
smtp.listen=127.0.0.1:$SMTP_PORT
smtp.max_message_size=20M
smtp.idle_timeout=60
smtp.data_timeout=60
pop3.listen=127.0.0.1:$POP3_PORT
pop3.idle_timeout=60
pop3.auth_fail_delay=100
pop3.allow_plaintext_auth=yes
EOF
}

# Writes $CONFIG from the defaults above with overrides applied; an override
# may also name a section not listed below. In values, @SMTP_PORT@ and
# @POP3_PORT@ stand for the file's ports.
# @param $@ overrides "section.key=value"; a bare "section.key" removes it
_daemon_write_config() {
	local -A val=()
	local -a order=()
	local kv key section
	while IFS= read -r kv; do
		key=${kv%%=*}
		order+=("$key")
		val[$key]=${kv#*=}
	done < <(__config_defaults)
	for kv in "$@"; do
		key=${kv%%=*}
		if [[ $kv != *=* ]]; then
			unset "val[$key]"
			continue
		fi
		[[ " ${order[*]} " == *" $key "* ]] || order+=("$key")
		val[$key]=${kv#*=}
		val[$key]=${val[$key]//@SMTP_PORT@/$SMTP_PORT}
		val[$key]=${val[$key]//@POP3_PORT@/$POP3_PORT}
	done
	# the usual order first, then any other section an override names; a
	# section with no key is left out (a daemon without it would refuse it)
	local -a sections=(server log smtp submission submissions pop3 pop3s tls auth
		filter abuse queue dns relay)
	local body
	for key in "${order[@]}"; do
		section=${key%%.*}
		[[ " ${sections[*]} " == *" $section "* ]] || sections+=("$section")
	done
	{
		echo "# written by tests/e2e/helpers/daemon.bash"
		for section in "${sections[@]}"; do
			body=""
			for key in "${order[@]}"; do
				[[ $key == "$section".* && -v "val[$key]" ]] || continue
				body+="${key#*.} = ${val[$key]}"$'\n'
			done
			[[ -n $body ]] || continue
			printf '[%s]\n%s\n' "$section" "$body"
		done
	} >"$CONFIG"
}

# For setup_file: picks ports, writes the config and starts the daemon.
# Exports DATA_DIR, CONFIG, DAEMON_LOG, SMTP_PORT, POP3_PORT for the tests.
# @param $@ config overrides "section.key=value" (see _daemon_write_config)
_daemon_setup_file() {
	if [[ ! -x $POSTERND || ! -x $POSTERNCTL ]]; then
		echo "build/posternd and build/posternctl are missing: run make" >&2
		return 1
	fi
	export DATA_DIR="$BATS_FILE_TMPDIR/data"
	export CONFIG="$BATS_FILE_TMPDIR/postern.conf"
	export DAEMON_LOG="$BATS_FILE_TMPDIR/posternd.log"
	local ports
	ports=$(_free_ports 2)
	export SMTP_PORT=${ports% *}
	export POP3_PORT=${ports#* }
	_daemon_write_config "$@"
	_daemon_start
}

# Starts posternd in the background on $CONFIG and waits (up to 20 s) until
# it listens. Its PID goes to $BATS_FILE_TMPDIR/posternd.pid so that any
# later test or teardown_file can stop it.
# @param (none)
_daemon_start() {
	local mark pid deadline=$((SECONDS + 20))
	echo "=== test harness: starting posternd $(date +%T)" >>"$DAEMON_LOG"
	mark=$(wc -l <"$DAEMON_LOG")
	# fd 3 must not stay open in the daemon, or bats waits for it forever.
	"$POSTERND" -c "$CONFIG" -d </dev/null >>"$DAEMON_LOG" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$BATS_FILE_TMPDIR/posternd.pid"
	while ! __daemon_ready "$mark"; do
		if ! __pid_alive "$pid"; then
			echo "posternd exited during start-up; its log:" >&2
			tail -n +"$mark" "$DAEMON_LOG" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "posternd did not start listening within 20 s; its log:" >&2
			tail -n +"$mark" "$DAEMON_LOG" >&2
			return 1
		fi
		sleep 0.1
	done
}

# Succeeds once the daemon has logged that both listeners are up (the
# interface promises "listening smtp on ..." and "listening pop3 on ...").
# @param $1 log line number where this start began
__daemon_ready() {
	local since
	since=$(tail -n +"$1" "$DAEMON_LOG")
	[[ $since == *"listening smtp on"* && $since == *"listening pop3 on"* ]]
}

# Succeeds while a process exists and is not a zombie.
# @param $1 pid
__pid_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null)
	[[ -n $state && $state != Z ]]
}

# Prints the PID of the running test daemon.
# @param (none)
_daemon_pid() {
	cat "$BATS_FILE_TMPDIR/posternd.pid"
}

# Stops the daemon with SIGTERM (the interface says that stops it cleanly)
# and waits up to 10 s; falls back to SIGKILL and then fails, because a
# daemon that ignores SIGTERM is a bug.
# @param (none)
_daemon_stop() {
	local pid deadline=$((SECONDS + 10))
	[[ -f $BATS_FILE_TMPDIR/posternd.pid ]] || return 0
	pid=$(_daemon_pid)
	rm -f "$BATS_FILE_TMPDIR/posternd.pid"
	__pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	while __pid_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null
			echo "posternd (pid $pid) did not stop within 10 s of SIGTERM" >&2
			return 1
		fi
		sleep 0.1
	done
	# Reap it when it is our own child (started from setup_file).
	wait "$pid" 2>/dev/null || true
}

# Stops the daemon and starts it again on the same config, data and ports.
# @param (none)
_daemon_restart() {
	_daemon_stop || return 1
	_daemon_start
}

# For teardown_file: stops the daemon; when a test of this file failed,
# prints the end of the daemon log into the TAP output.
# @param (none)
_daemon_teardown_file() {
	local status=0
	_daemon_stop || status=1
	if [[ -e $BATS_FILE_TMPDIR/failed && -f $DAEMON_LOG ]]; then
		{
			echo "posternd log of $(basename "$BATS_TEST_FILENAME") (last 150 lines):"
			tail -n 150 "$DAEMON_LOG"
		} | sed 's/^/# /' >&3
	fi
	return "$status"
}

# For setup(): remembers where the daemon log stands so that a failing test
# can show what the daemon said during that test.
# @param (none)
_test_setup() {
	__log_mark=$(wc -c <"$DAEMON_LOG" 2>/dev/null || echo 0)
}

# For teardown(): on failure, marks the file as failed (for
# _daemon_teardown_file) and shows the daemon log lines of this test.
# @param (none)
_test_teardown() {
	if [[ -z ${BATS_TEST_COMPLETED:-} ]]; then
		touch "$BATS_FILE_TMPDIR/failed"
		echo "--- posternd log during this test (last 60 lines) ---"
		tail -c +"$((${__log_mark:-0} + 1))" "$DAEMON_LOG" | tail -n 60
	fi
}

# Runs posternctl on the test config.
# @param $@ posternctl arguments (e.g. domain add example.test)
_ctl() {
	"$POSTERNCTL" -c "$CONFIG" "$@"
}

# Adds a domain, failing loudly (for setup_file).
# @param $1 domain
_add_domain() {
	_ctl domain add "$1" || {
		echo "posternctl domain add $1 failed" >&2
		return 1
	}
}

# Adds a mailbox; the password goes on stdin, as posternctl requires.
# @param $1 address
# @param $2 password
# @param $@ further posternctl options (e.g. --quota 1000)
_add_mailbox() {
	local addr=$1 pass=$2
	shift 2
	printf '%s\n' "$pass" | _ctl mailbox add "$addr" "$@" || {
		echo "posternctl mailbox add $addr failed" >&2
		return 1
	}
}

# Adds an alias (SOURCE "@domain" is the domain's catch-all).
# @param $1 source address or @domain
# @param $@ target addresses
_add_alias() {
	_ctl alias add "$@" || {
		echo "posternctl alias add $* failed" >&2
		return 1
	}
}

# Changes a mailbox password (the new one goes on stdin).
# @param $1 address
# @param $2 new password
_ctl_passwd() {
	printf '%s\n' "$2" | _ctl mailbox passwd "$1"
}

# Prints what the daemon logged since _test_setup ran for this test.
# @param (none)
_log_since_test_start() {
	tail -c +"$((${__log_mark:-0} + 1))" "$DAEMON_LOG"
}
