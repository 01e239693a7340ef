"""A seccomp filter that refuses new user namespaces inside the sandbox.

Inside a user namespace of its own, code gets every capability over it and can mount a tmpfs there, which
is memory no per-process limit sees (3 GB written under a 512 MB limit, reported as a 25 MB peak). As root,
the bwrap backend cannot use bubblewrap's ``--disable-userns`` (it needs ``--unshare-user``, which a root
harness does not use: it drops to an unprivileged uid instead), so the sandbox gets this classic-BPF
filter through ``bwrap --seccomp``:

- ``unshare`` and ``clone`` with ``CLONE_NEWUSER`` in their flags fail with ``EPERM``;
- ``clone3`` (whose flags sit in a struct the filter cannot read) fails with ``ENOSYS``, so the C library
  falls back to ``clone``, which the filter can inspect;
- system calls of a foreign ABI (i386 on x86-64, x32) fail with ``EPERM``;
- everything else is allowed.

Only x86-64 and AArch64 are known; elsewhere :func:`userns_filter` returns None and the backend says so.
"""

from __future__ import annotations

import platform
import struct

# <linux/filter.h>, <linux/seccomp.h>, <linux/audit.h>, <linux/sched.h>
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JSET_K = 0x45
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38
CLONE_NEWUSER = 0x10000000
X32_SYSCALL_BIT = 0x40000000
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16  # struct seccomp_data, little-endian

# machine -> (AUDIT_ARCH_*, unshare, clone, clone3)
ARCHITECTURES = {
    "x86_64": (0xC000003E, 272, 56, 435),
    "aarch64": (0xC00000B7, 97, 220, 435),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def userns_filter(machine: str | None = None) -> bytes | None:
    """The compiled filter (an array of ``struct sock_filter``, as ``bwrap --seccomp FD`` reads it), or None
    on an architecture this module does not know."""
    arch = ARCHITECTURES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr_unshare, nr_clone, nr_clone3 = arch
    deny, nosys = SECCOMP_RET_ERRNO | EPERM, SECCOMP_RET_ERRNO | ENOSYS
    # a jump's target is the next instruction plus jt (taken) or jf (not taken)
    program = [
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),      # 0
        _insn(BPF_JEQ_K, 1, 0, audit_arch),           # 1: native ABI -> 3, else -> 2
        _insn(BPF_RET_K, 0, 0, deny),                 # 2
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),         # 3
        _insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),     # 4: x32 (same audit arch as x86-64) -> 5, else -> 6
        _insn(BPF_RET_K, 0, 0, deny),                 # 5
        _insn(BPF_JEQ_K, 4, 0, nr_unshare),          # 6: -> 11 (check the flags)
        _insn(BPF_JEQ_K, 3, 0, nr_clone),            # 7: -> 11 (check the flags)
        _insn(BPF_JEQ_K, 0, 1, nr_clone3),           # 8: -> 9, else -> 10
        _insn(BPF_RET_K, 0, 0, nosys),                # 9
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),   # 10
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARG0_LOW),  # 11: the flags (low 32 bits of the first argument)
        _insn(BPF_JSET_K, 0, 1, CLONE_NEWUSER),      # 12: a new user namespace -> 13, else -> 14
        _insn(BPF_RET_K, 0, 0, deny),                 # 13
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),   # 14
    ]
    return b"".join(program)
