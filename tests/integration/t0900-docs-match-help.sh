#!/bin/sh
# docs/cli.md carries every command's --help text verbatim, so the manual
# never drifts from the program.
set -eu
doc="$CS_SOURCE_ROOT/docs/cli.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for c in $("$CARTOSYNC" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p'); do
	"$CARTOSYNC" "$c" --help >"$tmp/help"
	if ! /usr/bin/python3 - "$tmp/help" "$doc" <<'PY'
import sys
help_text = open(sys.argv[1], encoding="utf-8").read()
doc = open(sys.argv[2], encoding="utf-8").read()
sys.exit(0 if help_text in doc else 1)
PY
	then
		echo "docs/cli.md does not carry 'cartosync $c --help'"
		status=1
	fi
done
# Every command the program lists is documented.
"$CARTOSYNC" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p' | while read -r c; do
	grep -q "^### $c\$" "$doc" || { echo "docs/cli.md lacks '$c'"; exit 1; }
done
exit $status
