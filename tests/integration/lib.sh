# Shared helpers of the integration stories (POSIX sh), sourced by each
# tNNNN-<story>.sh after `set -eu`:
#
#   . "$(dirname "$0")/lib.sh"
#
# Gives the story its own temp dir ($tmp, removed on exit), a HOME inside it,
# no system or user git configuration, fixed dates for stock git commits, and
# helpers that check exit codes and messages.  Every check prints what
# failed and exits non-zero.
#
# Run a story by hand (KEEP_TMP=1 keeps its temp dir, daemons' logs
# included, for a look afterwards):
#   CARTOSYNC=build/cli/cartosync sh tests/integration/t0001-init-add-verify.sh

story=$(basename "$0" .sh)
libdir=$(cd "$(dirname "$0")" && pwd)

: "${CS_SOURCE_ROOT:=$(cd "$libdir/../.." && pwd)}"
: "${CS_SCHEMA_DIR:=$CS_SOURCE_ROOT/schema}"
: "${CS_TEST_DATA:=$CS_SOURCE_ROOT/tests/data}"
: "${CARTOSYNC:=$CS_SOURCE_ROOT/build/cli/cartosync}"
case $CS_TEST_DATA in
/*) ;;
*) CS_TEST_DATA=$CS_SOURCE_ROOT/$CS_TEST_DATA ;;
esac
export CS_SOURCE_ROOT CS_SCHEMA_DIR CS_TEST_DATA CARTOSYNC

for tool in git jq ssh-keygen; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$story: FAIL: '$tool' is needed" >&2
		exit 1
	fi
done
if ! [ -x "$CARTOSYNC" ]; then
	echo "$story: FAIL: CARTOSYNC='$CARTOSYNC' is not an executable" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cs-$story.XXXXXX")
# Daemons started with daemon_start are killed on exit.
cleanup_story() {
	if [ -f "$tmp/daemons.pids" ]; then
		while read -r p; do
			kill -9 "$p" 2>/dev/null || true
		done <"$tmp/daemons.pids"
	fi
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup_story EXIT
trap 'exit 130' INT TERM
cd "$tmp"

HOME=$tmp/home
mkdir -p "$HOME"
GIT_CONFIG_NOSYSTEM=1
GIT_CONFIG_GLOBAL=$HOME/.gitconfig
GIT_AUTHOR_DATE='2025-01-01T00:00:00Z'
GIT_COMMITTER_DATE='2025-01-01T00:00:00Z'
TZ=UTC
LC_ALL=C
export HOME GIT_CONFIG_NOSYSTEM GIT_CONFIG_GLOBAL GIT_AUTHOR_DATE \
	GIT_COMMITTER_DATE TZ LC_ALL
# The schemas of this source tree, not whatever is installed.
CARTOSYNC_SCHEMA_DIR=$CS_SCHEMA_DIR
export CARTOSYNC_SCHEMA_DIR
unset CARTOSYNC_HOME VISUAL EDITOR GIT_DIR GIT_WORK_TREE 2>/dev/null || true

PY=/usr/bin/python3
SAMPLE=$CS_TEST_DATA/sample
checks=0

# ------------------------------------------------------------------ checks

fail() {
	echo "$story: FAIL: $*" >&2
	for f in "$tmp/out" "$tmp/err"; do
		if [ -s "$f" ]; then
			echo "--- last $(basename "$f"):" >&2
			head -c 4000 "$f" >&2
			echo >&2
		fi
	done
	# The daemons' logs (daemon_start), last lines each.
	for f in "$tmp"/*.log; do
		[ -s "$f" ] && [ -f "$tmp/daemons.pids" ] || continue
		echo "--- last lines of $(basename "$f"):" >&2
		tail -n 25 "$f" >&2
	done
	exit 1
}

ok() {
	checks=$((checks + 1))
}

say() {
	echo "$story: $*" >&2
}

# cs ARGS...: run cartosync
cs() {
	"$CARTOSYNC" "$@"
}

# run EXPECTED_RC CMD ARGS...: run CMD, stdout in $tmp/out, stderr in
# $tmp/err, and check its exit status.
run() {
	want=$1
	shift
	set +e
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	set -e
	if [ "$got" != "$want" ]; then
		fail "'$*' exited $got, expected $want"
	fi
	ok
}

# run_in EXPECTED_RC INPUT_FILE CMD ARGS...: run with standard input
run_in() {
	want=$1
	input=$2
	shift 2
	set +e
	"$@" <"$input" >"$tmp/out" 2>"$tmp/err"
	got=$?
	set -e
	if [ "$got" != "$want" ]; then
		fail "'$* < $input' exited $got, expected $want"
	fi
	ok
}

# err_has FRAGMENT...: each fragment appears in the last stderr
err_has() {
	for frag in "$@"; do
		grep -qF -- "$frag" "$tmp/err" ||
			fail "stderr lacks \"$frag\""
		ok
	done
}

# out_has FRAGMENT...: each fragment appears in the last stdout
out_has() {
	for frag in "$@"; do
		grep -qF -- "$frag" "$tmp/out" ||
			fail "stdout lacks \"$frag\""
		ok
	done
}

# err_lacks FRAGMENT: the fragment does not appear in the last stderr
err_lacks() {
	if grep -qF -- "$1" "$tmp/err"; then
		fail "stderr has \"$1\", which it should not"
	fi
	ok
}

# eq WHAT GOT EXPECTED
eq() {
	if [ "$2" != "$3" ]; then
		fail "$1: got '$2', expected '$3'"
	fi
	ok
}

# ne WHAT GOT UNEXPECTED
ne() {
	if [ "$2" = "$3" ]; then
		fail "$1: got '$2', which it should not be"
	fi
	ok
}

# jq_eq WHAT FILTER FILE EXPECTED: `jq -r FILTER FILE` equals EXPECTED
jq_eq() {
	v=$(jq -r "$2" "$3") || fail "$1: jq '$2' cannot read $3"
	eq "$1" "$v" "$4"
}

# ------------------------------------------------------------------ nodes

# main_of NODE: the commit id main points to
main_of() {
	git -C "$1" rev-parse --verify -q refs/heads/main ||
		fail "node $1 has no main"
}

# genesis NODE ORG ROOTKEY...: a consortium's genesis with offline root keys
# (made here, as $tmp/ROOTKEY and ROOTKEY.pub), threshold: a majority.
genesis() {
	g_dir=$1
	g_org=$2
	shift 2
	g_args=
	for k in "$@"; do
		if ! [ -f "$tmp/$k" ]; then
			run 0 cs keys generate "$tmp/$k"
		fi
		g_args="$g_args --root-key $tmp/$k.pub"
	done
	# shellcheck disable=SC2086 # word splitting is wanted
	run 0 cs -C "$g_dir" init --org "$g_org" --genesis $g_args \
		--schema-dir "$CS_SCHEMA_DIR"
	[ -f "$g_dir/keys/signing_key" ] || fail "$g_dir has no signing key"
	main_of "$g_dir" >/dev/null
}

# join NODE ORG COORD [ROLE]: a new node of ORG joins from COORD, is
# admitted by COORD, and fetches the admission.  Its key line is in
# $tmp/ORG.pub.
join() {
	j_dir=$1
	j_org=$2
	j_coord=$3
	j_role=${4:-member}
	run 0 cs -C "$j_dir" init --org "$j_org" --join "$j_coord" \
		--genesis-id "$(git -C "$j_coord" rev-list --max-parents=0 main)"
	cs -C "$j_dir" keys public >"$tmp/$j_org.pub" ||
		fail "keys public of $j_dir"
	run 0 cs -C "$j_coord" members add --org "$j_org" --role "$j_role" \
		--key "$tmp/$j_org.pub"
	run 0 cs -C "$j_dir" fetch "$j_coord" --peer coord
	eq "main of $j_dir after fetch" "$(main_of "$j_dir")" \
		"$(main_of "$j_coord")"
}

# fingerprint NODE: SHA256:... of the node's signing key
fingerprint() {
	ssh-keygen -l -f "$1/keys/signing_key" | cut -d' ' -f2
}

# proposed SAMPLEFILE: the sample record without its x_status, in a file
# of $tmp whose path is printed
proposed() {
	p_out=$tmp/proposed-$(basename "$1")
	jq 'del(.x_status)' "$1" >"$p_out" || fail "jq cannot read $1"
	echo "$p_out"
}

# add_sample NODE SAMPLEFILE: add a sample record (as proposed); prints
# nothing, checks the commit landed in main
add_sample() {
	a_before=$(main_of "$1")
	run 0 cs -C "$1" --json add "$(proposed "$2")"
	a_id=$(jq -r .id "$2")
	jq_eq "id added from $2" .id "$tmp/out" "$a_id"
	jq_eq "in_main after adding $2" .in_main "$tmp/out" true
	a_commit=$(jq -r .commit "$tmp/out")
	eq "main after adding $2" "$(main_of "$1")" "$a_commit"
	eq "parent of the add of $2" "$(git -C "$1" rev-parse "$a_commit^")" \
		"$a_before"
}

# record_path ID OWNER TYPE: records/<owner>/<type>/<xx>/<id>.json
record_path() {
	echo "records/$2/$3/$(echo "$1" | cut -c1-2)/$1.json"
}

# verify_ok NODE [REV]: cartosync verify exits 0
verify_ok() {
	v_node=$1
	shift
	run 0 cs -C "$v_node" verify "$@"
	err_has "all valid"
}

# done_ok: the story's last line
done_ok() {
	say "ok ($checks checks)"
	exit 0
}

# ------------------------------------------------------------------ daemons

: "${CARTOSYNCD:=$CS_SOURCE_ROOT/build/daemon/cartosyncd}"

# serve NODE: give NODE a [serve] section on a free loopback port
serve() {
	printf '\n[serve]\nlisten = 127.0.0.1:0\n' >>"$1/cartosync.conf"
}

# sync_every NODE SECONDS: the node's [sync] interval
sync_every() {
	printf '\n[sync]\ninterval = %s\nbackoff-max = %s\n' "$2" "$2" \
		>>"$1/cartosync.conf"
}

# sync_conf NODE [KEY VALUE]...: sync_every NODE 1, and the given keys
sync_conf() {
	sc_node=$1
	shift
	sync_every "$sc_node" 1
	while [ $# -ge 2 ]; do
		printf '%s = %s\n' "$1" "$2" >>"$sc_node/cartosync.conf"
		shift 2
	done
}

# set_conf NODE KEY VALUE: change the one line "KEY = ..." of the node's
# configuration
set_conf() {
	[ "$(grep -c "^$2 = " "$1/cartosync.conf")" = 1 ] ||
		fail "$1/cartosync.conf has not exactly one $2"
	sed -i "s|^$2 = .*|$2 = $3|" "$1/cartosync.conf"
}

# log_has NODE TEXT: the node's daemon log has the fixed string
log_has() {
	grep -qF -- "$2" "$tmp/$1.log"
}

# no_staging NODE: NODE/staging is empty (or absent)
no_staging() {
	[ -z "$(ls -A "$1/staging" 2>/dev/null)" ]
}

# fsck_ok NODE: stock git finds nothing wrong in the node's store
fsck_ok() {
	git -C "$1" fsck --strict --no-dangling >"$tmp/fsck.out" 2>&1 ||
		{ cat "$tmp/fsck.out" >&2; fail "git fsck --strict of $1"; }
	ok
}

# daemon_start NODE: start cartosyncd on NODE (log in $tmp/NODE.log); for
# a serving node, wait for NODE/serve.url
daemon_start() {
	rm -f "$1/serve.url"
	"$CARTOSYNCD" -C "$1" -v 2>>"$tmp/$1.log" &
	echo $! >>"$tmp/daemons.pids"
	eval "pid_$(echo "$1" | tr -c 'a-z0-9\n' _)=$!"
	if grep -q '^\[serve\]' "$1/cartosync.conf"; then
		ds_i=0
		while ! [ -s "$1/serve.url" ]; do
			ds_i=$((ds_i + 1))
			if [ $ds_i -gt 100 ]; then
				cat "$tmp/$1.log" >&2
				fail "cartosyncd on $1 does not serve"
			fi
			sleep 0.1
		done
	fi
	ok
}

# daemon_pid NODE: the pid daemon_start recorded
daemon_pid() {
	eval "echo \$pid_$(echo "$1" | tr -c 'a-z0-9\n' _)"
}

# url_of NODE: where a serving node is
url_of() {
	cat "$1/serve.url"
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD (every 0.2 s) until it
# succeeds
wait_until() {
	wu_limit=$(( $1 * 5 ))
	wu_what=$2
	shift 2
	wu_i=0
	until "$@" >/dev/null 2>&1; do
		wu_i=$((wu_i + 1))
		[ $wu_i -le $wu_limit ] || fail "$wu_what: not within $((wu_limit / 5)) s"
		sleep 0.2
	done
	ok
}

# same_main NODE...: every node's main is the same commit
same_main() {
	sm_first=$(git -C "$1" rev-parse -q --verify refs/heads/main) || return 1
	for sm_n in "$@"; do
		[ "$(git -C "$sm_n" rev-parse -q --verify refs/heads/main)" = \
			"$sm_first" ] || return 1
	done
}
