# shellcheck shell=bash
# SMTP clients for the tests: swaks for whole messages, smtp_raw.py for exact
# transcripts (bare LF, pipelining, BDAT, pregreet ...).
# $output is set by bats' run.
# shellcheck disable=SC2154

# Runs swaks against the test daemon (HELO name client.test).
# @param $@ further swaks options
_swaks() {
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.test \
		--timeout 60 "$@"
}

# Sends a message file byte for byte with swaks: the file (CRLF line ends,
# ending with CRLF) is dot-stuffed into DATA wire form and sent with
# --no-data-fixup, so the daemon receives exactly the file. Prints the
# swaks transcript (message text suppressed).
# @param $1 envelope sender ("" for the null sender)
# @param $2 recipients, comma-separated
# @param $3 message file (CRLF)
_smtp_send_file() {
	local wire
	wire=$(mktemp "$BATS_FILE_TMPDIR/wire.XXXXXX")
	"$PY" "$TOOLS/msgtool.py" wire "$3" "$wire" || return 1
	# swaks spells the null sender "<>"
	_swaks --from "${1:-<>}" --to "$2" --data "@$wire" --no-data-fixup \
		--suppress-data
	local status=$?
	rm -f "$wire"
	return "$status"
}

# Sends a short generated message with swaks.
# @param $1 envelope sender
# @param $2 recipients, comma-separated
# @param $3 subject (default "test")
_smtp_send_text() {
	local msg
	msg=$(mktemp "$BATS_FILE_TMPDIR/msg.XXXXXX")
	"$PY" "$TOOLS/msgtool.py" gen text "$msg" "${3:-test}" || return 1
	_smtp_send_file "$1" "$2" "$msg"
	local status=$?
	rm -f "$msg"
	return "$status"
}

# Sends an exact transcript to the daemon's SMTP port and prints every reply
# line (the greeting first). See tests/e2e/tools/rawclient.py for the steps.
# @param $@ options (--no-greeting, --source ADDR, --timeout S) and steps
_smtp_raw() {
	"$PY" "$TOOLS/smtp_raw.py" --port "$SMTP_PORT" "$@"
}

# Like _smtp_raw, but says EHLO client.test first and reads its reply.
# @param $@ steps
_smtp_ehlo_raw() {
	_smtp_raw 'L:EHLO client.test' R "$@"
}

# Prints the queue id from a "250 2.0.0 Ok: queued as <ID>" reply found in
# the text, or fails.
# @param $1 text (e.g. "$output")
_queue_id_in() {
	local id
	id=$(grep -oE 'queued as [0-9A-Fa-f]{16}' <<<"$1" | head -n 1)
	[[ -n $id ]] || return 1
	printf '%s\n' "${id#queued as }"
}

# Asserts that the output holds exactly N replies with the given prefix.
# @param $1 expected count
# @param $2 reply prefix, e.g. "250 2.1.5"
_assert_reply_count() {
	local n
	n=$(grep -c -- "^$2" <<<"$output" || true)
	((n == $1)) || fail "expected $1 replies starting '$2', got $n"$'\n'"$output"
}

# Prints the final line of every SMTP reply in $output as "CODE" or
# "CODE X.Y.Z" when an enhanced code follows, plus <EOF>/<TIMEOUT> markers:
# a compact picture of a whole transcript.
# @param (none)
_replies() {
	awk '/^[0-9][0-9][0-9]( |$)/ {
		if ($2 ~ /^[245]\.[0-9]+\.[0-9]+$/) print $1 " " $2; else print $1
	}
	/^<(EOF|TIMEOUT)>$/ { print }' <<<"$output"
}

# Asserts the sequence of replies in $output (see _replies), e.g.
#   _assert_replies 220 250 "250 2.1.0" "354" "550 5.6.0" "221 2.0.0" "<EOF>"
# @param $@ expected entries, in order
_assert_replies() {
	local expected actual
	expected=$(printf '%s\n' "$@")
	actual=$(_replies)
	[[ $actual == "$expected" ]] ||
		fail "$(printf 'replies differ\n--- expected\n%s\n--- actual\n%s\n--- transcript\n%s' \
			"$expected" "$actual" "$output")"
}

