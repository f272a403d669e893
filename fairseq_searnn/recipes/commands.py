"""Running fairseq from the recipes: its console scripts located and run as logged subprocesses,
or its training parser and fairseq-generate in this process."""

import contextlib
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence


def tool(name: str) -> str:
    """The console script ``name`` (e.g. ``fairseq-train``) of the running Python's
    environment, else the one on ``PATH``, else ``name`` itself."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def run_logged(cmd: Sequence, log, env: Optional[Mapping[str, str]] = None,
               append: bool = False) -> float:
    """Run ``cmd`` (printed first) with stdout and stderr in the file ``log`` (added at its end
    with ``append``); raise RuntimeError with the log's tail on failure. Returns the wall time
    in seconds."""
    cmd = [str(c) for c in cmd]
    print("+ " + " ".join(cmd), flush=True)
    start = time.time()
    with open(log, "a" if append else "w") as f:
        code = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "".join(Path(log).read_text().splitlines(True)[-30:])
        raise RuntimeError(f"{cmd[0]} failed (exit {code}); end of {log}:\n{tail}")
    return time.time() - start


def run_output(cmd: Sequence) -> str:
    """Run ``cmd`` (printed first) and return its stdout; RuntimeError with the ends of its
    stdout and stderr on failure."""
    cmd = [str(c) for c in cmd]
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def train_config(argv: Sequence):
    """The configuration (omegaconf) fairseq-train makes of ``argv``, by its own parser."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(a) for a in argv])
    return convert_namespace_to_omegaconf(args)


def generate_in_process(argv: Sequence) -> str:
    """fairseq-generate on ``argv`` in this process (its console output discarded); ``argv``
    gives ``--results-path``. Returns the output it wrote there (``generate-SUBSET.txt``:
    ``S-``/``T-``/``H-``/``D-``/``P-`` lines, read with :mod:`.generate_output`)."""
    from fairseq import options
    from fairseq_cli import generate

    args = options.parse_args_and_arch(options.get_generation_parser(), [str(a) for a in argv])
    if not args.results_path:
        raise ValueError("generate_in_process needs --results-path")
    with contextlib.redirect_stdout(io.StringIO()):
        generate.main(args)
    return (Path(args.results_path) / f"generate-{args.gen_subset}.txt").read_text()
