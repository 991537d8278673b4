# shellcheck shell=bash
# POP3 clients for the tests: curl pop3:// and Python's poplib (real
# clients), pop3_raw.py for exact transcripts.

# Sends an exact POP3 transcript and prints every response line (greeting
# first). See tests/e2e/tools/rawclient.py for the steps; M reads a
# multi-line response.
# @param $@ options (--no-greeting, --timeout S) and steps
_pop3_raw() {
	"$PY" "$TOOLS/pop3_raw.py" --port "$POP3_PORT" "$@"
}

# Logs in with poplib (USER/PASS) and runs commands; see pop3_fetch.py.
# @param $1 user
# @param $2 password
# @param $@ commands: stat list list:N uidl uidl:N retr:N:FILE top:N:L:FILE
#           dele:N rset noop capa; options --auth plain, --no-quit
_pop3() {
	local user=$1 pass=$2
	shift 2
	"$PY" "$TOOLS/pop3_fetch.py" --port "$POP3_PORT" --user "$user" \
		--password "$pass" "$@"
}

# Retrieves message N with curl (RETR), writing it with CRLF line ends.
# @param $1 user
# @param $2 password
# @param $3 message number
# @param $4 output file
_curl_retr() {
	curl --silent --show-error --max-time 120 --user "$1:$2" \
		--output "$4" "pop3://127.0.0.1:$POP3_PORT/$3"
}

# Prints the LIST output with curl.
# @param $1 user
# @param $2 password
_curl_list() {
	curl --silent --show-error --max-time 60 --user "$1:$2" \
		"pop3://127.0.0.1:$POP3_PORT/"
}

# Prints the SASL PLAIN initial response (base64 of NUL user NUL password).
# @param $1 user (authentication identity)
# @param $2 password
_sasl_plain() {
	printf '\0%s\0%s' "$1" "$2" | base64 -w0
}

# ---- POP3 over TLS: STLS (RFC 2595) and POP3S (RFC 8314) ----

# For setup_file of a TLS test file: makes a self-signed certificate for
# mx.example.test, picks three free ports and starts a daemon with [tls]
# and a [pop3s] listener (daemon.bash writes [server] [log] [smtp] [pop3]
# only; the rest is appended here). Exports what _daemon_setup_file does,
# plus POP3S_PORT, TLS_CERT and TLS_KEY.
# @param $@ config overrides "section.key=value"; [auth] keys are allowed
_pop3_tls_setup_file() {
	if [[ ! -x $POSTERND || ! -x $POSTERNCTL ]]; then
		echo "build/posternd and build/posternctl are missing: run make" >&2
		return 1
	fi
	export DATA_DIR="$BATS_FILE_TMPDIR/data"
	export CONFIG="$BATS_FILE_TMPDIR/postern.conf"
	export DAEMON_LOG="$BATS_FILE_TMPDIR/posternd.log"
	export TLS_CERT="$BATS_FILE_TMPDIR/cert.pem"
	export TLS_KEY="$BATS_FILE_TMPDIR/key.pem"
	local ports
	ports=$(_free_ports 3) || return 1
	read -r SMTP_PORT POP3_PORT POP3S_PORT <<<"$ports"
	export SMTP_PORT POP3_PORT POP3S_PORT
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj /CN=mx.example.test \
		-addext subjectAltName=DNS:mx.example.test \
		-keyout "$TLS_KEY" -out "$TLS_CERT" >/dev/null 2>&1 || {
		echo "openssl could not make the test certificate" >&2
		return 1
	}
	_pop3_tls_write_config "$@"
	_daemon_start || return 1
	__pop3s_wait_listening
}

