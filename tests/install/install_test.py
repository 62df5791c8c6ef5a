#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The examples, and swapio as an outside project sees it once installed.

  install_test.py example NAME BINDIR
      runs examples/NAME (copy, epoll, store, adam) from BINDIR on fresh
      data in a temporary directory and checks what it wrote;
  install_test.py consumers BUILD_DIR SOURCE_DIR
      `cmake --install` into a staging root (DESTDIR), then builds
      examples/ against it twice, as outside projects do: with CMake
      (find_package(swapio CONFIG)) and with its plain Makefile
      (pkg-config), and runs what each built against the staged library;
  install_test.py prefix BUILD_DIR
      `cmake --install --prefix` into a temporary prefix that is not on
      the loader's path, then runs PREFIX/bin/swapio with an empty
      LD_LIBRARY_PATH: its relative RUNPATH must find the library;
  install_test.py deb SOURCE_DIR
      builds the Debian packages (dpkg-buildpackage -b, nocheck) from a
      copy of the tree, runs lintian on them (errors and warnings fail),
      unpacks them into a fresh root (dpkg -x), builds the installed
      examples against that root with their Makefile and runs them.

Exit 0 pass, 1 fail, 77 skip.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile


def run(cmd, **kw):
    """Run @cmd, echoing it; raise on failure with its output shown."""
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    sys.stdout.write(r.stdout)
    sys.stdout.write(r.stderr)
    if r.returncode:
        raise RuntimeError(f"{cmd[0]} exited with {r.returncode}")
    return r.stdout


def random_file(path, size):
    with open(path, "wb") as f:
        f.write(os.urandom(size))


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def example(name, bindir, tmp, env=None):
    """Run example @name from @bindir in @tmp; raise if it misbehaves."""
    exe = os.path.join(bindir, "swapio-" + name)
    if name in ("copy", "copy-static"):
        src, dst = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
        # Not a multiple of the chunk or of 4096: the tail is odd.
        random_file(src, (9 << 20) + 4097)
        with open(dst, "wb") as f:	# a longer old file is truncated
            f.write(b"x" * (12 << 20))
        run([exe, src, dst, "4M"], env=env)
        if not same(src, dst):
            raise RuntimeError("the copy differs from the source")
    elif name == "epoll":
        run([exe, os.path.join(tmp, "epoll.bin"), "96", "256K"], env=env)
    elif name == "store":
        d = os.path.join(tmp, "store")
        run([exe, d], env=env)
        for f in ("lock", "data", "index"):
            if not os.path.exists(os.path.join(d, f)):
                raise RuntimeError(f"the store has no {f} file")
    elif name == "adam":
        d = os.path.join(tmp, "adam")
        out = run([exe, d, "6"], env=env)
        if "verified: yes" not in out:
            raise RuntimeError("the Adam run was not verified")
        if not os.path.exists(os.path.join(d, "data")):
            raise RuntimeError("the Adam run left no store")
    else:
        raise RuntimeError(f"no such example: {name}")


