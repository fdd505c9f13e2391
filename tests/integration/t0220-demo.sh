#!/bin/sh
# The demo federation that README's main command runs (packaging/run-demo
# -> packaging/demo) works with this build's binaries: six nodes on
# loopback, four daemons, a conflict the hub and ms2 make at once and the
# coordinator resolves.  Afterwards every node has the same main, the
# conflict is resolved on every node with ms2's value, the daemons still
# run, and 'packaging/demo --stop' stops them all.
set -eu
. "$(dirname "$0")/lib.sh"

demo=$tmp/demo
demo_sh=$CS_SOURCE_ROOT/packaging/demo
# The demo leaves its daemons running: stop them whatever happens.
stop_demo() {
	if [ -f "$demo/daemons" ]; then
		sh "$demo_sh" --stop "$demo" >/dev/null 2>&1 || true
	fi
	cleanup_story
}
trap stop_demo EXIT

run 0 env CARTOSYNC="$CARTOSYNC" CARTOSYNCD="$CARTOSYNCD" DEMO_TIMEOUT=300 \
	sh "$demo_sh" --dir "$demo"
out_has "the 6 nodes have the same main" "1 record with open conflicts" \
	"no open conflict on any node" "Stop the daemons:" \
	"packaging/demo --stop $demo"
eq "nodes that verify" "$(grep -c ': all valid$' "$tmp/out")" 6
cp "$tmp/out" "$tmp/demo.out"

# A second demo does not go into a directory that is not empty.
run 1 env CARTOSYNC="$CARTOSYNC" CARTOSYNCD="$CARTOSYNCD" \
	sh "$demo_sh" --dir "$demo"
err_has "is not empty"

nodes="mdm-be ms2 dj cefa alcs gadem"
dirs=
for n in $nodes; do
	dirs="$dirs $demo/$n"
done
# shellcheck disable=SC2086 # a list of directories
same_main $dirs || fail "the nodes do not have the same main"
ok

# The four daemons still run, and the serving ones have their URL.
[ -f "$demo/daemons" ] || fail "the demo wrote no list of its daemons"
eq "daemons" "$(cut -d' ' -f1 "$demo/daemons" | sort | tr '\n' ' ')" \
	"cefa dj mdm-be ms2 "
while read -r node pid _; do
	kill -0 "$pid" 2>/dev/null || fail "cartosyncd of $node (pid $pid) is not running"
	ok
done <"$demo/daemons"
for n in mdm-be dj; do
	[ -s "$demo/$n/serve.url" ] || fail "$n has no serve.url"
	ok
done

# The conflict: the hub and ms2 each edited the shared service from the
# same version; the coordinator resolved it with ms2's value.
svc=$(jq -r .id "$SAMPLE/shared/service-chr-al-farabi-urgences.json")
path=$(record_path "$svc" shared service)
edit_of() {
	git -C "$demo/gadem" log --format=%H --no-merges --author="^$1" \
		--grep="^Edit service $svc" main
}
hub_edit=$(edit_of mdm-be)
ms2_edit=$(edit_of ms2)
if [ -z "$hub_edit" ] || [ -z "$ms2_edit" ]; then
	fail "gadem lacks the two edits of the shared service"
fi
eq "the two edits' parent" "$(git -C "$demo/gadem" rev-parse "$hub_edit^")" \
	"$(git -C "$demo/gadem" rev-parse "$ms2_edit^")"
ms2_value=$(git -C "$demo/gadem" show "$ms2_edit:$path" | jq -r .fees_description)
hub_value=$(git -C "$demo/gadem" show "$hub_edit:$path" | jq -r .fees_description)
ne "the two values" "$ms2_value" "$hub_value"
resolution=$(git -C "$demo/gadem" log --format='%an %s' --no-merges main |
	grep -c "^mdm-be Resolve conflict on $svc") || true
eq "resolutions by the coordinator" "$resolution" 1
for n in $nodes; do
	run 0 cs -C "$demo/$n" --json conflicts
	jq_eq "open conflicts on $n" 'length' "$tmp/out" 0
	run 0 cs -C "$demo/$n" --json show "$svc"
	jq_eq "fees_description on $n" .fees_description "$tmp/out" "$ms2_value"
done
verify_ok "$demo/gadem" main

# --stop stops every daemon, which removes its serve.url.
cp "$demo/daemons" "$tmp/daemons"
run 0 sh "$demo_sh" --stop "$demo"
for n in mdm-be ms2 dj cefa; do
	out_has "stopped cartosyncd of $n"
done
while read -r node pid _; do
	if [ -r "/proc/$pid/cmdline" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "cartosyncd -C $demo/"; then
		fail "cartosyncd of $node (pid $pid) still runs after --stop"
	fi
	ok
done <"$tmp/daemons"
for n in mdm-be dj; do
	[ ! -e "$demo/$n/serve.url" ] || fail "$n/serve.url is still there"
	ok
done
[ ! -e "$demo/daemons" ] || fail "the list of daemons is still there"
run 0 sh "$demo_sh" --stop "$demo"
out_has "no daemons of $demo to stop"
done_ok
