#!/usr/bin/env bats
# posternctl end to end: every command's success path and its errors (exit
# status and message), passwords from standard input, the files it creates.
# No daemon is needed: each test gets its own data_dir and config.

load helpers/common

setup() {
	TEST_DIR="$BATS_FILE_TMPDIR/t$BATS_TEST_NUMBER"
	mkdir -p "$TEST_DIR"
	export DATA_DIR="$TEST_DIR/data"
	export CONFIG="$TEST_DIR/postern.conf"
	printf '[server]\ndata_dir = %s\n' "$DATA_DIR" >"$CONFIG"
}

# Runs posternctl on this test's config.
# @param $@ posternctl arguments
_ctl() {
	"$POSTERNCTL" -c "$CONFIG" "$@"
}

# Prints a mailbox's stored password hash.
# @param $1 local part
# @param $2 domain
__hash_of() {
	"$PY" - "$DATA_DIR/postern.db" "$1" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
row = db.execute("SELECT password_hash FROM mailboxes WHERE local = ? AND domain = ?",
                 (sys.argv[2], sys.argv[3])).fetchone()
print(row[0] if row else "")
EOF
}

# Succeeds when password $3 matches the stored hash of $1@$2 (libcrypt).
__password_ok() {
	local hash
	hash=$(__hash_of "$1" "$2")
	"$PY" -W ignore - "$3" "$hash" <<'EOF'
import crypt, sys
pw, h = sys.argv[1], sys.argv[2]
sys.exit(0 if h and crypt.crypt(pw, h) == h else 1)
EOF
}

# Prints the octal mode of a file.
__mode() {
	stat -c %a "$1"
}

@test "--help lists every command and exits 0" {
	run -0 "$POSTERNCTL" --help
	assert_output --partial 'usage: posternctl [-c FILE] COMMAND'
	for cmd in 'domain add' 'domain del' 'domain list' 'mailbox add' \
		'mailbox del' 'mailbox list' 'mailbox passwd' 'mailbox quota' \
		'mailbox enable' 'mailbox disable' 'alias add' 'alias del' \
		'alias list'; do
		assert_output --partial "$cmd"
	done
	assert_output --partial 'does NOT delete the mail files'
	run -0 "$POSTERNCTL" -h
	assert_output --partial 'usage:'
}

@test "usage errors exit 2 with a message on stderr" {
	run --separate-stderr -2 "$POSTERNCTL"
	assert_equal "$output" ""
	[[ $stderr == "posternctl: no command given"* ]]

	run --separate-stderr -2 _ctl frobnicate
	[[ $stderr == "posternctl: unknown command 'frobnicate'"* ]]

	run --separate-stderr -2 _ctl domain
	[[ $stderr == "posternctl: domain: missing subcommand"* ]]

	run --separate-stderr -2 _ctl domain rename a b
	[[ $stderr == "posternctl: unknown command 'domain rename'"* ]]

	run --separate-stderr -2 _ctl domain add
	[[ $stderr == *"wrong number of arguments"* ]]
	[[ $stderr == *"usage: posternctl [-c FILE] domain add NAME"* ]]

	run --separate-stderr -2 _ctl domain add a.test b.test
	run --separate-stderr -2 _ctl domain list extra
	run --separate-stderr -2 _ctl alias add only-source@a.test
	run --separate-stderr -2 _ctl mailbox quota a@a.test
	run --separate-stderr -2 "$POSTERNCTL" --bogus-option domain list
	run --separate-stderr -2 "$POSTERNCTL" -c
	# Usage errors are found before the store is touched.
	[[ ! -e $DATA_DIR ]]
}

@test "a password is never taken from the command line" {
	_ctl domain add example.test
	run --separate-stderr -2 _ctl mailbox add bob@example.test secret
	[[ $stderr == *"too many arguments"* ]]
	run --separate-stderr -2 _ctl mailbox add bob@example.test --password=x
	[[ $stderr == *"unknown option '--password=x'"* ]]
	run -0 _ctl mailbox list
	assert_output ""
}

