"""Helpers for the book "MNIST with PyTorch".

Import what you need from the modules, each named after the idea it serves: ``download`` and
``data`` (chapter 1), ``viz`` and ``widgets`` (chapters 2, 5), ``shapes`` and ``table`` (chapter
5), ``device``, ``train``, ``history`` and ``evaluate`` (chapter 6), ``models`` and ``recipe``
(chapters 6-8), ``checkpoint`` and ``errors`` (chapter 9), ``handwriting`` and
``sample_digits`` (chapter 10), ``bench``, ``augment``, ``record`` and ``results`` (chapter 12),
``cli`` (``python -m mnist_course``). Importing the package does nothing else: no downloads, no
seeding, no plotting settings.
"""

__version__ = "0.3.0"
