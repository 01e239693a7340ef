"""Programs that run *inside* a sandbox, where dojoflow itself is not importable.

Standard library only. The warm mode runs ``warm_worker.py`` as a script inside the sandbox (this folder
is bound read-only for it) and the harness applies the same ``rlimits`` to cold steps, so the limits of
every step come from one function.
"""