def consumers(build, source, tmp):
    cmake = os.environ.get("SWAPIO_CMAKE", "cmake")
    stage = os.path.join(tmp, "stage")
    env = dict(os.environ, DESTDIR=stage)
    run([cmake, "--install", build], env=env)
    cfg = glob.glob(stage + "/**/cmake/swapio/swapioConfig.cmake",
                    recursive=True)
    pcs = glob.glob(stage + "/**/pkgconfig/swapio.pc", recursive=True)
    if len(cfg) != 1 or len(pcs) != 1:
        raise RuntimeError(f"staged install lacks the package: {cfg} {pcs}")
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(cfg[0]))))
    libdir = os.path.dirname(os.path.dirname(pcs[0]))
    for f in ("include/swapio.h", "share/man/man3/swapio.3",
              "share/man/man1/swapio.1"):
        if not glob.glob(stage + "/**/" + f, recursive=True):
            raise RuntimeError(f"staged install lacks {f}")

    # An outside CMake project: examples/ as a user would copy it.
    cm = os.path.join(tmp, "cmake-project")
    shutil.copytree(os.path.join(source, "examples"), cm)
    run([cmake, "-S", cm, "-B", cm + "/build",
         "-DCMAKE_PREFIX_PATH=" + prefix])
    run([cmake, "--build", cm + "/build"])
    check_linked(cm + "/build/swapio-copy", stage)
    for name in ("copy", "copy-static", "epoll", "store"):
        example(name, cm + "/build", tempfile.mkdtemp(dir=tmp))

    # The version file: another major version is refused.
    v1 = os.path.join(tmp, "wants-1.0")
    os.makedirs(v1)
    with open(os.path.join(v1, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.18)\n"
                "project(v1 LANGUAGES C)\n"
                "find_package(swapio 1.0 CONFIG REQUIRED)\n")
    r = subprocess.run([cmake, "-S", v1, "-B", v1 + "/build",
                        "-DCMAKE_PREFIX_PATH=" + prefix],
                       capture_output=True, text=True)
    if r.returncode == 0 or "version" not in r.stderr.lower():
        raise RuntimeError("find_package(swapio 1.0) accepted 0.x: "
                           + r.stderr)
    print("find_package(swapio 1.0): refused, as it should be")

    # An outside Makefile project, through pkg-config and the staging
    # root (PKG_CONFIG_SYSROOT_DIR prefixes the .pc file's paths).
    mk = os.path.join(tmp, "make-project")
    shutil.copytree(os.path.join(source, "examples"), mk)
    penv = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                PKG_CONFIG_SYSROOT_DIR=stage)
    penv.pop("PKG_CONFIG_LIBDIR", None)
    run(["make", "-C", mk], env=penv)
    renv = dict(os.environ, LD_LIBRARY_PATH=libdir)
    check_linked(mk + "/swapio-copy", stage, renv)
    for name in ("copy", "epoll", "store", "adam"):
        example(name, mk, tempfile.mkdtemp(dir=tmp), renv)


def prefix(build, tmp):
    cmake = os.environ.get("SWAPIO_CMAKE", "cmake")
    pre = os.path.join(tmp, "prefix")
    run([cmake, "--install", build, "--prefix", pre])
    exe = os.path.join(pre, "bin", "swapio")
    dyn = run(["readelf", "-d", exe])
    paths = [l for l in dyn.splitlines() if "RUNPATH" in l or "RPATH" in l]
    if not paths or "$ORIGIN/" not in paths[0] or tmp in paths[0]:
        raise RuntimeError(f"{exe} has no relative RUNPATH: {paths}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LD_")}
    env["LD_LIBRARY_PATH"] = ""
    out = run([exe, "--version"], env=env)
    if not out.startswith("swapio 0."):
        raise RuntimeError(f"swapio --version: {out}")
    check_linked(exe, pre, env)


