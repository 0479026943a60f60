"""mnist_course.sample_digits: generated photo-like digits for chapter 10 and the CLI tests."""

from __future__ import annotations

import numpy as np

from mnist_course.handwriting import prepare_digit
from mnist_course.sample_digits import make_samples

MEAN, STD = 0.1307, 0.3081


def test_samples_are_reproducible_varied_and_preparable():
    a, b = make_samples(2, seed=4), make_samples(2, seed=4)
    assert [s.label for s in a] == list(range(10)) * 2
    assert all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b, strict=True))
    assert len({s.image.size for s in a}) > 10 and len({s.image.mode for s in make_samples(6)}) >= 3
    for s in a:
        assert prepare_digit(s.image, mean=MEAN, std=STD).image.max() > 0.5