@test "config problems are reported with file and line, exit 1" {
	run --separate-stderr -1 "$POSTERNCTL" -c "$TEST_DIR/missing.conf" domain list
	[[ $stderr == "posternctl: $TEST_DIR/missing.conf: cannot open: No such file or directory" ]]

	printf '[server]\ndata_dir = relative\nbogus = 1\n[nope]\n' >"$CONFIG"
	run --separate-stderr -1 _ctl domain list
	[[ $stderr == *"posternctl: $CONFIG:2: bad value 'relative' for key 'data_dir'"* ]]
	[[ $stderr == *"posternctl: $CONFIG:3: unknown key 'bogus' in section [server]"* ]]
	[[ $stderr == *"posternctl: $CONFIG:4: unknown section [nope]"* ]]
}

@test "domain add, list and del" {
	run -0 _ctl domain add Example.TEST
	assert_output ""
	run -0 _ctl domain add b.test
	run -0 _ctl domain list
	assert_output $'b.test\nexample.test'
	run -0 _ctl domain del b.test
	run -0 _ctl domain list
	assert_output "example.test"
	# The database is private to its owner.
	assert_equal "$(__mode "$DATA_DIR")" 700
	assert_equal "$(__mode "$DATA_DIR/postern.db")" 600
}

@test "domain errors: duplicate, bad name, unknown, still in use" {
	_ctl domain add example.test
	run --separate-stderr -1 _ctl domain add EXAMPLE.test
	assert_equal "$stderr" "posternctl: domain example.test already exists"
	run --separate-stderr -1 _ctl domain add 'bad_name.test'
	assert_equal "$stderr" "posternctl: invalid domain name: bad_name.test"
	run --separate-stderr -1 _ctl domain add '-x.test'
	run --separate-stderr -1 _ctl domain del nowhere.test
	assert_equal "$stderr" "posternctl: no such domain: nowhere.test"

	printf 'pw\n' | _ctl mailbox add bob@example.test
	_ctl alias add info@example.test bob@example.test
	run --separate-stderr -1 _ctl domain del example.test
	assert_equal "$stderr" "posternctl: domain example.test still has 1 mailbox and 1 alias; delete them first"
	_ctl alias del info@example.test
	_ctl mailbox del bob@example.test
	run -0 _ctl domain del example.test
}

@test "mailbox add reads the password from stdin and makes the Maildir" {
	_ctl domain add example.test
	run -0 bash -c 'printf "s3cret pass\n" | "$0" -c "$1" mailbox add Bob@Example.test' \
		"$POSTERNCTL" "$CONFIG"
	assert_output ""
	__password_ok bob example.test 's3cret pass'
	run ! __password_ok bob example.test 's3cret pass\n'
	run ! __password_ok bob example.test 's3cret'
	[[ $(__hash_of bob example.test) == '$y$'* ]]

	local md="$DATA_DIR/mail/example.test/bob"
	for d in "$md" "$md/tmp" "$md/new" "$md/cur"; do
		[[ -d $d ]]
		assert_equal "$(__mode "$d")" 700
	done

	run -0 _ctl mailbox list
	assert_output "bob@example.test 0 enabled"
}

@test "mailbox add without a trailing newline, and with CRLF" {
	_ctl domain add example.test
	printf 'nonewline' | _ctl mailbox add a@example.test
	__password_ok a example.test nonewline
	printf 'crlf\r\n' | _ctl mailbox add b@example.test
	__password_ok b example.test crlf
	# Only the first line counts.
	printf 'first\nsecond\n' | _ctl mailbox add c@example.test
	__password_ok c example.test first
}

@test "mailbox add errors: empty or missing password, unknown domain, duplicate, bad address" {
	_ctl domain add example.test
	run --separate-stderr -1 bash -c 'printf "\n" | "$0" -c "$1" mailbox add bob@example.test' \
		"$POSTERNCTL" "$CONFIG"
	assert_equal "$stderr" "posternctl: empty password refused"
	run --separate-stderr -1 _ctl mailbox add bob@example.test </dev/null
	assert_equal "$stderr" "posternctl: no password on standard input"
	run -0 _ctl mailbox list
	assert_output ""
	[[ ! -e $DATA_DIR/mail/example.test/bob ]]

	run --separate-stderr -1 _ctl mailbox add bob@nowhere.test </dev/null
	assert_equal "$stderr" "posternctl: no such domain: nowhere.test"

	printf 'pw\n' | _ctl mailbox add bob@example.test
	run --separate-stderr -1 bash -c 'printf "other\n" | "$0" -c "$1" mailbox add BOB@example.test' \
		"$POSTERNCTL" "$CONFIG"
	assert_equal "$stderr" "posternctl: mailbox bob@example.test already exists"
	__password_ok bob example.test pw

	for bad in 'no-at-sign' 'a b@example.test' '.bob@example.test' \
		'bob%x@example.test' 'bob@exa_mple.test' '@example.test' 'bob@'; do
		run --separate-stderr -1 _ctl mailbox add "$bad" </dev/null
		assert_equal "$stderr" "posternctl: invalid address: $bad"
	done
	run --separate-stderr -1 _ctl mailbox add 'a/b@example.test' </dev/null
	[[ $stderr == "posternctl: invalid address: a/b@example.test ('/' is not allowed"* ]]
}

