#!/bin/sh
# Fail if any C source differs from the repo's .clang-format.
set -eu
cd "$(dirname "$0")/.."
CF=$(command -v clang-format-14 || command -v clang-format)
files=$(git ls-files '*.c' '*.h' '*.cc' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
bad=0
for f in $files; do
	[ -f "$f" ] || continue
	if ! "$CF" --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "check-format: $f is not formatted (run: $CF -i $f)"
		bad=1
	fi
done
[ "$bad" = 0 ] && echo "check-format: ok"
exit "$bad"
