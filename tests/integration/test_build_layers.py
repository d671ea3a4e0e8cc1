"""The build's layers (issue 12 item 8): the per-folder CMake libraries
grant no dependency that ARCHITECTURE.md (tests/check-layers.py's ALLOWED)
does not, the daemon links no GPGME, and `ringmail bench` runs the
separate ringmail-bench executable (with a clear error when it is
missing)."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("RINGMAIL_SRCDIR",
                     os.path.dirname(os.path.dirname(
                         os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("RINGMAIL_BIN")
LAYER = re.compile(r"ringmail_layer\((\w+)\s+GLOBS\s+(\S+)"
                   r"(?:\s+USES\s+([^)]*))?\)", re.S)


def allowed_table():
    spec = importlib.util.spec_from_file_location(
        "check_layers", os.path.join(SRC, "tests", "check-layers.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ALLOWED


def check_cmake_graph():
    allowed = allowed_table()
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        text = f.read()
    layers = LAYER.findall(text)
    module = {t: os.path.dirname(g) for t, g, _ in layers}
    # Every folder module of ARCHITECTURE has its library.
    want = {m for m, rule in allowed.items() if isinstance(rule, set)}
    assert set(module.values()) == want, (sorted(module.values()), want)
    for target, _, uses in layers:
        for dep in uses.split():
            if not dep.startswith("ringmail_"):
                continue  # a third-party library
            assert dep in module, (target, dep)
            assert module[dep] in allowed[module[target]], \
                "%s (%s) links %s (%s), which ARCHITECTURE.md forbids" % (
                    target, module[target], dep, module[dep])
    agg = re.search(r"target_link_libraries\(ringmail_lib INTERFACE"
                    r"([^)]*)\)", text)
    assert agg and set(agg.group(1).split()) == set(module), agg


def ldd(path):
    r = subprocess.run(["ldd", path], capture_output=True, text=True,
                       check=True)
    return r.stdout


def check_binaries():
    bench_bin = os.path.join(os.path.dirname(BIN), "ringmail-bench")
    assert os.access(bench_bin, os.X_OK), bench_bin
    # The check sees GPGME where it is linked, and the daemon has none.
    assert "libgpgme" in ldd(bench_bin)
    out = ldd(BIN)
    assert out.count("gpgme") == 0, out
    env = dict(os.environ)
    env.pop("RINGMAIL_BENCH_BIN", None)
    r = subprocess.run([BIN, "bench", "--help"], capture_output=True,
                       text=True, env=env, timeout=30)
    assert r.returncode == 0 and "usage: ringmail bench" in r.stdout, r
    # $RINGMAIL_BENCH_BIN wins; a missing one is named in the error.
    d = tempfile.mkdtemp(prefix="ringmail-bench-bin-")
    try:
        missing = os.path.join(d, "no-such-bench")
        env["RINGMAIL_BENCH_BIN"] = missing
        r = subprocess.run([BIN, "bench", "--help"], capture_output=True,
                           text=True, env=env, timeout=30)
        assert r.returncode == 1, r
        assert "cannot run %s" % missing in r.stderr, r.stderr
        assert "RINGMAIL_BENCH_BIN" in r.stderr, r.stderr
        # A copy of the binary without ringmail-bench beside it.
        lone = os.path.join(d, "ringmail")
        shutil.copy(BIN, lone)
        env.pop("RINGMAIL_BENCH_BIN")
        r = subprocess.run([lone, "bench", "--help"], capture_output=True,
                           text=True, env=env, timeout=30)
        assert r.returncode == 1, r
        assert "cannot run %s" % os.path.join(d, "ringmail-bench") in \
            r.stderr, r.stderr
    finally:
        shutil.rmtree(d)


def main():
    check_cmake_graph()
    if BIN is None:
        print("SKIP test_build_layers binaries: RINGMAIL_BIN unset")
        sys.exit(77)
    check_binaries()
    print("PASS test_build_layers", flush=True)


if __name__ == "__main__":
    main()
