"""Text rendering of a ModelSummary in torchinfo's layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.models.summary import LayerRow, ModelSummary

_HEADERS = ("Layer (type:depth-idx)", "Kernel Shape", "Input Shape", "Output Shape", "Param #", "Mult-Adds", "RF")


def _shape(value: list[int] | None) -> str:
    return "--" if value is None else "[" + ", ".join(str(v) for v in value) + "]"


def _kernel(value: list[int] | None) -> str:
    if value is None:
        return "--"
    return str(value[0]) if len(value) == 1 else _shape(value)


def _count(n: int, trainable: bool = True) -> str:
    if n <= 0:
        return "--"
    return f"{n:,}" if trainable else f"({n:,})"


def _label(row: LayerRow) -> str:
    if row.depth == 0:
        return row.type
    return f"{'│    ' * (row.depth - 1)}└─{row.type}: {row.depth_index}"


def format_table(summary: ModelSummary, depth: int = 3) -> str:
    """Render `summary` like torchinfo: rows down to `depth`, then totals and memory estimates.

    A last column "RF" gives each row's receptive field; lecture notes follow the table, one "Note:" line each.
    """
    rows = summary.layers
    visible = [r for r in rows if r.depth <= depth]
    children: dict[int, list[LayerRow]] = {}
    for r in visible:
        if r.parent is not None:
            children.setdefault(r.parent, []).append(r)
    table = []
    for r in visible:
        shown = children.get(r.index, [])
        if r.is_leaf or r.depth == depth or not shown:
            params, adds = _count(r.params, r.trainable_params > 0), _count(r.mult_adds)
        else:  # torchinfo shows only what the visible children do not already account for
            params = _count(r.params - sum(c.params for c in shown))
            adds = "--"
        rf = "--" if r.receptive_field is None else str(r.receptive_field)
        table.append((_label(r), _kernel(r.kernel), _shape(r.input_shape), _shape(r.output_shape), params, adds, rf))
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(_HEADERS)]
    widths[0] = max(widths[0], 30)

    def line(cells: tuple[str, ...]) -> str:
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))
        return (cells[0].ljust(widths[0]) + "  " + rest).rstrip()

    bar = "=" * (sum(widths) + 2 * (len(widths) - 1))
    t = summary.totals
    out = [bar, line(_HEADERS), bar, *(line(cells) for cells in table), bar]
    out += [
        f"Total params: {t.total_params:,}",
        f"Trainable params: {t.trainable_params:,}",
        f"Non-trainable params: {t.non_trainable_params:,}",
        f"Total mult-adds: {t.mult_adds:,}",
        bar,
        f"Input size (MB): {t.input_size_mb:.2f}",
        f"Forward/backward pass size (MB): {t.forward_backward_mb:.2f}",
        f"Params size (MB): {t.params_mb:.2f}",
        f"Estimated Total Size (MB): {t.total_mb:.2f}",
        bar,
    ]
    out += [f"Note: {note}" for note in summary.notes]
    return "\n".join(out)
