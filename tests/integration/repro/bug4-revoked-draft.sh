#!/bin/sh
# A partner whose node already holds its own key's revocation resumes an
# edit it started before: 'cartosync edit' says "committed", exits 0, and
# keeps the edit in refs/cartosync/edits/ -- an edit its own node rejects
# at once (the preflight judges the edit as of its base only, not against
# the revocations the node holds: protocol.md §4 rule 8).  From then on
# every merge says "1 held head left out" and 'cartosync verify' exits 3 on
# that node, forever.
set -u
CS=${CARTOSYNC:-/work/main/build/cli/cartosync}
export CARTOSYNC_SCHEMA_DIR=${CARTOSYNC_SCHEMA_DIR:-/work/main/schema}
export GIT_CONFIG_NOSYSTEM=1 HOME=${TMPDIR:-/tmp}
d=$(mktemp -d); cd "$d"
cs() { "$CS" "$@" 2>/dev/null; }
cat >ed.sh <<'E'
#!/bin/sh
[ -n "${FAIL:-}" ] && exit 1
jq '.name = "late"' "$1" >"$1.t" && mv "$1.t" "$1"
E
chmod +x ed.sh
cs keys generate root
cs -C coord init --org mdm-be --genesis --root-key root.pub
cs -C ms2 init --org ms2 --join coord
cs -C ms2 keys public >ms2.pub
cs -C coord members add --org ms2 --role member --key ms2.pub
printf '{"x_record_type":"organization","x_owner":"shared","name":"HCR","description":"d"}' >r.json
cs -C coord add r.json
id=$(git -C coord show main --stat --format= | sed -n 's#.*/\([0-9a-f-]\{36\}\)\.json.*#\1#p')
cs -C ms2 fetch coord --peer coord
FAIL=1 EDITOR=./ed.sh cs -C ms2 edit "$id"            # a draft, kept
cs -C coord members revoke "$(ssh-keygen -l -f ms2/keys/signing_key | cut -d' ' -f2)"
cs -C ms2 fetch coord --peer coord                     # ms2 learns it
EDITOR=./ed.sh "$CS" -C ms2 edit "$id"; echo "edit exit status: $? (expected 1: this key cannot write)"
"$CS" -C ms2 verify; echo "verify exit status: $?"
git -C ms2 for-each-ref refs/cartosync
rm -rf "$d"