@test "mailbox quota: --quota, suffixes, changes, bad values" {
	_ctl domain add example.test
	printf 'pw\n' | _ctl mailbox add a@example.test --quota 1M
	printf 'pw\n' | _ctl mailbox add b@example.test --quota=2048
	run -0 _ctl mailbox list
	assert_output $'a@example.test 1048576 enabled\nb@example.test 2048 enabled'

	run -0 _ctl mailbox quota a@example.test 1G
	run -0 _ctl mailbox quota b@example.test 0
	run -0 _ctl mailbox list
	assert_output $'a@example.test 1073741824 enabled\nb@example.test 0 enabled'

	run --separate-stderr -1 _ctl mailbox quota a@example.test lots
	assert_equal "$stderr" "posternctl: invalid size: lots (expected bytes with an optional K, M or G suffix)"
	run --separate-stderr -1 bash -c 'printf "pw\n" | "$0" -c "$1" mailbox add c@example.test --quota 5X' \
		"$POSTERNCTL" "$CONFIG"
	[[ $stderr == "posternctl: invalid size: 5X"* ]]
	run --separate-stderr -2 _ctl mailbox add c@example.test --quota
	[[ $stderr == *"--quota needs one value"* ]]
	run --separate-stderr -1 _ctl mailbox quota nobody@example.test 5
	assert_equal "$stderr" "posternctl: no such mailbox: nobody@example.test"
}

@test "mailbox passwd replaces the password from stdin" {
	_ctl domain add example.test
	printf 'old\n' | _ctl mailbox add bob@example.test
	__password_ok bob example.test old
	run -0 bash -c 'printf "new one\n" | "$0" -c "$1" mailbox passwd bob@example.test' \
		"$POSTERNCTL" "$CONFIG"
	__password_ok bob example.test 'new one'
	run ! __password_ok bob example.test old

	run --separate-stderr -1 bash -c 'printf "\n" | "$0" -c "$1" mailbox passwd bob@example.test' \
		"$POSTERNCTL" "$CONFIG"
	assert_equal "$stderr" "posternctl: empty password refused"
	__password_ok bob example.test 'new one'
	run --separate-stderr -1 _ctl mailbox passwd nobody@example.test </dev/null
	assert_equal "$stderr" "posternctl: no such mailbox: nobody@example.test"
}

@test "mailbox disable and enable" {
	_ctl domain add example.test
	printf 'pw\n' | _ctl mailbox add bob@example.test
	run -0 _ctl mailbox disable bob@example.test
	run -0 _ctl mailbox list
	assert_output "bob@example.test 0 disabled"
	run -0 _ctl mailbox enable BOB@example.test
	run -0 _ctl mailbox list
	assert_output "bob@example.test 0 enabled"
	run --separate-stderr -1 _ctl mailbox disable nobody@example.test
	assert_equal "$stderr" "posternctl: no such mailbox: nobody@example.test"
	run --separate-stderr -1 _ctl mailbox enable 'not an address'
	assert_equal "$stderr" "posternctl: invalid address: not an address"
}

@test "mailbox list filters by domain" {
	_ctl domain add a.test
	_ctl domain add b.test
	_ctl domain add empty.test
	printf 'pw\n' | _ctl mailbox add x@b.test
	printf 'pw\n' | _ctl mailbox add y@a.test
	printf 'pw\n' | _ctl mailbox add z@a.test
	run -0 _ctl mailbox list
	assert_output $'y@a.test 0 enabled\nz@a.test 0 enabled\nx@b.test 0 enabled'
	run -0 _ctl mailbox list B.test
	assert_output "x@b.test 0 enabled"
	run -0 _ctl mailbox list empty.test
	assert_output ""
	run --separate-stderr -1 _ctl mailbox list nowhere.test
	assert_equal "$stderr" "posternctl: no such domain: nowhere.test"
}

