"""The access-audit runner: a step's script run under a Python audit hook that logs what it attempts.

``python audit.py LOG script [args]`` installs a :func:`sys.addaudithook` hook, then runs ``script`` as
``__main__`` (so the code sees ``sys.argv == [script, *args]`` as without the runner). The hook appends one
JSON line to ``LOG`` (opened before the code runs, ``O_APPEND``; forked children share it) for each distinct:

- ``read`` / ``write`` of a path outside what a step may read / write (``forbidden: true``), and every read
  of the public data (``data: true``: the data-usage check wants to know which files the code read);
- ``list`` of a folder outside what a step may read;
- ``network``: an IP connection, datagram or name lookup (a Unix socket is not network);
- ``exec``: a process started (its reads and writes are not seen: only this interpreter is hooked).

Allowed reads: the workspace (the working directory at start, data included), the Python installation, the
system folders (``/usr``, ``/lib*``, ``/bin``, ``/proc``, ``/dev``, ``/sys``), a few ``/etc`` files libraries
read (time zone, users, hosts), and the temporary folders. Allowed writes: the workspace, the temporary
folders and ``/dev``. The log is a record of attempts, not proof of absence: native code (a C library opening
a file itself) and child processes bypass the hook, and code that wants to can write to the log. The harness
reads it back after the step (``dojoflow/infra/sandbox/access.py``).

Standard library only: dojoflow is not importable inside the sandbox.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import traceback

MAX_EVENTS = 500  # distinct events logged per step (a loop over many files must not fill the disk)
ETC_ALLOWED = frozenset({"localtime", "timezone", "passwd", "group", "hosts", "nsswitch.conf", "os-release",
                         "mime.types", "ld.so.cache", "protocols", "host.conf", "resolv.conf", "gai.conf",
                         "fonts", "alternatives", "ssl", "ca-certificates", "matplotlibrc"})
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/proc", "/dev", "/sys",
               "/opt/dojoflow")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


class AccessLog:
    """The hook's state: what may be read and written, what was logged already."""

    def __init__(self, log_path: str) -> None:
        self.cwd = os.getcwd()
        self.data = tuple({os.path.join(self.cwd, "data"), os.path.realpath(os.path.join(self.cwd, "data"))})
        temp = {"/tmp", "/dev/shm", "/var/tmp", tempfile.gettempdir(), os.environ.get("TMPDIR", "/tmp")}
        self.write_ok = (self.cwd, os.path.realpath(self.cwd), "/dev", *sorted(temp))
        python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
                  *(p for p in sys.path if p and os.path.isabs(p))}
        self.read_ok = (*self.write_ok, *self.data, *SYSTEM_READ, *sorted(python),
                        *(os.path.realpath(p) for p in sorted(python)))
        self.seen: set[tuple[str, str]] = set()
        self.fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.busy = False

    def _absolute(self, path: object) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or not path:
            return None
        return os.path.normpath(os.path.join(os.getcwd(), path))

    def _etc_allowed(self, path: str) -> bool:
        parts = path.split("/")
        return len(parts) > 2 and parts[1] == "etc" and parts[2] in ETC_ALLOWED

    def emit(self, kind: str, target: str, **extra: object) -> None:
        """Log one event, once (at most :data:`MAX_EVENTS` distinct ones)."""
        key = (kind, target)
        if key in self.seen or len(self.seen) >= MAX_EVENTS:
            return
        self.seen.add(key)
        line = json.dumps({"kind": kind, "target": target, **extra}) + "\n"
        try:
            os.write(self.fd, line.encode())
        except OSError:
            pass

    def path_event(self, path: object, write: bool) -> None:
        """A read or write of ``path``: logged when forbidden, or when it reads the public data."""
        absolute = self._absolute(path)
        if absolute is None:
            return
        if write:
            if not _under(absolute, self.write_ok):
                self.emit("write", absolute, forbidden=True)
            return
        if _under(absolute, self.data):
            self.emit("read", os.path.relpath(absolute, self.cwd) if absolute.startswith(self.cwd) else absolute,
                      data=True)
        elif not (_under(absolute, self.read_ok) or self._etc_allowed(absolute)):
            self.emit("read", absolute, forbidden=True)

    def hook(self, event: str, args: tuple) -> None:
        """The audit hook (re-entrant calls, from the hook's own work, are ignored)."""
        if self.busy:
            return
        self.busy = True
        try:
            self._dispatch(event, args)
        except Exception:  # noqa: BLE001 - the hook must never break the code it watches
            pass
        finally:
            self.busy = False

    def _dispatch(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and bool(flags & WRITE_FLAGS))
            self.path_event(path, write)
        elif event in ("os.listdir", "os.scandir"):
            absolute = self._absolute(args[0] if args and args[0] is not None else ".")
            if absolute and not (_under(absolute, self.read_ok) or self._etc_allowed(absolute)):
                self.emit("list", absolute, forbidden=True)
        elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.symlink", "os.link", "os.chmod",
                       "shutil.rmtree"):
            self.path_event(args[0] if args else None, write=True)
        elif event in ("socket.connect", "socket.sendto", "socket.connect_ex"):
            address = args[1] if len(args) > 1 else None
            if isinstance(address, tuple):  # an IP address; a Unix socket's address is a path
                self.emit("network", f"{event} {address[0]}:{address[1] if len(address) > 1 else ''}")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            host = args[0] if args else ""
            if host not in ("localhost", "127.0.0.1", "::1", None, ""):
                self.emit("network", f"{event} {host}")
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"):
            command = args[1] if event == "subprocess.Popen" and len(args) > 1 else (args[0] if args else "")
            self.emit("exec", str(command)[:300])


def main(argv: list[str]) -> None:
    """Install the hook, then run the script as ``__main__``."""
    if len(argv) < 2:
        raise SystemExit("usage: audit.py LOG script [args]")
    log_path, script, args = argv[0], argv[1], argv[2:]
    audit = AccessLog(log_path)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    sys.addaudithook(audit.hook)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException as exc:  # the traceback the code would print without the runner: from its script on
        tb = exc.__traceback__
        target = os.path.abspath(script)
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != target:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
