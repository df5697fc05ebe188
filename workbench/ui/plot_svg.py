"""SVG export of the training curves through pyqtgraph's SVGExporter: one plot, or the four plots placed as shown
in one document (each plot exported on its own, its ids prefixed so the clip paths stay apart)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QWidget


def export_plot_svg(plot: pg.PlotWidget, path: Path) -> None:
    """One plot as an SVG file."""
    from pyqtgraph.exporters import SVGExporter

    _patch_svg_close_path()
    SVGExporter(plot.getPlotItem()).export(str(path))


def export_grid_svg(plots: Iterable[pg.PlotWidget], grid: QWidget, path: Path) -> None:
    """The `plots` where they are in `grid`, each through SVGExporter, as one SVG document."""
    from xml.dom import minidom

    from pyqtgraph.exporters import SVGExporter

    _patch_svg_close_path()
    document = minidom.parseString(
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{grid.width()}" height="{grid.height()}" '
        f'viewBox="0 0 {grid.width()} {grid.height()}"><title>CNN Workbench training curves</title></svg>')
    root = document.documentElement
    assert root is not None
    for index, widget in enumerate(plots):
        part = minidom.parseString(SVGExporter(widget.getPlotItem()).export(toBytes=True)).documentElement
        assert part is not None
        _prefix_ids(part, f"p{index}-")     # each part's clip paths keep their own names
        origin = widget.mapTo(grid, QPoint(0, 0))
        group = document.createElement("g")
        group.setAttribute("transform", f"translate({origin.x()},{origin.y()})")
        for child in list(part.childNodes):
            group.appendChild(document.importNode(child, True))
        root.appendChild(group)
    path.write_text(document.toxml(), encoding="utf-8")


def _prefix_ids(element: Any, prefix: str) -> None:
    """Rename every id under `element`, and the "#id" references to it (url(#id), href), with `prefix`."""
    nodes = [element, *element.getElementsByTagName("*")]
    ids = {n.getAttribute("id") for n in nodes if n.getAttribute("id")}

    def rename(match: re.Match[str]) -> str:
        return f"#{prefix}{match[1]}" if match[1] in ids else match[0]

    for node in nodes:
        for name, value in list(node.attributes.items()):
            if name == "id":
                node.setAttribute(name, prefix + value)
            elif "#" in value:
                node.setAttribute(name, re.sub(r"#([A-Za-z_][\w.-]*)", rename, value))


def _patch_svg_close_path() -> None:
    """pyqtgraph's SVGExporter reads path data as "x,y" pairs and fails on the close-path "Z" that Qt 6 writes
    (pyqtgraph/pyqtgraph#3485, open): drop those tokens before it rewrites the coordinates (the paths already
    end where they start, so nothing drawn changes)."""
    import pyqtgraph.exporters  # noqa: F401  (loads the SVGExporter module)

    module: Any = sys.modules["pyqtgraph.exporters.SVGExporter"]
    original = module.correctCoordinates
    if getattr(original, "without_close_path", False):
        return

    def correct(node: Any, defs: Any, item: Any, options: Any) -> Any:
        for element in node.getElementsByTagName("path"):
            data = element.getAttribute("d")
            if "Z" in data or "z" in data:
                element.setAttribute("d", " ".join(t for t in data.split() if t not in ("Z", "z")))
        return original(node, defs, item, options)

    correct.without_close_path = True  # type: ignore[attr-defined]
    module.correctCoordinates = correct
