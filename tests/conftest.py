"""Fixtures shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The shared trained LeNet run and its `run`/`restored`/`splits` fixtures (module scope, trained once per session).
pytest_plugins = ["analysis_support"]


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Train with one intra-op thread: two threads on a busy 2-core machine thrash, one is steadier."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
