"""Keep third-party import and loading noise out of the user's terminal.

Importing transformers' model code imports torchao when it is installed (executorch brings
it), and torchao logs a "Failed to load ... .so" line per CUDA kernel library and registers
enums that make torch's pytree log deprecation lines; ``from_pretrained`` draws a progress bar
for every checkpoint it reads. None of that is the user's doing or actionable by them.
``quiet_loading()`` mutes exactly those loggers and the bar for the duration of a block and
restores them after (nothing outlives the block).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quiet_loading"]

_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Mute torchao's and pytree's import-time logging and transformers' loading bar; the
    model code is imported on entry, so the block's own imports stay quiet too."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        import transformers.modeling_utils  # noqa: F401 - imports torchao, once per process

        yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
