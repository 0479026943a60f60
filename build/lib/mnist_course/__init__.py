"""Helpers for the book "MNIST with PyTorch".

Import what you need from the modules, each named after the chapter idea it serves:
``data`` (chapter 1), ``viz`` (chapter 2), ``shapes`` (chapter 3), ``models``, ``train``,
``evaluate`` (chapters 4-6) and ``checkpoint`` (chapter 7). Importing the package does nothing
else: no downloads, no seeding, no plotting settings.
"""

__version__ = "0.1.0"
