"""`workbench runs`: the runs stored in a workspace."""

from __future__ import annotations

import argparse
import time

from workbench.cli.common import EXIT_OK, WORKSPACE_HELP, print_json_line, workspace_arg


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `runs`."""
    p = sub.add_parser("runs", help="list the runs in a workspace")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON list as the last line")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    """List the workspace's runs, newest first: a table, or a JSON list as the last line."""
    from workbench.runs import RunStore

    store = RunStore(workspace_arg(args.workspace))
    try:
        records = store.list_runs()
    finally:
        store.close()
    if args.json:
        print_json_line([r.to_dict() for r in records])
        return EXIT_OK
    if not records:
        print(f"No runs in {store.workspace} yet; start one with `workbench train`.")
        return EXIT_OK
    header = ("RUN ID", "NAME", "STATUS", "ARCH", "DATASET", "EPOCHS", "BEST VAL", "CREATED")
    rows = [header]
    for r in records:
        planned = r.epochs_planned
        epochs = f"{r.epochs_completed}/{planned}" if planned is not None else str(r.epochs_completed)
        best = "-" if r.best_val_accuracy is None else f"{100 * r.best_val_accuracy:.2f}%"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        rows.append((r.run_id, r.name or "-", str(r.status), r.arch, r.dataset, epochs, best, created))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK
