"""`workbench runs`: the runs stored in a workspace (list), one run in full (`show`), the table as CSV (`export`).

`runs` alone lists; subcommands come from RUNS_SUBCOMMANDS (name -> registrar), so more can be added (e.g.
`delete`) without touching the others. Options of `runs` itself (`--workspace`, `--json`) may stand before the
subcommand (`runs --workspace W show ID`) or after it (`runs show ID --workspace W`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.cli.common import EXIT_OK, WORKSPACE_HELP, finite, print_json_line, workspace_arg
from workbench.errors import UnknownNameError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `runs` and its subcommands."""
    p = sub.add_parser("runs", help="list the runs in a workspace (runs show ID, runs export)")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON list as the last line")
    p.set_defaults(func=cmd_runs)
    runs_sub = p.add_subparsers(dest="runs_command", metavar="{" + ",".join(RUNS_SUBCOMMANDS) + "}",
                                parser_class=type(p))
    for register in RUNS_SUBCOMMANDS.values():
        register(runs_sub)


def _shared(p: argparse.ArgumentParser, *, json_help: str | None = "print one JSON object as the last line") -> None:
    """--workspace (and --json) on a subcommand; SUPPRESS keeps a value given before the subcommand."""
    p.add_argument("--workspace", default=argparse.SUPPRESS, help=WORKSPACE_HELP)
    if json_help:
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="one run in full: configuration, options, data options, per-epoch metrics")
    p.add_argument("run_id", metavar="RUN_ID")
    _shared(p)
    p.set_defaults(func=cmd_runs_show)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="the runs table as CSV, one row per run (stdout, or --csv FILE)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write the CSV to FILE instead of stdout")
    _shared(p, json_help=None)
    p.set_defaults(func=cmd_runs_export)


def _add_delete(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("delete", help="delete runs: their records, metrics, history, checkpoints and folders")
    p.add_argument("run_ids", metavar="RUN_ID", nargs="+")
    p.add_argument("--force", action="store_true", help="delete even a run another process still trains")
    _shared(p, json_help=None)
    p.set_defaults(func=cmd_runs_delete)


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="re-import run folders that lost their record (e.g. runs.sqlite was deleted)")
    _shared(p)
    p.set_defaults(func=cmd_runs_import)


# Subcommands of `runs`, in help order: name -> function adding it to the subparsers.
RUNS_SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "show": _add_show,
    "export": _add_export,
    "delete": _add_delete,
    "import": _add_import,
}


def _list_store(workspace: str | None) -> Any:
    """The store to list, or None when the workspace has no database yet; a workspace folder that does not exist
    is an error (a mistyped --workspace is not created)."""
    from workbench.paths import default_workspace
    from workbench.runs import DB_NAME, RunStore

    folder = workspace_arg(workspace)
    if folder is not None and not folder.is_dir():
        raise UnknownNameError(f"Workspace {folder} does not exist; check --workspace.")
    folder = folder or default_workspace()
    return RunStore(folder) if (folder / DB_NAME).is_file() or (folder / "runs").is_dir() else None


def cmd_runs(args: argparse.Namespace) -> int:
    """List the workspace's runs, newest first: a table, or a JSON list as the last line."""
    from workbench.paths import default_workspace

    store = _list_store(args.workspace)
    orphans: list[Path] = []
    records: list[Any] = []
    if store is not None:
        try:
            records, orphans = store.list_runs(), store.orphan_folders()
        finally:
            store.close()
    if orphans:
        print(f"workbench: {len(orphans)} run folder(s) in {store.runs_root} have no record in runs.sqlite (was it "
              "deleted?); re-import them with `workbench runs import`.", file=sys.stderr)
    if args.json:
        print_json_line([r.to_dict() for r in records])
        return EXIT_OK
    if not records:
        where = store.workspace if store is not None else workspace_arg(args.workspace) or default_workspace()
        print(f"No runs in {where} yet; start one with `workbench train`.")
        return EXIT_OK
    header = ("RUN ID", "NAME", "STATUS", "ARCH", "DATASET", "EPOCHS", "BEST VAL", "CREATED")
    rows = [header]
    for r in records:
        planned = r.epochs_planned
        epochs = f"{r.epochs_completed}/{planned}" if planned is not None else str(r.epochs_completed)
        best = "-" if r.best_val_accuracy is None else f"{100 * r.best_val_accuracy:.2f}%"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        rows.append((r.run_id, r.name or "-", str(r.status), r.arch, r.dataset, epochs, best, created))
    _print_columns(rows)
    return EXIT_OK


