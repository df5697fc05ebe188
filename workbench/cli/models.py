"""`workbench list` and `workbench summary`: the model zoo and data sets, and an architecture's layer table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workbench.cli.common import EXIT_OK, parse_assignments, parse_shape, print_json_line
from workbench.errors import InvalidOptionError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `list` and `summary`."""
    p = sub.add_parser("list", help="list architectures and datasets")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("summary", help="print an architecture's layer table")
    p.add_argument("arch", help="architecture name, e.g. resnet18, vgg_cifar or tv:resnet50")
    p.add_argument("--input", help="input shape C,H,W (default: the architecture's natural input)")
    p.add_argument("--classes", type=int, default=None,
                   help="number of classes (default 10, 1000 for ImageNet layouts)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture option (Python literal)")
    p.add_argument("--depth", type=int, default=3, help="deepest level of nested layers to show")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_summary)


def architectures_info() -> list[dict[str, Any]]:
    """Every registered architecture as plain data (what `list --json` prints)."""
    from workbench.models import get_spec, list_models

    specs = [get_spec(n) for n in list_models()]
    presets: dict[str, list[str]] = {}
    for spec in specs:
        if spec.preset_of:
            presets.setdefault(spec.preset_of, []).append(spec.name)
    return [
        {
            "name": s.name, "family": s.family, "description": s.description, "preset_of": s.preset_of,
            "presets": presets.get(s.name, []), "natural_input": list(s.natural_input),
            "default_classes": s.default_classes,
            "options": [{"name": o.name, "default": o.default, "help": o.help,
                         "choices": list(o.choices) if o.choices is not None else None,
                         "allowed": o.describe()} for o in s.options],
        }
        for s in specs
    ]  # fmt: skip


def datasets_info() -> list[dict[str, Any]]:
    """Every registered data set as plain data."""
    from workbench.data import get_dataset, list_datasets

    rows = []
    for name in list_datasets():
        d = get_dataset(name)
        rows.append({"name": d.name, "title": d.title, "description": d.description, "kind": d.kind,
                     "channels": d.channels, "size": list(d.size), "classes": len(d.classes),
                     "options": [o.to_dict() for o in d.options]})  # fmt: skip
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    """Architectures by family (with options) and data sets."""
    archs, datasets = architectures_info(), datasets_info()
    if args.json:
        print_json_line({"architectures": archs, "datasets": datasets})
        return EXIT_OK
    out, family = [], None
    for a in archs:
        if a["family"] != family:
            family = a["family"]
            out.append(f"\n{family}:")
        shape = "x".join(str(v) for v in a["natural_input"])
        opts = ", ".join(f"{o['name']}={o['default']!r}" for o in a["options"])
        base = f" (preset of {a['preset_of']})" if a["preset_of"] else ""
        if a["family"] == "torchvision":
            out.append(f"  {a['name']:<28} {shape:>11}  {a['default_classes']:>4} classes  [{opts}]")
        else:
            out.append(f"  {a['name']:<28} {shape:>11}  {a['default_classes']:>4} classes{base}  {a['description']}")
            out.extend(f"      {o['name']} = {o['default']!r}: {o['help']}" for o in a["options"])
    out.append("\nDatasets:")
    out.extend(f"  {d['name']:<28} {d['channels']}x{d['size'][0]}x{d['size'][1]}  {d['title']}" for d in datasets)
    sys.stdout.write("\n".join(out).lstrip("\n") + "\n")
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    """The torchinfo-style table, or one JSON object."""
    from workbench.models import summarize

    if args.depth < 0:
        raise InvalidOptionError(f"--depth must be 0 or more, got {args.depth}.")
    shape = parse_shape(args.input)
    summary = summarize(args.arch, input_shape=shape, num_classes=args.classes, options=parse_assignments(args.set))
    if not args.json:
        sys.stdout.write(summary.format_table(args.depth) + "\n")
        return EXIT_OK
    data = summary.to_dict()
    totals = data["totals"]
    print_json_line({"arch": summary.arch, "input": summary.input_shape, "classes": summary.num_classes,
                     "options": data["options"], "total_params": totals["total_params"],
                     "trainable_params": totals["trainable_params"], "mult_adds": totals["mult_adds"],
                     "totals": totals, "layers": data["layers"], "parameters": data["parameters"],
                     "notes": data["notes"]})  # fmt: skip
    return EXIT_OK
