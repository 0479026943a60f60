"""Helpers for the book "MNIST with PyTorch".

Import what you need from the modules, each named after the idea it serves: ``download`` and
``data`` (chapters 1 and 4: the validation split), ``viz`` (chapters 2, 4 and 6),
``shapes`` and ``table`` (chapter 5), ``device``, ``train``, ``history`` and ``evaluate``
(chapters 4 and 6), ``models`` (chapters 4 and 6-8: each written as a class in a chapter first)
and ``recipe`` (chapters 7-8), ``checkpoint`` and ``errors`` (chapter 9), ``handwriting`` and
``sample_digits`` (chapter 10), ``bench``, ``augment``, ``record`` and ``results`` (chapter 12),
``cli`` (``python -m mnist_course``). Importing the package does nothing else: no downloads, no
seeding, no plotting settings.
"""

__version__ = "0.5.0"
