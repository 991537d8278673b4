# shellcheck shell=bash
# Shared by every e2e test file: paths, the bats libraries, waiting with a
# timeout, and small Maildir inspection helpers. Load it first:
#   load helpers/common
# Public helpers are named _name, internal ones __name.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

# Byte semantics for ${#var} and sorting, whatever the caller's locale.
export LC_ALL=C

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
TOOLS="$E2E_DIR/tools"
FIXTURES="$E2E_DIR/fixtures"
POSTERND="${POSTERND:-$REPO_ROOT/build/posternd}"
POSTERNCTL="${POSTERNCTL:-$REPO_ROOT/build/posternctl}"
# The system interpreter, never a pyenv shim: the tools use only its stdlib.
PY=/usr/bin/python3
export E2E_DIR REPO_ROOT TOOLS FIXTURES POSTERND POSTERNCTL PY
# The tools must not leave __pycache__ directories in the source tree.
export PYTHONDONTWRITEBYTECODE=1

# Runs a command again and again (every 0.1 s) until it succeeds or the
# timeout passes. Returns 0 on success, 1 on timeout.
# @param $1 timeout in seconds
# @param $@ the command (and its arguments) to repeat
_repeat_until_timeout() {
	local timeout=$1
	shift
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		if ((SECONDS >= deadline)); then
			echo "timed out after ${timeout}s waiting for: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# Prints N free loopback TCP ports separated by spaces.
# @param $1 how many ports (default 1)
_free_ports() {
	"$PY" "$TOOLS/freeport.py" "${1:-1}"
}

# Succeeds when something accepts TCP connections on host:port.
# @param $1 host (127.0.0.1 or ::1)
# @param $2 port
_port_is_open() {
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect((host, port))
except OSError:
    sys.exit(1)
s.close()
EOF
}

# Succeeds when the host can use IPv6 loopback (::1).
# @param (none)
_have_ipv6_loopback() {
	"$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null
}

# Prints the Maildir path of an address (lower-cased, as the daemon stores it).
# @param $1 address local@domain
_maildir_of() {
	local addr=${1,,}
	printf '%s/mail/%s/%s\n' "$DATA_DIR" "${addr#*@}" "${addr%@*}"
}

# Prints how many messages an address has in new/ (0 when the Maildir does
# not exist yet).
# @param $1 address local@domain
_count_new() {
	__count_files "$(_maildir_of "$1")/new"
}

# Prints how many regular files are in a directory (0 when it is missing).
# @param $1 directory
__count_files() {
	local dir=$1
	if [[ ! -d $dir ]]; then
		echo 0
		return
	fi
	find "$dir" -maxdepth 1 -type f | wc -l
}

# Prints how many message files the whole store holds (new/ and cur/ of
# every Maildir).
# @param (none)
_count_all_mail() {
	if [[ ! -d $DATA_DIR/mail ]]; then
		echo 0
		return
	fi
	find "$DATA_DIR/mail" -type f \( -path '*/new/*' -o -path '*/cur/*' \) | wc -l
}

# Prints the path of the one message in an address's new/; fails when
# there is not exactly one (tests clear the mailbox first).
# @param $1 address local@domain
_only_mail() {
	local dir files
	dir="$(_maildir_of "$1")/new"
	mapfile -t files < <(find "$dir" -maxdepth 1 -type f 2>/dev/null)
	if ((${#files[@]} != 1)); then
		echo "expected exactly one message in $dir, found ${#files[@]}" >&2
		return 1
	fi
	printf '%s\n' "${files[0]}"
}

# Empties an address's new/ and cur/ so that a test starts from a known
# state (the daemon must not be serving that mailbox over POP3 right now).
# @param $1 address local@domain
_clear_mailbox() {
	local md
	md=$(_maildir_of "$1")
	rm -f "$md"/new/* "$md"/cur/* 2>/dev/null || true
}

# Fails with a message unless two files are byte-identical.
# @param $1 expected file
# @param $2 actual file
_assert_same_bytes() {
	"$PY" "$TOOLS/msgtool.py" cmp "$1" "$2" || fail "$2 differs from $1"
}

# Prints a string of N copies of a character.
# @param $1 count
# @param $2 character (default x)
_repeat_char() {
	local s
	printf -v s '%*s' "$1" ''
	printf '%s' "${s// /${2:-x}}"
}
