"""Finding and running the `specline` command.

Everything the module reads or writes goes through the command, so the store backends
(SQLite, MongoDB) and the message formats have one implementation, in C.
"""

import os
import shutil
import subprocess
from pathlib import Path


class SpeclineError(RuntimeError):
    """The `specline` command failed: its exit status and what it printed on stderr."""

    def __init__(self, args, returncode, stderr):
        self.args_run = list(args)
        self.returncode = returncode
        self.stderr = stderr
        msg = stderr.strip() or f"exit status {returncode}"
        super().__init__(f"specline {' '.join(str(a) for a in args)}: {msg}")


def find_binary():
    """The path of the `specline` command.

    Looked for in this order: $SPECLINE_BIN (the binary itself), $SPECLINE_BIN_DIR/specline,
    `specline` on PATH, and the build tree of the checkout this module sits in
    (<repo>/build/bin/specline). Raises FileNotFoundError naming every place looked at.
    """
    looked = []
    env = os.environ.get("SPECLINE_BIN")
    if env:
        if os.access(env, os.X_OK):
            return env
        looked.append(f"$SPECLINE_BIN={env}")
    env_dir = os.environ.get("SPECLINE_BIN_DIR")
    if env_dir:
        cand = os.path.join(env_dir, "specline")
        if os.access(cand, os.X_OK):
            return cand
        looked.append(f"$SPECLINE_BIN_DIR={env_dir}")
    on_path = shutil.which("specline")
    if on_path:
        return on_path
    looked.append("PATH")
    tree = Path(__file__).resolve().parents[2] / "build" / "bin" / "specline"
    if os.access(tree, os.X_OK):
        return str(tree)
    looked.append(str(tree))
    raise FileNotFoundError("the specline command was not found (looked at " + ", ".join(looked) + ")")


def run(*args, check=True):
    """Runs `specline ARGS`; returns its stdout (str). Raises SpeclineError on a non-zero
    exit when check is true."""
    argv = [find_binary()] + [str(a) for a in args]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        raise SpeclineError(args, proc.returncode, proc.stderr)
    return proc.stdout
