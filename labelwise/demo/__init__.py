"""The bundled demo dataset: 838 customer-support messages in 5 intents.

A slice of BANKING77 (Casanueva et al. 2020, CC BY 4.0; see ``ATTRIBUTION.md``
beside this file): every train and test row of five intents, two of which
(``top_up_failed`` and ``top_up_reverted``) are easy to confuse. ``labelwise
demo`` and the tests use it; it reads with pandas alone, no service code.

Columns: ``id`` (stable, ``"t00001"`` ..), ``text``, ``label`` (one of
:data:`DEMO_LABELS`) and ``split`` (``"train"`` or ``"test"``, the source's
canonical split).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["DEMO_COLUMNS", "DEMO_FILE", "DEMO_LABELS", "demo_path", "load_demo"]

DEMO_FILE = "support_tickets.csv"
"""File name of the demo dataset inside this package."""

DEMO_LABELS = (
    "card_arrival",
    "exchange_rate",
    "lost_or_stolen_card",
    "top_up_failed",
    "top_up_reverted",
)
"""The five intents of the demo dataset, sorted."""

DEMO_COLUMNS = ("id", "text", "label", "split")
"""Columns of the demo dataset, in file order."""


def demo_path() -> Path:
    """Path of the bundled demo CSV file.

    Returns
    -------
    pathlib.Path
        ``labelwise/demo/support_tickets.csv`` inside the installed package.
    """
    return Path(str(resources.files("labelwise.demo").joinpath(DEMO_FILE)))


def load_demo() -> pd.DataFrame:
    """Load the demo dataset.

    Returns
    -------
    pandas.DataFrame of shape (838, 4)
        Columns :data:`DEMO_COLUMNS`, all strings; ``id`` is unique. Rows are
        in a fixed shuffled order (train rows first), so any head of the
        frame mixes the intents.
    """
    return pd.read_csv(demo_path(), dtype=str, keep_default_na=False, encoding="utf-8")
