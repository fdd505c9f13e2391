#!/usr/bin/python3
"""Rewrite the --help blocks of docs/cli.md from the program.

    tests/integration/tools/update-cli-doc.py build/cli/cartosync

Every '### COMMAND' section's first fenced block becomes the output of
'cartosync COMMAND --help'; t0900-docs-match-help checks the result.
"""
import re
import subprocess
import sys

cartosync = sys.argv[1]
path = sys.argv[2] if len(sys.argv) > 2 else "docs/cli.md"
doc = open(path, encoding="utf-8").read()
for command in re.findall(r"^### ([a-z-]+)$", doc, re.M):
    text = subprocess.run([cartosync, command, "--help"], check=True,
                          capture_output=True, text=True).stdout
    m = re.search(r"(^### " + command + r"\n\n```\n)(.*?)(```\n)", doc,
                  re.S | re.M)
    if m:
        doc = doc[:m.start(2)] + text + doc[m.end(2):]
open(path, "w", encoding="utf-8").write(doc)