# Rewrites $CONFIG for the TLS daemon (after _pop3_tls_setup_file), e.g.
# before _daemon_restart with other settings.
# @param $@ config overrides "section.key=value"; [auth] keys are allowed
_pop3_tls_write_config() {
	local -a base=() auth=()
	local kv key
	for kv in "$@"; do
		if [[ $kv == auth.* ]]; then
			auth+=("$kv")
		else
			base+=("$kv")
		fi
	done
	_daemon_write_config "${base[@]}"
	{
		printf '[tls]\ncert = %s\nkey = %s\n\n' "$TLS_CERT" "$TLS_KEY"
		printf '[pop3s]\nlisten = 127.0.0.1:%s\n\n' "$POP3S_PORT"
		if ((${#auth[@]} > 0)); then
			echo "[auth]"
			for kv in "${auth[@]}"; do
				key=${kv%%=*}
				echo "${key#auth.} = ${kv#*=}"
			done
		fi
	} >>"$CONFIG"
}

# Waits (up to 10 s) until the last start of the daemon logged its
# [pop3s] listener.
__pop3s_wait_listening() {
	_repeat_until_timeout 10 __pop3s_listening
}

__pop3s_listening() {
	local since
	since=$(tac "$DAEMON_LOG" | sed '/=== test harness: starting posternd/q')
	[[ $since == *"listening pop3s on"* ]]
}

# curl over STLS (--ssl-reqd on pop3://), verifying the test certificate:
# mx.example.test is resolved to 127.0.0.1 for the name check.
# @param $1 user
# @param $2 password
# @param $@ path ("" lists, "1" retrieves message 1) then curl options
_curl_stls() {
	local user=$1 pass=$2 path=$3
	shift 3
	curl --silent --show-error --max-time 60 --ssl-reqd \
		--cacert "$TLS_CERT" \
		--resolve "mx.example.test:$POP3_PORT:127.0.0.1" \
		--user "$user:$pass" "$@" "pop3://mx.example.test:$POP3_PORT/$path"
}

# curl on the [pop3s] port, verifying the test certificate.
# @param $1 user
# @param $2 password
# @param $@ path ("" lists, "1" retrieves message 1) then curl options
_curl_pop3s() {
	local user=$1 pass=$2 path=$3
	shift 3
	curl --silent --show-error --max-time 60 \
		--cacert "$TLS_CERT" \
		--resolve "mx.example.test:$POP3S_PORT:127.0.0.1" \
		--user "$user:$pass" "$@" "pop3s://mx.example.test:$POP3S_PORT/$path"
}

# Python's poplib over TLS, verifying the test certificate: POP3 + stls()
# or POP3_SSL. Prints one line per step; "ERR <reply>" for an -ERR.
# @param $1 stls | ssl
# @param $2 user
# @param $3 password
# @param $@ steps: capa | stat | list | retr:N:FILE | quit
_poplib_tls() {
	"$PY" - "$POP3_PORT" "$POP3S_PORT" "$TLS_CERT" "$@" <<'EOF'
import poplib, ssl, sys

port, port_s, cert, mode, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cert)
ctx.check_hostname = False  # the certificate names mx.example.test
if mode == "ssl":
    c = poplib.POP3_SSL("127.0.0.1", int(port_s), context=ctx, timeout=60)
else:
    c = poplib.POP3("127.0.0.1", int(port), timeout=60)
    print("stls", c.stls(ctx).decode())
print("tls", c.sock.version(), c.sock.cipher()[0])
try:
    c.user(user)
    print("login", c.pass_(password).decode())
except poplib.error_proto as e:
    print("ERR", e.args[0].decode())
    sys.exit(1)
for step in sys.argv[7:]:
    what, _, arg = step.partition(":")
    try:
        if what == "capa":
            print("capa", " ".join(sorted(c.capa())))
        elif what == "stat":
            print("stat", *c.stat())
        elif what == "list":
            for line in c.list()[1]:
                print("list", line.decode())
        elif what == "retr":
            n, _, path = arg.partition(":")
            lines = c.retr(int(n))[1]
            with open(path, "wb") as f:
                for line in lines:
                    f.write(line + b"\r\n")
            print("retr", n, "ok")
        elif what == "quit":
            print("quit", c.quit().decode())
    except poplib.error_proto as e:
        print("ERR", e.args[0].decode())
EOF
}

# Sends an exact POP3 transcript with TLS started by the script itself,
# for what real clients never do (pipelining after STLS, waiting in the
# middle of a handshake). Prints every line received, without its CRLF.
# @param $1 plain (the POP3 port, TLS only at the TLS step) or implicit
#           (the POP3S port, TLS at once); the greeting is read and printed
# @param $@ steps:
#   L:TEXT  send TEXT and CRLF     S:TEXT  send TEXT (\r \n escapes)
#   R       read and print a line  M       read a multi-line reply
#   TLS     start TLS here, print "<TLS version>"
#   Q:SECS  print <SILENT> when nothing arrives within SECS, or the line
#   E       read to the end, print <EOF>
_pop3_tls_raw() {
	"$PY" - "$POP3_PORT" "$POP3S_PORT" "$TLS_CERT" "$@" <<'EOF'
import codecs, socket, ssl, sys

port, port_s, cert, mode = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=cert)
ctx.check_hostname = False
sock = socket.create_connection(("127.0.0.1", int(port_s if mode == "implicit" else port)), timeout=30)
buf = b""

def tls():
    global sock
    sock = ctx.wrap_socket(sock)
    print("<TLS %s>" % sock.version(), flush=True)

def readline(timeout=30):
    global buf
    sock.settimeout(timeout)
    while b"\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    line, buf = buf.split(b"\n", 1)
    return line.rstrip(b"\r").decode("latin-1")

def show(line):
    print("<EOF>" if line is None else line, flush=True)

if mode == "implicit":
    tls()
show(readline())
for step in sys.argv[5:]:
    what, _, arg = step.partition(":")
    if what == "L":
        sock.sendall(arg.encode() + b"\r\n")
    elif what == "S":
        sock.sendall(codecs.decode(arg, "unicode_escape").encode("latin-1"))
    elif what == "R":
        show(readline())
    elif what == "M":
        line = readline()
        show(line)
        more = line is not None and line.startswith("+OK")
        while more:
            line = readline()
            show(line)
            more = line is not None and line != "."
    elif what == "TLS":
        if buf:
            print("<UNREAD %r>" % buf, flush=True)
        tls()
    elif what == "Q":
        try:
            show(readline(float(arg)))
        except (socket.timeout, TimeoutError):
            print("<SILENT>", flush=True)
    elif what == "E":
        try:
            line = readline()
            while line is not None:
                show(line)
                line = readline()
        except (ConnectionResetError, ssl.SSLError):
            pass
        show(None)
EOF
}