# Prints the full last line of the Nth reply in $output (0 = the greeting),
# counting whole replies as _replies does.
# @param $1 reply index (negative counts from the end)
_reply_text() {
	local -a r
	mapfile -t r < <(grep -E '^([0-9]{3}( |$)|<(EOF|TIMEOUT)>$)' <<<"$output")
	printf '%s\n' "${r[$1]}"
}

# Asserts that the Nth reply (see _reply_text) matches a regular expression.
# @param $1 reply index
# @param $2 extended regular expression
_assert_reply() {
	local text
	text=$(_reply_text "$1")
	[[ $text =~ $2 ]] ||
		fail "$(printf 'reply %s is %q, expected /%s/\n--- transcript\n%s' "$1" "$text" "$2" "$output")"
}

# --- TLS, AUTH and submission (smtp_starttls, smtp_auth, submission) ---

# Makes a self-signed RSA certificate and its key (PEM) for a host name.
# @param $1 certificate file to write
# @param $2 key file to write
# @param $3 common name (default mx.example.test)
_tls_self_signed() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj "/CN=${3:-mx.example.test}" -keyout "$2" -out "$1" \
		2>/dev/null || {
		echo "openssl req failed for $1" >&2
		return 1
	}
}

# Prints the SHA-256 fingerprint (AA:BB:... upper case) of a PEM
# certificate read from a file, or from stdin when the file is "-".
# @param $1 certificate file or -
_tls_fingerprint() {
	local fp
	if [[ $1 == - ]]; then
		fp=$(openssl x509 -noout -fingerprint -sha256) || return 1
	else
		fp=$(openssl x509 -noout -fingerprint -sha256 -in "$1") || return 1
	fi
	printf '%s\n' "${fp#*=}"
}

# Prints the SHA-256 fingerprint of the certificate a port presents, as
# openssl s_client sees it (after STARTTLS when asked).
# @param $1 port
# @param $2 "smtp" for STARTTLS, "" for implicit TLS
_tls_server_fingerprint() {
	local -a starttls=()
	[[ -n ${2:-} ]] && starttls=(-starttls "$2")
	openssl s_client -connect "127.0.0.1:$1" "${starttls[@]}" \
		-servername mx.example.test </dev/null 2>/dev/null |
		_tls_fingerprint -
}

# Runs openssl s_client against a port (STARTTLS smtp unless the first
# option is --implicit), sends QUIT, prints everything it says (stderr
# too). Extra options select the TLS version (-tls1, -tls1_2 ...).
# @param $1 port
# @param $@ further s_client options
_tls_s_client() {
	local port=$1
	shift
	local -a starttls=(-starttls smtp)
	if [[ ${1:-} == --implicit ]]; then
		starttls=()
		shift
	fi
	printf 'QUIT\n' | timeout 30 openssl s_client \
		-connect "127.0.0.1:$port" "${starttls[@]}" -crlf -ign_eof "$@" 2>&1
}

# Sends an exact transcript with TLS steps (see tools/smtp_tls_raw.py: T
# makes the STARTTLS handshake, C prints the certificate fingerprint,
# --tls is implicit TLS) and prints every reply line.
# @param $1 port
# @param $@ options and steps
_smtp_tls_raw() {
	local port=$1
	shift
	"$PY" "$TOOLS/smtp_tls_raw.py" --port "$port" "$@"
}

# Runs swaks against another port of the test daemon (submission ...).
# @param $1 port
# @param $@ further swaks options
_swaks_at() {
	local port=$1
	shift
	swaks --server 127.0.0.1 --port "$port" --helo client.test \
		--timeout 60 "$@"
}

# Prints the base64 SASL PLAIN response for a user and password
# (RFC 4616: empty authzid NUL authcid NUL passwd).
# @param $1 user
# @param $2 password
_sasl_plain() {
	printf '\0%s\0%s' "$1" "$2" | base64 -w0
}

# Prints the base64 form of a string (SASL LOGIN steps).
# @param $1 text
_b64() {
	printf '%s' "$1" | base64 -w0
}

# Prints a stored message's header section (up to the first empty line,
# CR dropped).
# @param $1 message file
_mail_headers() {
	sed -e 's/\r$//' -e '/^$/q' "$1"
}
