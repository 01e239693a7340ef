"""The ``bwrap`` backend: bubblewrap namespaces around the same limited subprocess as ``local``.

What the code sees (everything else of the host is absent, not merely unreadable):

- ``/usr`` (and ``/bin``, ``/lib``... as the host has them) and the Python installation that runs
  dojoflow (``sys.prefix`` and ``sys.base_prefix``, so its site-packages import), all read-only;
- a minimal ``/etc``: dynamic-linker and time-zone files from the host, plus generated ``passwd``,
  ``group`` and ``hosts`` (the host's ``/etc`` may hold credentials: pip/npm configs, keys);
- ``/workspace``: the episode workspace, read-write, and the current directory; the public data is
  mounted read-only at ``/workspace/data`` so ``data/...`` works exactly as with ``local``;
- fresh ``/proc`` (own PID namespace: the harness is invisible), a minimal ``/dev``, size-limited
  tmpfs ``/tmp`` and ``/dev/shm``; no ``/sys`` (unless a GPU is requested);
- no network (own network namespace with only its own loopback), own IPC and UTS namespaces;
- a clean environment (``--clearenv`` then exactly :func:`sandbox_environment`), ``HOME=/workspace``.

``DOJOFLOW_HOME`` (prepared private answers, other episodes, the tracking database) is never bound; if it
lies under a bound directory it is covered by an empty tmpfs. The dojoflow source checkout is not bound
either: agent code needs the interpreter and its libraries, not dojoflow.

Run as root (the usual case on these machines), bwrap sets the sandbox up and ``setpriv`` then drops to
an unprivileged uid derived from the workspace (so concurrent episodes do not share a process count),
with no capabilities and ``no_new_privs``. This is why the namespaces are listed one by one instead of
``--unshare-all``: as root, ``--unshare-all`` keeps the code at uid 0 with every capability inside its
user namespace, which lets it remount the "read-only" public data read-write, and ``RLIMIT_NPROC`` is
never enforced for uid 0, so a fork bomb would be stopped only by the wall clock. As a normal user,
``--unshare-all`` is used with ``--disable-userns``.

Limits are the ``local`` ones (:func:`~dojoflow.infra.sandbox.process.run_limited`): rlimits set before
``exec`` are inherited by bwrap and everything inside; the wall-clock kill of bwrap's process group
brings the whole sandbox down (``--die-with-parent`` and the PID namespace's init), so nothing started
by a step outlives it. bwrap reads its options from a file descriptor (``--args``), so
``/proc/1/cmdline`` inside the sandbox does not reveal host paths.

After each step the workspace is checked (:func:`~dojoflow.infra.sandbox.workspace.sanitize_workspace`).
As a :class:`~dojoflow.infra.sandbox.base.ProcessHost` it also runs the warm worker inside the same
isolation, with only the worker's own folder (``inside/``) bound in addition, read-only.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from dojoflow.infra.sandbox.base import ExecutionLimits, ExecutionRequest, ExecutionResult, HostedProcess, StepContext
from dojoflow.infra.sandbox.inside import rlimits
from dojoflow.infra.sandbox.process import run_limited, sandbox_environment
from dojoflow.infra.sandbox.seccomp import userns_filter
from dojoflow.infra.sandbox.workspace import (
    DATA_DIR,
    SANDBOX_WORKSPACE,
    check_mounted_workspace,
    is_privileged,
    prepare_mounted_workspace,
    resolved,
    sandbox_uid,
    step_uid,
    within,
)

__all__ = ["BwrapBackend", "bwrap_available", "SANDBOX_WORKSPACE", "is_privileged", "sandbox_uid"]

log = logging.getLogger(__name__)
USERNS_FILTER = userns_filter()  # None on an architecture without a known filter: user namespaces stay open

SANDBOX_HOSTNAME = "sandbox"
INSIDE_MOUNT = "/opt/dojoflow"  # where a hosted program's folder is bound (warm mode), read-only
PROBE_TIMEOUT_S = 30.0
MIN_TMPFS_MB = 16
# Host files needed by the dynamic linker and common libraries; nothing that may hold credentials.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf",
             "alternatives", "fonts", "mime.types", "os-release", "protocols")
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The shell opens the options file on fd 3, the info file on fd 4 and the seccomp filter on fd 5, then
# becomes bwrap.
_LAUNCHER = 'b=$0; a=$1; i=$2; f=$3; shift 3; exec "$b" --args 3 "$@" 3<"$a" 4>"$i" 5<"$f"'


def _minimal_roots(paths: Iterable[Path]) -> list[Path]:
    """Drop paths that lie inside another one; sorted."""
    roots: list[Path] = []
    for path in sorted({Path(p) for p in paths}, key=lambda p: (len(p.parts), str(p))):
        if not any(within(path, root) for root in roots):
            roots.append(path)
    return sorted(roots)


def python_roots() -> list[Path]:
    """Directories the interpreter needs: the venv, the base installation, where the executable really is."""
    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    exe = Path(sys.executable)
    candidates.add(str(Path(os.path.realpath(exe)).parent.parent))
    out: set[Path] = set()
    for c in candidates:
        p = Path(c)
        if not p.is_absolute() or p == Path("/"):
            continue
        out.add(p)
        real = Path(os.path.realpath(p))
        if real != Path("/"):
            out.add(real)
    return _minimal_roots(out)


TEST_SUITE_NAMES = ("tests", "test")


def _venv_without_system_packages() -> bool:
    config = Path(sys.prefix) / "pyvenv.cfg"
    if sys.prefix == sys.base_prefix or not config.is_file():
        return False
    return "include-system-site-packages = true" not in config.read_text().lower()


@functools.lru_cache(maxsize=1)
def installation_covers() -> tuple[Path, ...]:
    """Folders of the Python installation that agent code never needs and that must not be readable.

    - every ``tests``/``test`` folder of the installed packages that holds data (any file that is not
      Python source or bytecode), and the standard library's own test suite: test data holds copies of
      common datasets (scipy's and scikit-learn's iris, scikit-learn's OpenML fixtures with penguins and
      iris), which would let code rebuild a built-in task's answers. Folders of test code only are left:
      each cover is a mount made at every cold step (212 covers cost bwrap ~25 ms more than the 32 that
      hold data in a data-science environment);
    - the base interpreter's ``site-packages`` when dojoflow runs in a virtual environment that does not
      use it: the interpreter never imports from it, and it may hold anything.

    Scanned once per process (about half a second for a data-science environment); only folders under what
    the sandbox binds (``/usr`` and the Python roots) are returned.
    """
    found: set[Path] = set()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if (stdlib / "test").is_dir():
        found.add(Path(os.path.realpath(stdlib / "test")))
    purelib = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    if _venv_without_system_packages():
        base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
        found.update(Path(os.path.realpath(base[k])) for k in ("purelib", "platlib") if Path(base[k]).is_dir())
    for root in purelib:
        for folder, subdirs, _ in os.walk(root):
            if os.path.basename(folder) in TEST_SUITE_NAMES:
                if _holds_data(folder):
                    found.add(Path(os.path.realpath(folder)))
                subdirs[:] = []
    bound = [Path("/usr"), *python_roots()]
    return tuple(sorted(p for p in found if any(p.is_relative_to(b) for b in bound)))


CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyi", ".typed"})


def _holds_data(folder: str) -> bool:
    return any(os.path.splitext(name)[1] not in CODE_SUFFIXES for _, _, files in os.walk(folder) for name in files)


def _default_hidden() -> list[Path]:
    from dojoflow.config import get_settings

    home = get_settings().home
    return [home, Path(os.path.realpath(home))]


class BwrapBackend:
    """Bubblewrap sandbox; see the module docstring for what is visible inside and why."""

    name = "bwrap"
    isolated = True
    pid_namespace = True
    signal_exit_base = 128  # bwrap reports a child killed by signal N as 128 + N

    def __init__(self, bwrap: str | None = None, extra_ro_binds: Sequence[Path | str] = (),
                 hidden_paths: Sequence[Path | str] | None = None) -> None:
        """``extra_ro_binds``: more host directories to expose read-only at the same path (e.g. a model
        cache). ``hidden_paths``: covered by an empty tmpfs if they lie under a bound directory; default
        ``DOJOFLOW_HOME`` (read when each step runs, so a changed environment applies)."""
        self.bwrap = bwrap
        self.extra_ro_binds = [Path(p) for p in extra_ro_binds]
        self.hidden_paths = None if hidden_paths is None else [Path(p) for p in hidden_paths]

    def close(self) -> None:
        """Nothing is held between steps."""

    # -- the bwrap command line ---------------------------------------------------------------------------
    def _hidden(self) -> list[Path]:
        return self.hidden_paths if self.hidden_paths is not None else _default_hidden()

    def options(self, request: ExecutionRequest, env: dict[str, str], etc_dir: Path, uid: int | None,
                extra_binds: Sequence[tuple[Path, str]] = (),
                writable_binds: Sequence[tuple[Path, str]] = ()) -> list[str]:
        """Bwrap options (without the command) for this request; ``extra_binds``: (host folder, path inside)
        pairs bound read-only; ``writable_binds``: the same, bound read-write (a sandboxed preparation's raw
        data)."""
        limits = request.limits
        privileged = uid is not None
        opts: list[str] = []
        if privileged:
            opts += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        else:
            opts += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        opts += ["--die-with-parent", "--new-session", "--hostname", SANDBOX_HOSTNAME, "--clearenv"]
        for key, value in env.items():
            opts += ["--setenv", key, value]

        # The system, read-only: /usr, and /bin, /lib... as bind or symlink as the host has them.
        opts += ["--ro-bind", "/usr", "/usr"]
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                opts += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                opts += ["--ro-bind", d, d]
        # /etc: a few host files and generated identity files.
        opts += ["--perms", "0755", "--dir", "/etc"]
        for name in ETC_FILES:
            opts += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group", "hosts"):
            opts += ["--ro-bind", str(etc_dir / name), f"/etc/{name}"]

        # Kernel filesystems and size-limited scratch space (before the binds: a bind may lie under /tmp).
        tmp_bytes = str(max(MIN_TMPFS_MB, min(limits.memory_mb, limits.max_file_mb)) * 1024 * 1024)
        opts += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", tmp_bytes, "--tmpfs", "/dev/shm",
                 "--perms", "1777", "--size", tmp_bytes, "--tmpfs", "/tmp"]
        for folder in request.sealed:  # before the Python binds: one of them may lie inside
            opts += ["--perms", "0755", "--tmpfs", folder]
        opts += self._python_binds()
        opts += self._data_covers(request)
        if request.gpu is not None:
            opts += self._gpu_options()
        for (host, inside), mode in [*((b, "--ro-bind") for b in extra_binds),
                                     *((b, "--bind") for b in writable_binds)]:
            for parent in reversed(Path(inside).parents[:-1]):  # world-traversable, whatever the host's modes
                opts += ["--perms", "0755", "--dir", str(parent)]
            opts += ["--perms", "0755", "--dir", inside, mode, str(host), inside]
        workspace = request.workspace_inside or SANDBOX_WORKSPACE
        opts += self._parents(workspace) + ["--bind", str(request.workspace), workspace]
        if request.public_dir is not None:
            opts += ["--ro-bind", str(Path(request.public_dir).resolve()), f"{workspace}/{DATA_DIR}"]
        for mount in request.mounts:
            opts += self._parents(mount.inside)
            opts += ["--bind" if mount.writable else "--ro-bind", str(Path(mount.host).resolve()), mount.inside]
        for folder in request.sealed:  # only the mounts inside stay writable
            opts += ["--remount-ro", folder]
        opts += ["--chdir", workspace, "--info-fd", "4"]  # written once the sandbox process exists
        if USERNS_FILTER is not None:
            opts += ["--seccomp", "5"]  # no new user namespaces (see seccomp.py)
        return opts

    def _data_covers(self, request: ExecutionRequest) -> list[str]:
        """Empty read-only folders over the requested hidden data folders and the packages' test suites that
        lie inside what is bound (they are leaves of the read-only Python tree, so a cover is one mount)."""
        bound = [Path("/usr"), *python_roots()]
        requested = {Path(os.path.realpath(p)) for p in request.hidden}
        covers = set(installation_covers())
        covers.update(p for p in requested if p.is_dir() and any(p.is_relative_to(b) for b in bound))
        opts: list[str] = []
        for path in sorted(covers):
            opts += ["--perms", "0555", "--size", "4096", "--tmpfs", str(path)]
        return opts

    def _python_binds(self) -> list[str]:
        """Python (and extra binds) read-only at their host paths; hidden paths under them covered."""
        opts: list[str] = []
        system = [Path("/usr")] + [Path(d) for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
        binds = [p for p in _minimal_roots(python_roots() + self.extra_ro_binds)
                 if p.exists() and not any(within(p, s) for s in system)]
        exposed = [b for b in binds if any(os.path.realpath(b) == os.path.realpath(h) for h in self._hidden())]
        if exposed:  # binding a hidden directory itself would expose all of it
            log.warning("bwrap sandbox: not binding %s: it is a hidden path (DOJOFLOW_HOME)", exposed)
            binds = [b for b in binds if b not in exposed]
        bound = system + binds
        hidden = _minimal_roots(h for h in self._hidden()
                                if h.exists() and any(within(h, b) and h != b for b in bound))
        later: list[tuple[Path, Path]] = []
        for b in binds:
            cover = next((h for h in hidden if h in b.parents), None)
            if cover is not None:
                later.append((b, cover))  # bound after the tmpfs that covers its hidden parent
                continue
            opts += self._dirs_for(b, bound) + ["--ro-bind", str(b), str(b)]
        for h in hidden:
            opts += ["--perms", "0755", "--tmpfs", str(h)]
        for b, cover in later:
            for parent in reversed(b.parents):
                if cover in parent.parents:
                    opts += ["--perms", "0755", "--dir", str(parent)]
            opts += ["--ro-bind", str(b), str(b)]
        return opts

    @staticmethod
    def _parents(inside: str) -> list[str]:
        """The parent folders of a mount point inside, world-traversable."""
        out: list[str] = []
        for parent in reversed(Path(inside).parents[:-1]):
            out += ["--perms", "0755", "--dir", str(parent)]
        return out

    @staticmethod
    def _dirs_for(path: Path, bound: Sequence[Path]) -> list[str]:
        """Create missing parents world-traversable (bwrap would copy e.g. /root's 0700)."""
        out: list[str] = []
        for parent in reversed(path.parents):
            if parent == Path("/") or any(within(parent, b) for b in bound if b != path):
                continue
            out += ["--perms", "0755", "--dir", str(parent)]
        return out

    @staticmethod
    def _gpu_options() -> list[str]:
        """NVIDIA device nodes and the sysfs the driver libraries read; CUDA_VISIBLE_DEVICES picks the GPU."""
        opts: list[str] = []
        for dev in sorted(Path("/dev").glob("nvidia*")):
            opts += ["--dev-bind", str(dev), str(dev)]
        opts += ["--ro-bind-try", "/sys", "/sys"]
        return opts

    @staticmethod
    def _write_etc(etc_dir: Path, uid: int, gid: int) -> None:
        (etc_dir / "passwd").write_text(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"agent:x:{uid}:{gid}:dojoflow agent:{SANDBOX_WORKSPACE}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        (etc_dir / "group").write_text(f"root:x:0:\nagent:x:{gid}:\nnogroup:x:65534:\n")
        (etc_dir / "hosts").write_text(f"127.0.0.1\tlocalhost {SANDBOX_HOSTNAME}\n::1\tlocalhost\n")
        for name in ("passwd", "group", "hosts"):
            (etc_dir / name).chmod(0o644)

    # -- running ------------------------------------------------------------------------------------------
    def argv(self, request: ExecutionRequest, options_file: Path, info_file: Path, uid: int | None,
             filter_file: Path | None = None) -> list[str]:
        """The launcher command line: a shell that opens the option, info and filter files, then becomes
        bwrap."""
        bwrap = self.bwrap or shutil.which("bwrap")
        if bwrap is None:
            raise FileNotFoundError("bwrap is not installed")
        command = list(request.command)
        if uid is not None:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise FileNotFoundError("setpriv (util-linux) is needed to drop root inside the sandbox")
            command = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                       "--bounding-set=-all", "--"] + command
        return ["/bin/sh", "-c", _LAUNCHER, bwrap, str(options_file), str(info_file),
                str(filter_file or "/dev/null")] + command

    def launch_argv(self, request: ExecutionRequest, scratch: Path, uid: int | None,
                    extra_binds: Sequence[tuple[Path, str]] = (),
                    writable_binds: Sequence[tuple[Path, str]] = ()) -> tuple[list[str], dict[str, str], Path]:
        """The complete command line for ``request.command`` (options and /etc files written under ``scratch``);
        returns (argv, environment, info file)."""
        env = sandbox_environment(request, request.workspace_inside or SANDBOX_WORKSPACE)
        self._write_etc(scratch, uid if uid is not None else os.getuid(), uid if uid is not None else os.getgid())
        options = self.options(request, env, scratch, uid, extra_binds, writable_binds)
        options_file, info_file, filter_file = scratch / "options", scratch / "info", scratch / "seccomp"
        options_file.write_bytes(b"".join(o.encode() + b"\0" for o in options))
        if USERNS_FILTER is None:
            return self.argv(request, options_file, info_file, uid, None), env, info_file
        filter_file.write_bytes(USERNS_FILTER)
        return self.argv(request, options_file, info_file, uid, filter_file), env, info_file

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run the request's command inside a fresh sandbox with its limits."""
        request = resolved(request)
        uid = step_uid(request)
        try:
            scratch = Path(tempfile.mkdtemp(prefix="dojoflow-bwrap-"))
        except OSError as exc:  # e.g. a full disk under /tmp
            return ExecutionResult.not_started(self.name, self.isolated, f"{type(exc).__name__}: {exc}")
        try:
            try:
                prepare_mounted_workspace(request, uid)
                argv, env, info_file = self.launch_argv(request, scratch, uid)
            except OSError as exc:
                return ExecutionResult.not_started(self.name, self.isolated, f"{type(exc).__name__}: {exc}")
            result = run_limited(argv, request, env, backend=self.name, isolated=self.isolated)
            if _setup_failed(result, info_file):
                first = result.stderr.strip().splitlines()[0] if result.stderr.strip() else "no message"
                result.error = f"bubblewrap could not set up the sandbox: {first}"
            problem = check_mounted_workspace(request, uid)
            if problem:
                result.error = problem
            return result
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # -- ProcessHost (warm mode) ------------------------------------------------------------------------------
    def workspace_inside(self, request: ExecutionRequest) -> str:
        """The workspace is mounted at ``/workspace`` (unless the request says otherwise)."""
        return request.workspace_inside or SANDBOX_WORKSPACE

    def prepare_step(self, request: ExecutionRequest) -> StepContext:
        """Mount points and ownership, as before a cold step."""
        uid = step_uid(request)
        prepare_mounted_workspace(request, uid)
        return StepContext(uid)

    def check_step(self, request: ExecutionRequest, context: StepContext) -> str | None:
        """The cold step's after-step check of the workspace."""
        return check_mounted_workspace(request, context.uid)

    def start_process(self, request: ExecutionRequest, program: Path, args: Sequence[str],
                      pass_fds: Sequence[int], context: StepContext) -> HostedProcess:
        """``python program args`` inside a sandbox built exactly as a cold step's, with ``program``'s folder
        bound read-only at :data:`INSIDE_MOUNT`."""
        scratch = Path(tempfile.mkdtemp(prefix="dojoflow-warm-"))
        try:
            inside = f"{INSIDE_MOUNT}/{program.name}"
            hosted = dataclasses.replace(request, command=(sys.executable, inside, *args))
            argv, env, _ = self.launch_argv(hosted, scratch, context.uid, [(program.parent, INSIDE_MOUNT)])
            max_file_mb = request.limits.max_file_mb
            proc = subprocess.Popen(argv, cwd=request.workspace, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=tuple(pass_fds),
                                    start_new_session=True,
                                    preexec_fn=lambda: rlimits.apply_file_size_only(max_file_mb))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return HostedProcess(proc, lambda: shutil.rmtree(scratch, ignore_errors=True))


def _setup_failed(result: ExecutionResult, info_file: Path) -> bool:
    """Bwrap reports setup errors as ``bwrap: ...`` and exits 1 before the code prints anything. (Code that
    imitates this only mislabels its own failure.)"""
    if result.error is not None or result.timed_out or result.exit_code != 1 or result.stdout_bytes:
        return False
    if not (info_file.exists() and info_file.stat().st_size > 0):
        return True  # bwrap stopped before it even created the sandbox process
    return result.stderr.startswith("bwrap: ")


@functools.lru_cache(maxsize=1)
def bwrap_available() -> tuple[bool, str]:
    """Whether the bwrap backend works here, with the reason when it does not (probed once per process)."""
    if sys.platform != "linux":
        return False, f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return False, "bwrap is not installed (apt-get install bubblewrap)"
    if is_privileged() and shutil.which("setpriv") is None:
        return False, "running as root needs setpriv (util-linux) to drop privileges inside the sandbox"
    try:
        version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bwrap --version failed: {exc}"
    with tempfile.TemporaryDirectory(prefix="dojoflow-bwrap-probe-") as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        request = ExecutionRequest((sys.executable, "-c", "import os; print(os.getcwd())"), workspace,
                                   limits=ExecutionLimits(timeout_s=PROBE_TIMEOUT_S))
        result = BwrapBackend().run(request)
        if result.error or result.exit_code != 0 or result.stdout.strip() != SANDBOX_WORKSPACE:
            detail = result.error or (result.stderr.strip().splitlines() or [f"exit {result.exit_code}"])[-1]
            return False, f"the bwrap probe failed: {detail}"
    mode = "as root, dropping to an unprivileged uid" if is_privileged() else "in a user namespace"
    return True, f"{version or 'bwrap'} works ({mode})"
