#!/bin/sh
# History on a USB key: two nodes that never connect converge through git
# bundles (docs/sync.md "Bundles").  A bundle is verified on arrival like a
# fetch; stock git reads ours; a bundle with a forged commit has its valid
# part kept and the rest quarantined; a truncated bundle or one that needs
# a commit the node lacks is refused with a clear error, nothing kept.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
run 0 cs -C ms2 init --org ms2 --join coord \
	--genesis-id "$(git -C coord rev-list --max-parents=0 main)"
cs -C ms2 keys public >ms2.pub || fail "keys public"
run 0 cs -C coord members add --org ms2 --role member --key ms2.pub
add_sample coord "$SAMPLE/mdm-be/organization-mdm-be.json"

# coord -> key -> ms2
run 0 cs -C coord --json bundle create "$tmp/usb1.bundle"
err_has "wrote main to"
git clone -q "$tmp/usb1.bundle" plain || fail "stock git cannot clone our bundle"
eq "stock git's clone" "$(git -C plain rev-parse HEAD)" "$(main_of coord)"
run 0 cs -C ms2 bundle apply "$tmp/usb1.bundle" --peer coord
err_has "verified"
eq "ms2's main after the bundle" "$(main_of ms2)" "$(main_of coord)"

# ms2 edits; only what is new travels back (--since what coord holds).
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
run 0 cs -C ms2 bundle create "$tmp/usb2.bundle" --since "$(main_of coord)"
full=$(wc -c <"$tmp/usb1.bundle")
inc=$(wc -c <"$tmp/usb2.bundle")
[ "$inc" -lt "$full" ] || fail "an incremental bundle ($inc bytes) is not smaller than a full one ($full)"
ok
run 0 cs -C coord bundle apply "$tmp/usb2.bundle" --peer ms2
eq "converged" "$(main_of coord)" "$(main_of ms2)"
verify_ok coord
verify_ok ms2

# An incremental bundle needs its prerequisites.
genesis other mdm-be root1
run 1 cs -C other bundle apply "$tmp/usb2.bundle"
err_has "needs commit" "which this node does not hold" "nothing was kept"

# A forged commit on top (unsigned, made with stock git), bundled with
# stock git: the valid history is kept, the forgery quarantined.
git clone -q ms2 wt || fail "clone"
git -C wt -c user.name=ms2 -c user.email=x@example.org \
	commit -q --allow-empty -m "forged" || fail "commit"
forged=$(git -C wt rev-parse HEAD)
git -C wt bundle create -q "$tmp/forged.bundle" main || fail "git bundle"
run 0 cs -C ms2 --json status
before=$(main_of coord)
run 3 cs -C coord bundle apply "$tmp/forged.bundle" --peer usb
err_has "commit $forged" "rejected, kept in quarantine"
eq "coord's main after the forged bundle" "$(main_of coord)" "$before"
if git -C coord cat-file -e "$forged" 2>/dev/null; then
	fail "the forged commit entered the served store"
fi
run 0 cs -C coord --json status
jq_eq "quarantine listed" '.quarantine[0].issues[0].commit' "$tmp/out" "$forged"
jq_eq "quarantine peer" '.quarantine[0].peer' "$tmp/out" usb
err_has "quarantine:" "commit" "rejected"

# A truncated bundle: refused, nothing kept.
head -c "$((full / 2))" "$tmp/usb1.bundle" >"$tmp/cut.bundle"
run 1 cs -C ms2 bundle apply "$tmp/cut.bundle"
err_has "broken pack" "nothing was kept"
ls ms2/staging 2>/dev/null | grep -q . && fail "a staging store was left behind"
ok
# Not a bundle at all.
echo "hello" >"$tmp/not.bundle"
run 1 cs -C ms2 bundle apply "$tmp/not.bundle"
err_has "is not a git bundle"
verify_ok coord main
done_ok
