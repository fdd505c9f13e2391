#!/bin/sh
# An honest node's acknowledged edits vanish from main when it learns that
# a partner's edit it had merged was made concurrently with that partner's
# revocation.  DESIGN §5: "A node whose own edits stand on a commit that
# turned out invalid re-applies them on valid history, re-signed, so honest
# work is not lost"; §6: an edit is "held by its own ref until it is in main".
set -eu
CS=${CARTOSYNC:-/work/main/build/cli/cartosync}
export CARTOSYNC_SCHEMA_DIR=${CARTOSYNC_SCHEMA_DIR:-/work/main/schema}
export GIT_CONFIG_NOSYSTEM=1 HOME=${TMPDIR:-/tmp}
d=$(mktemp -d); cd "$d"
cs() { "$CS" "$@" 2>/dev/null; }
cat >ed.sh <<'E'
#!/bin/sh
jq --arg v "$V" '.name = $v' "$1" >"$1.t" && mv "$1.t" "$1"
E
chmod +x ed.sh
cs keys generate root
cs -C coord init --org mdm-be --genesis --root-key root.pub
for o in ms2 alcs; do
	cs -C $o init --org $o --join coord
	cs -C $o keys public >$o.pub
	cs -C coord members add --org $o --role member --key $o.pub
done
printf '{"x_record_type":"organization","x_owner":"shared","name":"HCR","description":"d"}' >r.json
cs -C coord add r.json
id=$(git -C coord show main --stat --format= | sed -n 's#.*/\([0-9a-f-]\{36\}\)\.json.*#\1#p')
cs -C ms2 fetch coord --peer coord
cs -C alcs fetch coord --peer coord

V=by-ms2 EDITOR=./ed.sh cs -C ms2 edit "$id"         # ms2 edits
cs -C alcs fetch ms2 --peer ms2                         # alcs takes it
cs -C coord members revoke "$(ssh-keygen -l -f ms2/keys/signing_key | cut -d' ' -f2)"
V=by-alcs EDITOR=./ed.sh "$CS" -C alcs --json edit "$id" >ack.json 2>/dev/null
acked=$(jq -r .commit ack.json)
echo "alcs's edit acknowledged: $acked"
"$CS" -C alcs fetch coord --peer coord; echo "fetch exit status: $?"
if git -C alcs merge-base --is-ancestor "$acked" main; then
	echo "OK: alcs's edit is in main"
else
	echo "BUG: alcs's acknowledged edit $acked is in no ref of alcs:"
	git -C alcs for-each-ref
	git -C alcs fsck --unreachable --no-reflogs 2>/dev/null | grep commit
fi
rm -rf "$d"
