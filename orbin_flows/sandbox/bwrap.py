"""A python step's process: bubblewrap (Debian's ``bubblewrap``) with every namespace
unshared (user, pid, network, ipc, uts, cgroup), no capabilities, an empty environment and a
read-only filesystem of /usr, the C library and Python's standard library only: none of
Orbin's files, its virtualenv, ``ORBIN_HOME`` or the host's /proc. The network namespace has
only loopback; the one way out is the step's egress proxy, a unix socket bound in at
``/run/orbin/egress.sock`` that ``urllib`` is pointed at. Limits (address space, CPU, open
files, processes, output) are set by the runner before the snippet runs; the caller adds the
wall-clock timeout. Without bubblewrap python steps fail closed, never unsandboxed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path

from tenancy.egress.proxy import EgressProxy

SOCKET = "/run/orbin/egress.sock"
PY_ROOT = "/opt/python"
MAX_OPEN_FILES = 256
MAX_TASKS = 64  # processes and threads (RLIMIT_NPROC, counted per user namespace)
NOBODY = 65534
ENV = {"PATH": "/usr/bin:/bin"}  # bubblewrap's own environment (its pid 1 keeps it)


class SandboxUnavailable(RuntimeError):
    """Python steps cannot be sandboxed on this machine; the message names what is missing."""


# Limits first, then the way out (a loopback listener inside the sandbox that forwards to
# the egress proxy's unix socket, set as urllib's proxy), then the snippet.
RUNNER = r"""
import json, os, resource, socket, sys, threading, urllib.request
memory, cpu, nproc, nofile = (int(a) for a in sys.argv[1:5])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
_SOCK = "/run/orbin/egress.sock"
def _pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
def _serve(srv):
    while True:
        c, _ = srv.accept()
        u = socket.socket(socket.AF_UNIX)
        try:
            u.connect(_SOCK)
        except OSError:
            c.close(); u.close(); continue
        threading.Thread(target=_pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=_pipe, args=(u, c), daemon=True).start()
if os.path.exists(_SOCK):
    _srv = socket.socket(); _srv.bind(("127.0.0.1", 0)); _srv.listen(16)
    _proxy = "http://127.0.0.1:%d" % _srv.getsockname()[1]
    threading.Thread(target=_serve, args=(_srv,), daemon=True).start()
    urllib.request.install_opener(urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": _proxy, "https": _proxy})))
del memory, cpu, nproc, nofile
os.environ.pop("PWD", None)
data = json.loads(sys.stdin.read())
scope = {"__name__": "orbin_step", "input": data["input"]}
import linecache, traceback
linecache.cache["<step>"] = (len(data["code"]), None, data["code"].splitlines(True), "<step>")
try:
    exec(compile(data["code"], "<step>", "exec"), scope)
    if callable(scope.get("main")):
        result = scope["main"](data["input"])
    else:
        result = scope.get("output")
    text = json.dumps(result, default=str)
except (SystemExit, KeyboardInterrupt):
    raise
except BaseException as e:
    # The snippet's own frames only: this runner and the standard library are not its code.
    tb = traceback.TracebackException.from_exception(e)
    todo, seen = [tb], set()
    while todo:
        t = todo.pop()
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        t.stack = traceback.StackSummary.from_list([f for f in t.stack if f.filename == "<step>"])
        todo += [t.__cause__, t.__context__, *(getattr(t, "exceptions", None) or [])]
    said = "".join(tb.format_exception_only()).strip()
    sys.stderr.write("\n__STEP_ERROR__" + json.dumps({
        "message": said.splitlines()[-1] if isinstance(e, SyntaxError) else said,
        "stack": "".join(tb.format()).strip()[-8000:],
    }) + "\n")
    sys.stderr.flush()
    os._exit(1)
sys.stdout.write("\n__STEP_OUTPUT__" + text)
"""


def _python() -> tuple[list[str], str]:
    """bwrap arguments that bind the base interpreter and its standard library (not the
    virtualenv, not site-packages), and the interpreter's path inside the sandbox."""
    exe = Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))
    if str(exe).startswith("/usr/"):
        return [], str(exe)
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    lib = base / "lib"
    args = ["--ro-bind", str(exe), f"{PY_ROOT}/bin/python3"]
    args += ["--ro-bind", str(lib / version), f"{PY_ROOT}/lib/{version}"]
    if (lib / version / "site-packages").is_dir():
        args += ["--tmpfs", f"{PY_ROOT}/lib/{version}/site-packages"]
    for so in sorted(lib.glob("libpython*.so*")):
        # Also at its own path: the interpreter's RUNPATH names it there (else the loader
        # would find another build's libpython in /usr/lib).
        args += ["--ro-bind", str(so), f"{PY_ROOT}/lib/{so.name}", "--ro-bind", str(so), str(so)]
    return args, f"{PY_ROOT}/bin/python3"