@test "mailbox del keeps the mail files" {
	_ctl domain add example.test
	printf 'pw\n' | _ctl mailbox add bob@example.test
	echo "Subject: kept" >"$DATA_DIR/mail/example.test/bob/new/1.msg"
	run -0 _ctl mailbox del bob@example.test
	run -0 _ctl mailbox list
	assert_output ""
	[[ -f $DATA_DIR/mail/example.test/bob/new/1.msg ]]
	run --separate-stderr -1 _ctl mailbox del bob@example.test
	assert_equal "$stderr" "posternctl: no such mailbox: bob@example.test"

	# Re-creating it says that the old mail is still there.
	run --separate-stderr -0 bash -c 'printf "pw\n" | "$0" -c "$1" mailbox add bob@example.test' \
		"$POSTERNCTL" "$CONFIG"
	[[ $stderr == *"note: reusing the existing Maildir"* ]]
	[[ -f $DATA_DIR/mail/example.test/bob/new/1.msg ]]
}

@test "alias add, list and del, with the catch-all" {
	_ctl domain add example.test
	_ctl domain add other.test
	printf 'pw\n' | _ctl mailbox add bob@example.test
	run -0 _ctl alias add Info@example.test bob@example.test friend@remote.example
	run -0 _ctl alias add info@example.test carol@other.test
	run -0 _ctl alias add @example.test bob@example.test
	run -0 _ctl alias add postmaster@other.test bob@example.test
	run -0 _ctl alias list
	assert_output - <<'EOF'
@example.test bob@example.test
info@example.test bob@example.test
info@example.test carol@other.test
info@example.test friend@remote.example
postmaster@other.test bob@example.test
EOF
	run -0 _ctl alias list other.test
	assert_output "postmaster@other.test bob@example.test"

	run -0 _ctl alias del info@example.test friend@remote.example
	run -0 _ctl alias list example.test
	assert_output $'@example.test bob@example.test\ninfo@example.test bob@example.test\ninfo@example.test carol@other.test'
	run -0 _ctl alias del info@example.test
	run -0 _ctl alias del @example.test
	run -0 _ctl alias list example.test
	assert_output ""
}

@test "alias errors: unknown domain, duplicate, bad addresses, missing targets" {
	_ctl domain add example.test
	run --separate-stderr -1 _ctl alias add info@nowhere.test bob@example.test
	assert_equal "$stderr" "posternctl: no such domain: nowhere.test"
	run --separate-stderr -1 _ctl alias add info@example.test 'not an address'
	assert_equal "$stderr" "posternctl: invalid address: not an address"
	run --separate-stderr -1 _ctl alias add 'bad source@example.test' bob@example.test
	assert_equal "$stderr" "posternctl: invalid alias source: bad source@example.test"
	run --separate-stderr -1 _ctl alias add info@example.test info@example.test
	assert_equal "$stderr" "posternctl: alias info@example.test cannot point to itself"

	_ctl alias add info@example.test bob@example.test
	run --separate-stderr -1 _ctl alias add info@example.test new@example.test BOB@example.test
	assert_equal "$stderr" "posternctl: alias info@example.test -> bob@example.test already exists"
	# All or nothing: new@ was not added either.
	run -0 _ctl alias list
	assert_output "info@example.test bob@example.test"

	run --separate-stderr -1 _ctl alias del info@example.test carol@example.test
	assert_equal "$stderr" "posternctl: alias info@example.test has no target carol@example.test"
	run --separate-stderr -1 _ctl alias del nothing@example.test
	assert_equal "$stderr" "posternctl: no such alias: nothing@example.test"
	run --separate-stderr -1 _ctl alias list nowhere.test
	assert_equal "$stderr" "posternctl: no such domain: nowhere.test"
}

@test "data_dir and Maildirs are created as needed" {
	printf '[server]\ndata_dir = %s\n' "$TEST_DIR/deep/er/data" >"$CONFIG"
	run -0 _ctl domain add example.test
	[[ -f $TEST_DIR/deep/er/data/postern.db ]]
	printf 'pw\n' | _ctl mailbox add bob@example.test
	[[ -d $TEST_DIR/deep/er/data/mail/example.test/bob/new ]]
}
