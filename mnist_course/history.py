"""What a training run recorded: every batch's loss and one typed record per epoch (chapter 4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class EpochRecord:
    """One epoch of :func:`~mnist_course.train.fit` (chapter 4).

    Args:
        epoch: its number, from 1.
        train_loss: mean training loss per example over the epoch (in train mode, while learning).
        train_accuracy: running training accuracy over the epoch (None if not measured).
        eval_loss: loss on the evaluation data after the epoch (None without it).
        eval_accuracy: accuracy on the evaluation data after the epoch (None without it).
        examples_seen: training examples seen since the start of the run.
        seconds: training time of the epoch, evaluation excluded (None if not measured).
    """

    epoch: int
    train_loss: float
    train_accuracy: float | None
    eval_loss: float | None
    eval_accuracy: float | None
    examples_seen: int
    seconds: float | None


@dataclass
class History:
    """What :func:`~mnist_course.train.fit` recorded (chapter 4).

    Args:
        batches: ``[examples_seen, loss]`` after every training batch.
        epochs: one :class:`EpochRecord` per epoch.
    """

    batches: list[list] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def examples_seen(self) -> int:
        """Training examples seen so far."""
        return self.batches[-1][0] if self.batches else 0

    @property
    def train_seconds(self) -> float:
        """Training time of all epochs, evaluation excluded."""
        return sum(e.seconds or 0.0 for e in self.epochs)

    @property
    def last(self) -> EpochRecord:
        """The latest epoch's record."""
        if not self.epochs:
            raise ValueError("the history has no epochs yet")
        return self.epochs[-1]

    def to_dict(self) -> dict:
        """Plain lists and dicts, for a checkpoint or JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """The inverse of :meth:`to_dict` (checkpoints of mnist_course 0.1, with ``test_*`` keys, too)."""
        renamed = {"test_loss": "eval_loss", "test_accuracy": "eval_accuracy"}
        epochs = [EpochRecord(**{renamed.get(k, k): v for k, v in e.items()}) for e in data["epochs"]]
        return cls(batches=[list(b) for b in data["batches"]], epochs=epochs)
