#!/usr/bin/python3
"""Fail on an include that crosses the layers ARCHITECTURE.md allows.

Every source file belongs to the module of its folder (core, core/accounts,
smtp/queue, ...); a quoted include "dir/file.h" names the module it comes
from. A module may include only itself and what ALLOWED lists for it.
Usage: check-layers.py [ROOT]  (default: the repository this script is in).
Exit 0 when clean, 1 with one line per forbidden include."""

import os
import re
import sys

# module -> the modules it may use (itself is always allowed).
ALLOWED = {
    "core": set(),
    "core/accounts": {"core"},
    "core/auth": {"core", "core/accounts"},
    "core/dovecot": {"core"},
    "core/http": {"core"},
    "filter": {"core"},
    "smtp": {"core", "core/accounts", "core/auth", "core/dovecot",
             "filter"},
    "smtp/queue": {"core", "core/accounts", "core/http", "filter", "smtp"},
    "imap-proxy": {"core", "core/accounts", "core/auth", "core/dovecot"},
    "push": {"core", "core/accounts", "core/http"},
    "www": {"core", "core/accounts", "core/auth", "core/http"},
    # The binary uses everything; the benchmark client everything but it.
    "app": None,
    "bench": "all-but-app",
}
CHECKED_TOPS = ("core", "smtp", "imap-proxy", "filter", "push", "www", "app",
                "bench")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path):
    """The module a repository-relative path belongs to, or None."""
    parts = path.split("/")
    if parts[0] not in CHECKED_TOPS:
        return None
    if parts[0] == "bench":
        return "bench"
    if len(parts) >= 3 and "/".join(parts[:2]) in ALLOWED:
        return "/".join(parts[:2])
    return parts[0]


def allowed(src, dst):
    if src == dst:
        return True
    rule = ALLOWED[src]
    if rule is None:
        return True
    if rule == "all-but-app":
        return dst != "app"
    return dst in rule


def check(root):
    bad = []
    for top in CHECKED_TOPS:
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h", ".cc")):
                    continue
                full = os.path.join(d, f)
                rel = os.path.relpath(full, root)
                src = module_of(rel)
                with open(full, errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m or "/" not in m.group(1):
                            continue
                        dst = module_of(m.group(1))
                        if dst is not None and not allowed(src, dst):
                            bad.append("%s:%d: %s may not include %s "
                                       "(module %s)" %
                                       (rel, n, src, m.group(1), dst))
    return bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad = check(root)
    for b in bad:
        print("check-layers: " + b)
    if bad:
        print("check-layers: %d forbidden include(s); the allowed "
              "dependencies are in ARCHITECTURE.md (Folders)" % len(bad))
        return 1
    print("check-layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
