"""Glue between Snakemake (which builds) and DVC (which stores): what is stale, and the restore step.

Snakemake decides what to run from modification times, per-file checksums of small inputs and its own
metadata in ``.snakemake/metadata`` (params, code, input set and software env of the job that wrote each
output). DVC restores files (``dvc checkout`` / ``dvc pull``) with fresh modification times in no
particular order, and it does not version Snakemake's metadata. After such a restore Snakemake may
therefore see stale jobs although every file is exactly the one the current commit's ``dvc.lock``
records, and without metadata (fresh clone) it cannot see a later change of params at all. :func:`restore`
fixes both: it checks with DVC that the workspace matches ``dvc.lock``, then runs ``snakemake --touch`` on
the stale jobs and the jobs without metadata, which stamps the outputs in DAG order and records the metadata
of the checked-out config and code, so that a dry run has nothing to do. :func:`build` (the DVC stage's
command) refuses to run Snakemake on outputs without metadata. :func:`add_run` lists a run in
runs/runs.yaml, which gives it its own DVC stage (runs/dvc.yaml). See docs/versioning.md.

Command line (run in the repository root)::

    python tools/versioning.py restore [--force] [--configfile FILE ...]
    python tools/versioning.py stale [--configfile FILE ...]
    python tools/versioning.py add-run --configfile [BASE] CONFIG   # version that run: runs/dvc.yaml:run@<run>
    python tools/versioning.py build SNAKEMAKE_ARGS...   # the DVC stage's command (dvc.yaml, runs/dvc.yaml)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = [
    "DryRun",
    "RestoreError",
    "SummaryRow",
    "add_run",
    "build",
    "dry_run",
    "dvc_stage",
    "dvc_status",
    "library_imports",
    "main",
    "restore",
    "run_name",
    "snakemake_summary",
    "stale_outputs",
]

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# Relative to the repository root. dvc.yaml versions the default run (DEFAULT_CONFIG, read without
# --configfile); runs/dvc.yaml has one stage, run@<run>, per run listed in runs/runs.yaml.
DEFAULT_CONFIG = "config/config.yaml"
RUNS_DVC = "runs/dvc.yaml"
RUNS_LIST = "runs/runs.yaml"


class RestoreError(RuntimeError):
    """The workspace is not in a state where touching the outputs is safe, or touching did not help."""


@dataclass(frozen=True)
class SummaryRow:
    """One row of ``snakemake --detailed-summary``: an output file of a job in the DAG."""

    output: str
    rule: str
    status: str  # ok | missing | updated input files | params changed | rule implementation changed | ...
    pending: bool  # the job that writes it would run
    has_metadata: bool  # Snakemake has a record (params, code, input set...) of the job that wrote it


@dataclass
class DryRun:
    """What ``snakemake --dry-run`` would do: jobs per rule (the "Job stats" table) and the raw output."""

    counts: dict[str, int] = field(default_factory=dict)
    output: str = ""

    @property
    def nothing_to_do(self) -> bool:
        return not self.counts


def _snakemake_cmd(
    workdir: Path, snakefile: Path | str | None, configfiles: Sequence[Path | str], extra: Sequence[str]
) -> list[str]:
    cmd = [*SNAKEMAKE, "-d", str(workdir)]
    if snakefile is not None:
        cmd += ["-s", str(snakefile)]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    return cmd + list(extra)


def _run(cmd: list[str], cwd: Path, timeout: float | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, cmd, res.stdout, res.stderr)
    return res


def snakemake_summary(
    workdir: Path | str = ".",
    snakefile: Path | str | None = None,
    configfiles: Sequence[Path | str] = (),
    extra: Sequence[str] = (),
) -> list[SummaryRow]:
    """Rows of ``snakemake --detailed-summary`` (tab-separated, one per output file of every job in the DAG).

    Columns: output_file, date, rule, log-file(s), input-file(s), shellcmd, status, plan. The recorded input
    list is "-" when Snakemake has no metadata record for the file (fresh clone, deleted .snakemake/).
    """
    workdir = Path(workdir).resolve()
    res = _run(_snakemake_cmd(workdir, snakefile, configfiles, ["--detailed-summary", *extra]), workdir)
    lines = res.stdout.splitlines()
    try:  # anything the Snakefile prints comes before the header
        start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    except StopIteration:
        raise RuntimeError(f"no summary table in snakemake output:\n{res.stdout}\n{res.stderr}") from None
    header = lines[start].split("\t")
    fixed = ["output_file", "date", "rule", "log-file(s)", "input-file(s)"]
    if header[:5] != fixed or header[-2:] != ["status", "plan"]:
        raise RuntimeError(f"unexpected snakemake --detailed-summary columns: {header}")
    rows = []
    for line in lines[start + 1 :]:
        parts = line.split("\t")
        if len(parts) < len(header):  # the shellcmd column may hold tabs: fixed columns from both ends
            continue
        rows.append(SummaryRow(parts[0], parts[2], parts[-2], parts[-1] == "update pending", parts[4] != "-"))
    return rows


def stale_outputs(
    workdir: Path | str = ".",
    snakefile: Path | str | None = None,
    configfiles: Sequence[Path | str] = (),
    extra: Sequence[str] = (),
) -> dict[str, set[str]]:
    """Rule -> output files of the jobs that would run (``snakemake --summary``, plan "update pending")."""
    out: dict[str, set[str]] = {}
    for row in snakemake_summary(workdir, snakefile, configfiles, extra):
        if row.pending:
            out.setdefault(row.rule, set()).add(row.output)
    return out


_STATS_ROW = re.compile(r"^(\S+)\s+(\d+)$")


def dry_run(
    workdir: Path | str = ".",
    snakefile: Path | str | None = None,
    configfiles: Sequence[Path | str] = (),
    extra: Sequence[str] = (),
) -> DryRun:
    """``snakemake --dry-run``; ``counts`` is its "Job stats" table (rule -> jobs, without the total)."""
    workdir = Path(workdir).resolve()
    res = _run(_snakemake_cmd(workdir, snakefile, configfiles, ["--dry-run", *extra]), workdir)
    text = res.stdout + res.stderr
    counts: dict[str, int] = {}
    lines = text.splitlines()
    if "Job stats:" in lines:
        for line in lines[lines.index("Job stats:") + 3 :]:  # skip the "job count" header and the rule line
            m = _STATS_ROW.match(line.strip())
            if not m or m.group(1) == "total":
                break
            counts[m.group(1)] = int(m.group(2))
    elif "Nothing to be done" not in text:
        raise RuntimeError(f"cannot parse snakemake --dry-run output:\n{text}")
    return DryRun(counts, text)


def _dvc_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / ".dvc").is_dir():
            return d
    return None


def _dvc_exe() -> str | None:
    """The ``dvc`` next to this Python (the project's venv) or on PATH."""
    return shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")


def dvc_status(repo: Path | str = ".", targets: Sequence[str] = ()) -> dict:
    """``dvc status --json`` of the repository, or of these stages (``{}`` when they match their dvc.lock)."""
    dvc = _dvc_exe()
    if dvc is None:
        raise FileNotFoundError("dvc is not installed (pip install 'kdwsd[workflow]')")
    res = _run([dvc, "status", "--json", *targets], Path(repo))
    return json.loads(res.stdout.strip() or "{}")


def run_name(configfiles: Sequence[Path | str]) -> str:
    """The ``run`` of these config files as Snakemake merges them: the last file that sets it."""
    run = None
    for f in configfiles:
        run = (yaml.safe_load(Path(f).read_text()) or {}).get("run", run)
    if run is None:
        raise ValueError(f"no `run:` in {' '.join(map(str, configfiles))}")
    return str(run)


def _runs_list(root: Path) -> dict[str, dict[str, str]]:
    path = root / RUNS_LIST
    return ((yaml.safe_load(path.read_text()) or {}).get("runs") or {}) if path.is_file() else {}


def _unique(paths: Sequence[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def dvc_stage(root: Path | str, configfiles: Sequence[Path | str] = (), workdir: Path | str | None = None) -> str:
    """The DVC stage (a ``dvc status`` target) that versions the run of these config files.

    No config files (or only the default config): ``dvc.yaml``. Otherwise the run must be listed in
    runs/runs.yaml with the same files (:func:`add_run`): ``runs/dvc.yaml:run@<run>``. Relative config files
    are relative to ``workdir`` (the repository root by default), as for Snakemake.
    """
    root = Path(root).resolve()
    workdir = Path(workdir).resolve() if workdir is not None else root
    files = _unique([(workdir / f).resolve() for f in configfiles])
    if not files or files == [(root / DEFAULT_CONFIG).resolve()]:
        return "dvc.yaml"
    run = run_name(files)
    entry = _runs_list(root).get(run)
    given = " ".join(map(str, configfiles))
    if entry is None:
        raise RestoreError(f"run {run!r} (--configfile {given}) has no DVC stage, so DVC cannot vouch for its files; "
                           f"version it first: python tools/versioning.py add-run --configfile {given}")  # fmt: skip
    if _unique([(root / entry["base"]).resolve(), (root / entry["config"]).resolve()]) != files:
        raise RestoreError(f"run {run!r} is versioned with --configfile {entry['base']} {entry['config']} "
                           f"({RUNS_LIST}), not with --configfile {given}")  # fmt: skip
    return f"{RUNS_DVC}:run@{run}"


def add_run(configfiles: Sequence[Path | str], root: Path | str = ".") -> str:
    """List the run of ``configfiles`` (a config, or a base and the config that overlays it) in runs/runs.yaml.

    runs/dvc.yaml then has a stage for it, ``run@<run>`` (returned as a DVC target), whose command is
    ``snakemake --configfile BASE CONFIG`` and whose params are every key of both files. The run must not be
    the default's (dvc.yaml versions that one). Listing it again with the same files changes nothing. Comment
    lines at the top of runs/runs.yaml are kept.
    """
    root = Path(root).resolve()
    if not 1 <= len(configfiles) <= 2:
        raise ValueError("give one config file, or a base and the config that overlays it")
    rel = []
    for f in configfiles:
        path = (root / f).resolve()
        if not path.is_file():
            raise ValueError(f"{f}: no such file")
        if not path.is_relative_to(root):
            raise ValueError(f"{f} is outside the repository {root}: DVC tracks params files of the repository only")
        rel.append(path.relative_to(root).as_posix())
    run = run_name([root / r for r in rel])
    if run == run_name([root / DEFAULT_CONFIG]):
        own = f": give {rel[-1]} its own `run:`" if rel[-1] != DEFAULT_CONFIG else ""
        raise ValueError(f"run {run!r} is the default run, which dvc.yaml versions{own}")
    entry = {"base": rel[0], "config": rel[-1]}
    path = root / RUNS_LIST
    text = path.read_text() if path.is_file() else ""
    runs = (yaml.safe_load(text) or {}).get("runs") or {}
    if runs.get(run, entry) != entry:
        raise ValueError(f"run {run!r} is already listed in {RUNS_LIST} with {runs[run]}")
    if run not in runs:
        runs[run] = entry
        lines = text.splitlines(keepends=True)
        header = "".join(lines[: next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + yaml.safe_dump({"runs": runs}, sort_keys=False, default_flow_style=None, width=120))
    return f"{RUNS_DVC}:run@{run}"


def restore(
    workdir: Path | str = ".",
    snakefile: Path | str | None = None,
    configfiles: Sequence[Path | str] = (),
    extra: Sequence[str] = (),
    force: bool = False,
    check_dvc: bool = True,
) -> dict[str, set[str]]:
    """Make Snakemake accept the outputs that ``dvc checkout`` / ``dvc pull`` restored; return what it touched.

    Refuses (:class:`RestoreError`) unless ``force``: when an output is missing (it must be fetched or
    built), or when DVC reports that the run's stage (:func:`dvc_stage`: ``dvc.yaml`` for the default run)
    differs from its dvc.lock (then the files are not the ones recorded for this commit's code and config:
    run ``dvc checkout`` or ``dvc repro``), or when the run has no DVC stage. Otherwise it runs
    ``snakemake --touch``, which stamps outputs in DAG order and records the current params/code/input
    metadata, for every job that Snakemake considers stale and every job without a metadata record (forced
    with ``--forcerun``, so that later knob changes trigger reruns again), with their downstream jobs.
    Afterwards a dry run must have nothing to do and every output must have a record.
    """
    workdir = Path(workdir).resolve()
    rows = snakemake_summary(workdir, snakefile, configfiles, extra)
    unrecorded = sorted({r.rule for r in rows if not r.has_metadata and not r.pending})
    force_args = ["--forcerun", *unrecorded] if unrecorded else []
    if unrecorded:
        rows = snakemake_summary(workdir, snakefile, configfiles, [*force_args, *extra])
    touch: dict[str, set[str]] = {}
    for row in rows:
        if row.pending:
            touch.setdefault(row.rule, set()).add(row.output)
    if not touch:
        return {}
    if not force:
        missing = [r.output for r in rows if r.status == "missing"]
        if missing:
            raise RestoreError(f"{len(missing)} outputs are missing ({', '.join(missing[:5])}...): "
                               "fetch them (`dvc pull`) or build them (`snakemake`), do not touch them")  # fmt: skip
        root = _dvc_root(workdir) if check_dvc else None
        if root is not None and _dvc_exe() is not None:
            stage = dvc_stage(root, configfiles, workdir)  # this run's stage only, not the other runs
            status = dvc_status(root, [stage])
            if status:
                raise RestoreError("the workspace differs from dvc.lock, so its outputs are not the recorded ones; "
                                   f"run `dvc checkout {stage}` (or build them: `dvc repro {stage}`). dvc status: "
                                   + json.dumps(status))  # fmt: skip
    _run(_snakemake_cmd(workdir, snakefile, configfiles, ["--touch", "--cores", "1", *force_args, *extra]), workdir)
    after = snakemake_summary(workdir, snakefile, configfiles, extra)
    left = sorted({r.rule for r in after if r.pending or not r.has_metadata})
    if left:
        raise RestoreError(f"still stale or without metadata after snakemake --touch: {left}")
    return touch


def build(snakemake_args: Sequence[str], workdir: Path | str = ".") -> int:
    """``snakemake <args>``, refusing to start when existing outputs have no Snakemake metadata.

    This is the command of the DVC stage. Without metadata (a fresh clone or ``dvc pull`` not followed by
    :func:`restore`) Snakemake can only compare modification times: a changed knob would not rerun the
    jobs that use it, and DVC would record the old results under the new params.
    """
    workdir = Path(workdir).resolve()
    rows = snakemake_summary(workdir, extra=snakemake_args)
    unrecorded = sorted(r.output for r in rows if not r.has_metadata and r.status != "missing")
    if unrecorded:
        raise RestoreError(
            f"{len(unrecorded)} existing outputs have no Snakemake metadata ({', '.join(unrecorded[:3])}...), so "
            "a changed knob or library module would not rerun what uses it. Run the restore step on a commit "
            "whose dvc.lock matches the files first (e.g. `git stash && dvc checkout && python "
            "tools/versioning.py restore && git stash pop`), or delete those outputs to rebuild them."
        )
    return subprocess.run([*SNAKEMAKE, "-d", str(workdir), *snakemake_args], cwd=workdir).returncode


def _module_level_imports(tree: ast.Module, lazy: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: its body and the if/try blocks in it.

    ``if TYPE_CHECKING:`` blocks are skipped, and so are imports inside functions unless ``lazy``.
    """
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.With | ast.For):
            todo += node.body
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def library_imports(path: Path | str, package_dir: Path | str, lazy_in: tuple[str, ...] = ("stages",)) -> set[Path]:
    """Source files of a package that ``path`` imports at module level, directly or transitively (``ast``).

    Every package ``__init__.py`` on the way counts (importing ``pkg.a.b`` runs ``pkg/__init__.py`` and
    ``pkg/a/__init__.py``); imports under ``if TYPE_CHECKING:`` do not, nor imports inside functions (lazy)
    except in the subpackages ``lazy_in`` (the stage functions import what their rule runs lazily). Used to
    check that a rule's ``lib(...)`` inputs cover the library modules its script runs (tests/test_staleness.py).
    """
    package_dir = Path(package_dir).resolve()
    root, pkg = package_dir.parent, package_dir.name
    seen: set[Path] = set()
    todo = [Path(path).resolve()]
    while todo:
        f = todo.pop()
        in_pkg = f.is_relative_to(package_dir)
        package = list(f.relative_to(root).with_suffix("").parts[:-1]) if in_pkg else []
        lazy = in_pkg and f.relative_to(package_dir).parts[0] in lazy_in
        for node in _module_level_imports(ast.parse(f.read_text(), str(f)), lazy):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                if node.level:
                    if not in_pkg:
                        continue
                    base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
            for name in names:
                parts = name.split(".")
                if parts[0] != pkg:
                    continue
                for i in range(1, len(parts) + 1):
                    cand = root.joinpath(*parts[:i])
                    file = cand / "__init__.py" if cand.is_dir() else cand.with_suffix(".py")
                    if file.is_file() and file not in seen:
                        seen.add(file)
                        todo.append(file)
    return seen


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--directory", default=".", help="working directory (default: .)")
    p.add_argument("-s", "--snakefile", default=None, help="Snakefile (default: Snakemake's lookup)")
    p.add_argument("--configfile", nargs="+", default=[], help="extra config files, as for snakemake")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["build"]:  # everything after `build` goes to snakemake verbatim
        try:
            return build(argv[1:])
        except (RestoreError, subprocess.CalledProcessError) as e:
            print(f"error: {e}\n{(getattr(e, 'stderr', None) or '')[-3000:]}", file=sys.stderr)
            return 1
    parser = argparse.ArgumentParser(prog="python tools/versioning.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_restore = sub.add_parser("restore", help="after dvc checkout/pull: re-stamp outputs so nothing reruns")
    _add_common(p_restore)
    p_restore.add_argument("--force", action="store_true", help="touch even if DVC reports changes (unsafe)")
    p_stale = sub.add_parser("stale", help="list the outputs of jobs that Snakemake would run, by rule")
    _add_common(p_stale)
    p_add = sub.add_parser("add-run", help=f"version the run of these config files: list it in {RUNS_LIST}")
    p_add.add_argument("-d", "--directory", default=".", help="repository root (default: .)")
    p_add.add_argument("--configfile", nargs="+", required=True, help="[BASE] CONFIG, as for snakemake")
    sub.add_parser("build", help="snakemake ARGS..., refusing outputs without Snakemake metadata (DVC's command)")
    args = parser.parse_args(argv)
    # snakemake runs in --directory: paths given relative to the caller's directory must not move with it
    snakefile = Path(args.snakefile).resolve() if getattr(args, "snakefile", None) else None
    configfiles = [Path(c).resolve() for c in args.configfile]
    try:
        if args.command == "add-run":
            stage = add_run(configfiles, args.directory)
            print(f"{RUNS_LIST} lists it; build and version it with: dvc repro {stage}")
        elif args.command == "restore":
            touched = restore(args.directory, snakefile, configfiles, force=args.force)
            if not touched:
                print("nothing to restore: Snakemake has nothing to do")
            for rule, outputs in sorted(touched.items()):
                print(f"touched {rule}: {len(outputs)} outputs")
        else:
            stale = stale_outputs(args.directory, snakefile, configfiles)
            for rule, outputs in sorted(stale.items()):
                print(f"{rule}\t" + " ".join(sorted(outputs)))
            if not stale:
                print("nothing to do")
    except (RestoreError, ValueError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", None) or ""
        print(f"error: {e}\n{detail[-3000:]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
