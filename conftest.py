"""Repository-wide pytest settings: patience for the notebook (nbval) tests on busy machines."""

from __future__ import annotations

#: Seconds nbval waits between two output messages of a cell. nbval hard-codes 5; on a loaded
#: 2-core CI machine the kernel can take longer than that to flush a chapter's progress-bar
#: updates after a long cell, which failed a correct cell ("Timeout of 5 seconds exceeded
#: waiting for output"). A cell that really hangs is still stopped by --nbval-cell-timeout.
NBVAL_OUTPUT_TIMEOUT = 60


def pytest_collection_modifyitems(config, items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: no notebook tests to adjust
        return
    for item in items:
        if isinstance(item, IPyNbCell):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT
