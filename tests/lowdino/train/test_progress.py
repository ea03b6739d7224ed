"""The terminal progress bar (lowdino/train/progress.py)."""

from __future__ import annotations

import io
import sys

import pytest

from lowdino.train.progress import ProgressBar


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_draws_only_on_a_terminal(monkeypatch, tty) -> None:
    stream = _Terminal(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    bar = ProgressBar(total=4, initial=2)  # resumed at step 2 of 4
    for _ in range(2):
        bar.update({"epoch": 1.5, "loss": 2.25, "images_per_sec": 120.0})
    bar.close()
    text = stream.getvalue()
    if tty:
        assert "4/4" in text
        assert "epoch=1.50" in text
        assert "loss=2.2500" in text
        assert "img_s=120" in text
    else:
        assert text == ""
