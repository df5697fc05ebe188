"""Where things live: bundled resources and the user's workspace."""

from __future__ import annotations

import os
from importlib import resources as _resources
from pathlib import Path

APP_NAME = "cnn-workbench"


def resources_dir() -> Path:
    """The bundled `resources/` folder, from a source checkout, an editable install or a wheel."""
    here = Path(__file__).resolve().parent
    # A wheel ships it as workbench/resources; a checkout keeps it beside the package.
    for candidate in (here / "resources", here.parent / "resources"):
        if (candidate / "__init__.py").is_file():
            return candidate
    return Path(str(_resources.files("workbench.resources")))


def resource(*parts: str) -> Path:
    """Path of one bundled resource file, e.g. resource("data", "digits.npz")."""
    return resources_dir().joinpath(*parts)


def default_workspace() -> Path:
    """The workspace: $WORKBENCH_HOME if set, else the per-user data folder."""
    env = os.environ.get("WORKBENCH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_data_root() -> Path:
    """Where torchvision data sets are looked for and downloaded: $WORKBENCH_DATA or <workspace>/data."""
    env = os.environ.get("WORKBENCH_DATA")
    return Path(env).expanduser() if env else default_workspace() / "data"