def _filesystem() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin", "lib32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    for path in ("/etc/ssl", "/etc/ca-certificates"):  # TLS through the tunnel
        if Path(path).is_dir():
            args += ["--ro-bind", path, path]
    return args


def _identity() -> list[str]:
    """Namespaces and who the snippet runs as. A worker running as root (whose uid the kernel
    exempts from RLIMIT_NPROC, also inside a user namespace it maps to) makes the namespaces
    itself and drops to nobody with setpriv, with no capabilities and no_new_privs; any
    other user gets a user namespace in which it is nobody."""
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxUnavailable(
                "python steps run by root need util-linux's `setpriv` to drop to nobody"
            )
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        namespaces += ["--unshare-cgroup-try"]
        drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        # setpriv lives in /usr: the path is the same inside the sandbox.
        return namespaces + ["--"] + drop
    namespaces = ["--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    return namespaces + ["--disable-userns", "--cap-drop", "ALL", "--"]


def command(runner_args: list[str], proxy_socket: str | None) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "python steps need bubblewrap (the `bwrap` command) to run sandboxed, and it is "
            "not installed: install Debian's `bubblewrap` (make install does, as root)"
        )
    identity = _identity()
    py_args, python = _python()
    args = [bwrap, "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"]
    args += [*_filesystem(), *py_args]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp"]
    args += ["--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8"]
    args += ["--setenv", "PATH", "/usr/bin:/bin"]
    if proxy_socket is not None:
        args += ["--dir", "/run/orbin", "--ro-bind", proxy_socket, SOCKET]
    args += ["--remount-ro", "/", *identity]
    return [*args, python, "-I", "-S", "-B", "-c", RUNNER, *runner_args]


@lru_cache(maxsize=1)
def _probe() -> str | None:
    """None when a sandbox can be made here; else why not (checked once per process)."""
    try:
        cmd = command(["0", "0", "0", "0"], None)
    except SandboxUnavailable as exc:
        return str(exc)
    probe = [*cmd[: cmd.index("-c")], "-c", "pass"]
    try:
        out = subprocess.run(probe, env=ENV, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not be started: {exc}"
    if out.returncode != 0:
        why = out.stderr.decode(errors="replace").strip()[-300:]
        return (
            f"bubblewrap cannot make a sandbox on this machine ({why}); it needs user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0)"
            " or root"
        )
    return None


def require() -> None:
    """Raise SandboxUnavailable unless python steps can be sandboxed here."""
    why = _probe()
    if why is not None:
        _probe.cache_clear()  # installed later: the next step sees it
        raise SandboxUnavailable(why)


@contextlib.asynccontextmanager
async def python_process(
    *, memory_bytes: int, cpu_seconds: int, network: bool = True
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A sandboxed interpreter running the step runner, reading ``{"code", "input"}`` JSON
    on stdin; its egress proxy lives as long as the block."""
    await asyncio.to_thread(require)
    limits = [str(memory_bytes), str(cpu_seconds), str(MAX_TASKS), str(MAX_OPEN_FILES)]
    with tempfile.TemporaryDirectory(prefix="orbin-sandbox-") as tmp:
        os.chmod(tmp, 0o711)  # nobody (the snippet) reaches the socket, no one lists it
        sock = os.path.join(tmp, f"egress-{secrets.token_hex(8)}.sock")
        proxy = EgressProxy(sock) if network else None
        async with proxy if proxy is not None else contextlib.nullcontext():
            if network:
                os.chmod(sock, 0o666)
            proc = await asyncio.create_subprocess_exec(
                *command(limits, sock if network else None),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=ENV,
                cwd="/",
                start_new_session=True,
            )
            try:
                yield proc
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, 9)
                    await proc.wait()
