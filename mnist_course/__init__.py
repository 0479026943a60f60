"""Helpers for the book "MNIST with PyTorch".

Import what you need from the modules, each named after the idea it serves: ``download`` and
``data`` (chapter 1), ``viz`` (chapter 2), ``shapes`` (chapter 3), ``device``, ``train``,
``history`` and ``evaluate`` (chapter 4), ``models`` and ``recipe`` (chapters 4-6),
``checkpoint`` (chapter 7), ``handwriting`` (chapter 8), ``bench``, ``augment`` and ``record``
(chapter 10). Importing the package does nothing else: no downloads, no seeding, no plotting
settings.
"""

__version__ = "0.2.0"
