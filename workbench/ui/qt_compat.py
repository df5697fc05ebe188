"""Work-around for reference-count bugs of PySide6 6.12 on Python 3.11 (imported by workbench.ui).

On Python < 3.12, None/True/False are ordinary reference-counted objects. PySide6 6.12 returns them
without taking a new reference: every call of a void method (`update()`, `processEvents()`,
`QTimer.start()`, …) takes one reference from None, `Signal.emit()` takes one from True, and signals
typed `dict`/`list` drop one per None inside. After a few thousand calls the interpreter aborts with
"none_dealloc: deallocating None". Python 3.12 made these singletons immortal; we do the same here by
giving them a reference count so large that no program can use it up (harmless if PySide is fixed).
"""

from __future__ import annotations

import ctypes
import platform
import sys

_GIFT = 1 << 40  # ~10^12 leaked references before any trouble
applied = False


def apply() -> bool:
    """Make None/True/False effectively immortal on CPython < 3.12; idempotent. Returns whether applied."""
    global applied
    if applied or sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return applied
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every PyObject in CPython release builds.
        ctypes.c_ssize_t.from_address(id(singleton)).value += _GIFT
    applied = True
    return applied


apply()