def copy_tree(source, dest):
    """The tracked and untracked-but-not-ignored files of @source."""
    r = subprocess.run(["git", "-C", source, "ls-files", "-co",
                        "--exclude-standard", "-z"], capture_output=True)
    if r.returncode:	# not a git checkout: all but the build outputs
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(
            "build*", ".venv", ".git", "__pycache__", "dist"))
        return
    for rel in r.stdout.decode().split("\0"):
        src = os.path.join(source, rel)
        if not rel or not os.path.isfile(src):
            continue	# a file deleted but not yet committed
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def deb(source, tmp):
    tree = os.path.join(tmp, "swapio")
    copy_tree(source, tree)
    jobs = os.cpu_count() or 1
    env = dict(os.environ, DEB_BUILD_OPTIONS=f"nocheck parallel={jobs}")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree, env=env)
    changes = glob.glob(os.path.join(tmp, "swapio_*.changes"))
    debs = {os.path.basename(d).split("_")[0]: d
            for d in glob.glob(os.path.join(tmp, "*.deb"))}
    want = {"libswapio0", "libswapio-dev", "swapio"}
    if len(changes) != 1 or not want <= debs.keys():
        raise RuntimeError(f"packages built: {sorted(debs)}")
    if shutil.which("lintian"):
        out = run(["lintian", "--fail-on", "error,warning", changes[0]])
        if any(l[:2] in ("E:", "W:") for l in out.splitlines()):
            raise RuntimeError("lintian found errors or warnings")
    else:
        print("lintian not found (Debian: lintian); not run")

    root = os.path.join(tmp, "root")
    for p in sorted(want):
        run(["dpkg", "-x", debs[p], root])
    arch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()
    libdir = os.path.join(root, "usr/lib", arch)
    for f in ("usr/include/swapio.h", f"usr/lib/{arch}/libswapio.so.0",
              f"usr/lib/{arch}/libswapio.a",
              f"usr/lib/{arch}/cmake/swapio/swapioConfig.cmake",
              "usr/share/man/man3/swapio_op_wait.3.gz",
              "usr/share/man/man1/swapio.1.gz", "usr/bin/swapio"):
        if not os.path.exists(os.path.join(root, f)):
            raise RuntimeError(f"the packages lack /{f}")

    # The examples as installed, built against the unpacked root only.
    ex = os.path.join(tmp, "examples")
    shutil.copytree(os.path.join(root, "usr/share/doc/libswapio-dev/"
                                 "examples"), ex)
    penv = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=root,
                PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "swapio"], env=penv)
    if root not in flags:
        raise RuntimeError(f"pkg-config does not point into the root: "
                           f"{flags}")
    run(["make", "-C", ex, "swapio-copy", "swapio-store"], env=penv)
    renv = dict(os.environ, LD_LIBRARY_PATH=libdir)
    check_linked(os.path.join(ex, "swapio-copy"), root, renv)
    example("copy", ex, tempfile.mkdtemp(dir=tmp), renv)
    example("store", ex, tempfile.mkdtemp(dir=tmp), renv)
    out = run([os.path.join(root, "usr/bin/swapio"), "--version"],
              env=renv)
    if not out.startswith("swapio 0."):
        raise RuntimeError(f"swapio --version: {out}")
    check_linked(os.path.join(root, "usr/bin/swapio"), root, renv)
    # On the system's path the command needs no RUNPATH (lintian's
    # custom-library-search-path): debian/rules leaves it out.
    dyn = run(["readelf", "-d", os.path.join(root, "usr/bin/swapio")])
    if "RUNPATH" in dyn or "(RPATH)" in dyn:
        raise RuntimeError("the packaged swapio carries a RUNPATH")


def check_linked(exe, stage, env=None):
    """@exe must load libswapio.so.0 from the staging root."""
    out = run(["ldd", exe], env=env)
    lines = [l for l in out.splitlines() if "libswapio.so.0" in l]
    if not lines or stage not in lines[0]:
        raise RuntimeError(f"{exe} does not use the staged libswapio")


def main(argv):
    if len(argv) == 4 and argv[1] == "example":
        what = lambda tmp: example(argv[2], argv[3], tmp)
    elif len(argv) == 4 and argv[1] == "consumers":
        for tool in ("cmake", "make", "pkg-config", "ldd"):
            if not shutil.which(tool):
                print(f"{tool} not found; skipping")
                return 77
        what = lambda tmp: consumers(argv[2], argv[3], tmp)
    elif len(argv) == 3 and argv[1] == "prefix":
        for tool in ("cmake", "readelf", "ldd"):
            if not shutil.which(tool):
                print(f"{tool} not found; skipping")
                return 77
        what = lambda tmp: prefix(argv[2], tmp)
    elif len(argv) == 3 and argv[1] == "deb":
        for tool in ("dpkg-buildpackage", "dh", "dpkg", "make",
                     "pkg-config", "ldd"):
            if not shutil.which(tool):
                print(f"{tool} not found (Debian: dpkg-dev, debhelper, "
                      f"pkgconf); skipping")
                return 77
        what = lambda tmp: deb(argv[2], tmp)
    else:
        print(__doc__)
        return 1
    with tempfile.TemporaryDirectory(prefix="swapio-install-") as tmp:
        try:
            what(tmp)
        except (RuntimeError, OSError) as e:
            print(f"FAIL: {e}")
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