def _print_columns(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _open_existing(workspace: str | None) -> Any:
    """The RunStore of a workspace that has a database; UnknownNameError (nothing created) otherwise."""
    from workbench.runs.store import open_existing

    return open_existing(workspace_arg(workspace))


EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_second")


def run_details(record: Any, metrics: dict[str, list[tuple[int, int, float]]]) -> dict[str, Any]:
    """What `runs show --json` prints: the record, its table row (parameters counted) and one dict per epoch."""
    from workbench.runs.table import parameter_count, run_row

    epochs: dict[int, dict[str, Any]] = {}
    for name, rows in metrics.items():
        if name.startswith("step_"):
            continue
        for epoch, _step, value in rows:
            epochs.setdefault(epoch, {"epoch": epoch})[name] = finite(value)
    steps = {name: len(rows) for name, rows in metrics.items() if name.startswith("step_")}
    parameters = parameter_count(record)
    return {**record.to_dict(), "parameters": parameters, "row": run_row(record, parameters=parameters).to_dict(),
            "epochs": [epochs[e] for e in sorted(epochs)], "step_points": steps}


def cmd_runs_delete(args: argparse.Namespace) -> int:
    """Delete the named runs (the same engine call as the app's Delete)."""
    store = _open_existing(getattr(args, "workspace", None))
    try:
        for run_id in args.run_ids:
            store.delete_run(run_id, force=args.force)
            print(f"Deleted run {run_id}.")
    finally:
        store.close()
    return EXIT_OK


def cmd_runs_import(args: argparse.Namespace) -> int:
    """Re-import orphan run folders from their checkpoints."""
    from workbench.runs import RunStore
    from workbench.training.reimport import reimport_runs

    folder = workspace_arg(getattr(args, "workspace", None))
    if folder is not None and not folder.is_dir():
        raise UnknownNameError(f"Workspace {folder} does not exist; check --workspace.")
    store = RunStore(folder)
    try:
        imported, problems = reimport_runs(store)
    finally:
        store.close()
    for problem in problems:
        print(f"workbench: {problem}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json_line({"imported": imported, "problems": problems})
    else:
        print(f"Re-imported {len(imported)} run(s)" + (f": {', '.join(imported)}." if imported else "."))
    return EXIT_OK


def cmd_runs_show(args: argparse.Namespace) -> int:
    """Print one run: its settings and per-epoch metrics, or one JSON object as the last line."""
    store = _open_existing(getattr(args, "workspace", None))
    try:
        record = store.get_run(args.run_id)
        metrics = store.metrics(args.run_id)
    finally:
        store.close()
    details = run_details(record, metrics)
    if getattr(args, "json", False):
        print_json_line(details)
        return EXIT_OK
    _print_show(record, details)
    return EXIT_OK


def _print_show(record: Any, details: dict[str, Any]) -> None:
    from workbench.runs.table import RUN_COLUMNS, run_row

    row = run_row(record, parameters=details["parameters"])
    print(f"Run {record.run_id}" + (f" ({record.name})" if record.name else "") + f": {record.status}")
    lines = [(c.title, row.text(c.key)) for c in RUN_COLUMNS if c.key not in ("run_id", "name", "status")]
    lines += [("Finished", time.strftime("%Y-%m-%d %H:%M", time.localtime(record.finished_at)))
              if record.finished_at else ("Finished", "-"), ("Folder", str(record.folder))]
    if record.message:
        lines.append(("Message", record.message))
    _print_pairs(lines)
    print("\nArchitecture options:")
    _print_pairs([(k, _text(v)) for k, v in record.arch_options.items()] or [("(none)", "")])
    print("\nData options:")
    _print_pairs([(k, _text(v)) for k, v in (record.dataset_options or {}).items()] or [("(none)", "")])
    print("\nConfiguration:")
    _print_pairs([(k, _text(v)) for k, v in sorted(record.config.items())])
    print("\nEpochs:")
    if not details["epochs"]:
        print("  (no finished epoch)")
        return
    titles = ("EPOCH", "TRAIN LOSS", "TRAIN ACC", "VAL LOSS", "VAL ACC", "LR", "IMG/S")
    table = [titles]
    for e in details["epochs"]:
        table.append((str(e["epoch"]), _num(e.get("train_loss"), ".4f"), _pct(e.get("train_accuracy")),
                      _num(e.get("val_loss"), ".4f"), _pct(e.get("val_accuracy")), _num(e.get("lr"), ".4g"),
                      _num(e.get("images_per_second"), ".0f")))
    _print_columns([tuple(("  " if i == 0 else "") + c for i, c in enumerate(r)) for r in table])


def _print_pairs(pairs: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        print(f"  {key.ljust(width)}  {value}".rstrip())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def cmd_runs_export(args: argparse.Namespace) -> int:
    """Write the runs table (every column, parameters counted) as CSV to stdout or `--csv FILE`."""
    from workbench.runs.table import EXPORT_FIELDS, run_table

    workspace = getattr(args, "workspace", None)
    try:
        store = _open_existing(workspace)
    except UnknownNameError:
        records: list[Any] = []  # no database yet: just the header
    else:
        try:
            records = store.list_runs()
        finally:
            store.close()
    rows = run_table(records, parameters=True) if records else []
    fields = list(EXPORT_FIELDS)
    if args.csv:
        _write_csv(Path(args.csv).expanduser(), fields, rows)
        print(f"Wrote {len(rows)} run{'s' if len(rows) != 1 else ''} to {args.csv}.", file=sys.stderr)
    else:
        _csv_rows(sys.stdout, fields, rows)
    return EXIT_OK


def _csv_rows(fh: Any, fields: list[str], rows: list[Any]) -> None:
    writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        data = row.to_dict()
        data["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(row.created_at))
        writer.writerow({k: "" if data.get(k) is None else data.get(k) for k in fields})


def _write_csv(path: Path, fields: list[str], rows: list[Any]) -> None:
    from workbench.errors import WorkspaceError

    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            _csv_rows(fh, fields, rows)
    except OSError as exc:
        raise WorkspaceError(f"Cannot write {path} ({exc.strerror or exc}); choose another --csv file.") from None
