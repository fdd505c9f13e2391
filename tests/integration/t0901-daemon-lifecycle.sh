#!/bin/sh
# cartosyncd opens its node, says it is ready, re-reads its configuration on
# SIGHUP (keeping the old one if the new one is broken), and stops cleanly
# on SIGTERM; a packing of its store that fails backs off; on a directory
# that is not a node it fails with a clear error.
set -eu
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; [ -f log ] && cat log; exit 1; }

wait_for() {
	# wait_for PATTERN: up to 10 s for PATTERN in the daemon's log
	i=0
	while ! grep -q "$1" log 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "no '$1' in the daemon's log"
		sleep 0.1
	done
}

"$CARTOSYNC" keys generate root 2>/dev/null
"$CARTOSYNC" -C node init --org mdm-be --genesis --root-key root.pub 2>/dev/null

"$CARTOSYNCD" -C node 2>log &
pid=$!
wait_for "ready"
grep -q "node mdm-be at node: genesis" log || fail "no node line"

kill -HUP "$pid"
wait_for "re-reading the configuration"

# A broken configuration on SIGHUP: the daemon keeps running on the old one.
cp node/cartosync.conf conf.saved
echo "this is not a setting" >>node/cartosync.conf
kill -HUP "$pid"
wait_for "keeping the old configuration"
kill -0 "$pid" || fail "the daemon died on a broken configuration"
cp conf.saved node/cartosync.conf

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
wait_for "SIGTERM: stopping"

# A packing that fails (no git on the daemon's PATH: a node that does not
# serve needs none) is logged and retried with backoff, not every
# interval; the daemon goes on.
printf '\n[sync]\ninterval = 1\nbackoff-max = 60\n' >>node/cartosync.conf
mkdir many
for i in $(seq 1 300); do echo "{\"n\": $i}" >"many/$i.json"; done
ls "$tmp"/many/*.json | git -C node hash-object -w --stdin-paths >many.ids
tree=$(awk '{printf "100644 blob %s\t%d.json\n", $1, NR}' many.ids |
	git -C node mktree)
commit=$(git -C node -c user.name=t -c user.email=t@example.org \
	commit-tree -m many "$tree") || fail "git commit-tree"
git -C node update-ref refs/test/many "$commit"
: >log
env PATH=/nonexistent "$CARTOSYNCD" -C node 2>log &
pid=$!
wait_for "store: cannot run git"
sleep 5
kill -0 "$pid" || fail "the daemon died of a failing packing"
tries=$(grep -c "store: cannot run git" log)
# Every interval would be 5 or 6 tries; backing off (1, 2, 4 s) at most 3.
[ "$tries" -le 3 ] || fail "the failing packing was tried $tries times in 5 s"
kill -TERM "$pid"
wait "$pid" || fail "exit status $? after SIGTERM"
pid=

rc=0
"$CARTOSYNCD" -C "$tmp/nothing" 2>log2 || rc=$?
[ $rc -eq 1 ] || fail "exit status $rc on a missing node, expected 1"
grep -q "is not a cartosync node" log2 || { cat log2; fail "unclear error"; }

rc=0
"$CARTOSYNCD" --bogus 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "exit status $rc for a usage error, expected 2"
echo "ok"
