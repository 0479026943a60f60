"""Helpers for the book "MNIST with PyTorch".

Import what you need from the modules, each named after the idea it serves: ``download`` and
``data`` (chapter 1), ``viz`` and ``widgets`` (chapters 2, 3), ``shapes`` and ``table`` (chapter
3), ``device``, ``train``, ``history`` and ``evaluate`` (chapter 4), ``models`` and ``recipe``
(chapters 4-6), ``checkpoint`` and ``errors`` (chapter 7), ``handwriting`` and
``sample_digits`` (chapter 8), ``bench``, ``augment``, ``record`` and ``results`` (chapter 10),
``cli`` (``python -m mnist_course``). Importing the package does nothing else: no downloads, no
seeding, no plotting settings.
"""

__version__ = "0.3.0"
