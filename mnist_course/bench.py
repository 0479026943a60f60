"""Benchmarks: where training time goes, and how fast 99% can be reached (chapter 12).

``python -m mnist_course bench [--quick] [--device D] [--out FILE.json]`` runs every measurement
in one process and reports ratios within that run (these machines are shared and noisy: each
timing is the median of its repeats). Every measurement returns a dataclass; :func:`measure`
gathers them into a :class:`BenchResult`. It is a script, not a test: the test suite only checks
the shape of what ``--quick`` gives.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from mnist_course.data import TensorData, TensorLoader, load_tensors, mnist_datasets, train_val_split
from mnist_course.device import device_of, native_bf16, pick_device
from mnist_course.evaluate import evaluate
from mnist_course.models import ConvNetBN, LeNet, LeNet5, PyTorchExamplesNet
from mnist_course.recipe import Budget, build_run
from mnist_course.results import Environment, environment, from_dict, read_reference

#: The book's fast recipe: one epoch of batch 64, one-cycle Adam (20% warm-up, linear anneal,
#: beta2 0.99), label smoothing 0.1, and the speed levers (channels_last, bf16 where native,
#: fused Adam). Its peak rate and label smoothing are checked on the validation split against
#: :data:`FAST_CANDIDATES` (:func:`choose_fast_recipe`): no candidate beats them on every seed.
FAST_BUDGET = Budget(
    epochs=1,
    batch_size=64,
    lr=5e-3,
    warmup=0.2,
    anneal="linear",
    beta2=0.99,
    label_smoothing=0.1,
    channels_last=True,
    bf16=True,
    fused=True,
)


#: The candidates for the fast recipe's two tuned settings, compared on the validation split.
FAST_CANDIDATES = {"lr": (3e-3, 5e-3, 8e-3), "label_smoothing": (0.0, 0.1)}


@dataclass(frozen=True)
class Recipe:
    """One entry of the time-to-99% race (chapter 12).

    Args:
        model: the model class.
        budget: the training recipe.
        data: ``"tensors"`` (the in-memory path) or ``"dataloader"`` (torchvision + ToTensor, as in seed 002).
        normalize: apply the data's mean and std.
    """

    model: Callable[[], nn.Module]
    budget: Budget
    data: str = "tensors"
    normalize: bool = True


#: The recipes of the race: the first is the baseline (seed 002's), the others the book's.
RECIPES: dict[str, Recipe] = {
    "seed 002 recipe (LeNet-5)": Recipe(
        LeNet5, Budget(epochs=20, batch_size=100, lr=1e-3, schedule="constant"), data="dataloader", normalize=False
    ),
    "book's fast recipe (LeNet-5)": Recipe(LeNet5, FAST_BUDGET),
    "book's recipe, LeNet (no padding)": Recipe(LeNet, FAST_BUDGET),
    "book's recipe, ConvNet-BN": Recipe(ConvNetBN, FAST_BUDGET),
}


@dataclass
class DataPath:
    """One LeNet-5 epoch through a ``DataLoader`` vs in-memory tensors (chapter 12)."""

    images: int
    batch_size: int
    model: str
    dataloader_seconds: float
    tensor_seconds: float
    speedup: float


@dataclass
class RaceSettings:
    """What a race entry trained with, as it ran (chapter 12).

    bf16 only where native, fused only where available.

    Args:
        model: the model class's name.
        data, normalize: as in :class:`Recipe`.
        epochs, batch_size, lr, optimizer, schedule, warmup, anneal, beta2, label_smoothing, channels_last:
            the :class:`~mnist_course.recipe.Budget` fields used.
        precision: ``"bf16 autocast"`` or ``"float32"``.
        fused_optimizer: whether the optimizer step was the fused one.
    """

    model: str
    data: str
    normalize: bool
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    schedule: str
    warmup: float
    anneal: str
    beta2: float
    label_smoothing: float
    channels_last: bool
    precision: str
    fused_optimizer: bool


@dataclass
class RaceRun:
    """One seed of a race: whether and when the target was reached (chapter 12)."""

    seed: int
    reached: bool
    seconds: float
    epochs: int
    accuracy_per_epoch: list[float]


@dataclass
class Race:
    """A recipe's runs over several seeds, and the median time to the target (chapter 12).

    ``median_seconds`` is None (not reached) unless most seeds got there: a miss counts as infinitely slow.
    """

    settings: RaceSettings
    seeds: list[int]
    reached: int
    median_seconds: float | None
    runs: list[RaceRun]


@dataclass
class LeverRow:
    """One LeNet-5 epoch with some speed levers on (chapter 12)."""

    levers: str
    seconds: float | None
    speedup: float | None = None
    note: str | None = None


@dataclass
class BatchSizeRow:
    """Epoch time at one batch size (chapter 12).

    Args:
        batch_size: examples per step.
        seconds: median training time of one LeNet-5 epoch.
    """

    batch_size: int
    seconds: float


@dataclass
class FractionRow:
    """Epoch time on a fraction of the training set (chapter 12).

    Args:
        fraction: the share of the training set used.
        images: how many images that is.
        seconds: median training time of one LeNet-5 epoch at batch 128.
    """

    fraction: float
    images: int
    seconds: float


@dataclass
class ThreadsRow:
    """Epoch time with a number of CPU threads (chapter 12).

    Args:
        threads: ``torch.set_num_threads`` during the epoch.
        seconds: median training time of one epoch of seed 001's Net at batch 128.
    """

    threads: int
    seconds: float


@dataclass
class OpShare:
    """One operation's share of the CPU time of a training step (chapter 12)."""

    op: str
    self_cpu_share: float
    calls: int


@dataclass
class CandidateRow:
    """One candidate setting of the fast recipe, measured on the validation split (chapter 12).

    Args:
        lr: the peak learning rate.
        label_smoothing: the label smoothing.
        accuracies: validation accuracy after the recipe's one epoch, one per seed.
    """

    lr: float
    label_smoothing: float
    accuracies: list[float]

    @property
    def mean(self) -> float:
        """The mean validation accuracy over the seeds."""
        return sum(self.accuracies) / len(self.accuracies)


@dataclass
class BenchResult:
    """Everything :func:`measure` measured (chapter 12).

    ``fast_recipe_choice_note`` says when the fast recipe's validation check was measured, if
    not in the same run as the rest.
    """

    environment: Environment
    quick: bool
    repeats: int
    data_path: DataPath
    time_to_99: dict[str, Race]
    time_to_99_speedup: float | None
    fastest_to_99: str | None
    scaling_batch_size: list[BatchSizeRow]
    scaling_fraction: list[FractionRow]
    step_profile: list[OpShare]
    speed_levers: list[LeverRow]
    threads: list[ThreadsRow] | None = None
    gpu: str = field(default="")
    fast_recipe_choice: list[CandidateRow] | None = None
    fast_recipe_choice_note: str = ""


def _median_seconds(run: Callable[[], float], repeats: int) -> float:
    return statistics.median(run() for _ in range(repeats))


def epoch_seconds(
    model_factory, loader, device=None, *, channels_last=False, bf16=False, fused=False, compile=False
) -> float:
    """Training time of one epoch of ``loader`` with Adam (lr 1e-3), from freshly seeded weights (chapter 12).

    Args:
        model_factory: the model class.
        loader: the batches (a ``DataLoader`` or ``TensorLoader``).
        device: where the model trains; default :func:`~mnist_course.device.pick_device`.
        channels_last: the channels-last memory layout.
        bf16: bf16 autocast, only where the hardware has it natively.
        fused: the fused optimizer step.
        compile: wrap the model in ``torch.compile`` (compilation included: warm it up first).

    Returns:
        float: seconds of training, evaluation excluded.
    """
    budget = Budget(epochs=1, lr=1e-3, schedule="constant", channels_last=channels_last, bf16=bf16, fused=fused)
    run = build_run(model_factory, loader, budget, device=device)
    if compile:
        run.model = torch.compile(run.model)
    return run.fit(progress=False).last.seconds


def recipe_data(recipe: Recipe, device=None, *, root=None, limit=None):
    """The training data of ``recipe``: tensors on ``device``, or a torchvision dataset (chapter 12).

    Args:
        recipe: the race entry; its ``data`` and ``normalize`` decide the form.
        device: where the tensors go (the torchvision dataset stays on the CPU).
        root: the data root.
        limit: keep only the first ``limit`` images.

    Returns:
        :class:`~mnist_course.data.TensorData` for ``"tensors"``, else the torchvision training set
        (a ``Subset`` with ``limit``).
    """
    if recipe.data == "tensors":
        return load_tensors(True, root, device=device, normalize=recipe.normalize, limit=limit)
    dataset, _ = mnist_datasets(root, normalize=recipe.normalize)
    return torch.utils.data.Subset(dataset, range(limit)) if limit is not None else dataset


def time_to_accuracy(recipe: Recipe, train, test: TensorData, device=None, *, seed: int = 0, target: float = 0.99):
    """Train ``recipe`` epoch by epoch until the accuracy on ``test`` first reaches ``target`` (chapter 12).

    Args:
        recipe: the race entry.
        train: its training data (:func:`recipe_data`).
        test: the evaluation data, normalised as the recipe says.
        device: where to train; default :func:`~mnist_course.device.pick_device`.
        seed: replaces the budget's seed.
        target: the accuracy to reach.

    Returns:
        tuple: ``(RaceRun, RaceSettings)``; the run's ``seconds`` count training up to that epoch only.
    """
    budget = recipe.budget.with_(seed=seed)
    run = build_run(recipe.model, train, budget, device=device)
    history = run.fit_until(test, target)
    result = RaceRun(
        seed=seed,
        reached=history.last.eval_accuracy >= target,
        seconds=history.train_seconds,
        epochs=len(history.epochs),
        accuracy_per_epoch=[e.eval_accuracy for e in history.epochs],
    )
    settings = RaceSettings(
        model=recipe.model.__name__,
        data=recipe.data,
        normalize=recipe.normalize,
        **{k: getattr(budget, k) for k in ("epochs", "batch_size", "lr", "optimizer", "schedule", "warmup")},
        **{k: getattr(budget, k) for k in ("anneal", "beta2", "label_smoothing", "channels_last")},
        precision="bf16 autocast" if run.autocast is not None else "float32",
        fused_optimizer=bool(run.optimizer.defaults.get("fused")),
    )
    return result, settings


def choose_fast_recipe(
    device=None, seeds=(0, 1, 2), *, root=None, limit=None, data: TensorData | None = None
) -> list[CandidateRow]:
    """The fast recipe's peak rate and label smoothing, chosen on the validation split (chapter 12).

    LeNet-5 trains with :data:`FAST_BUDGET` and each combination of :data:`FAST_CANDIDATES` on
    the 55,000 images of the training split, once per seed; the validation split scores it.
    The test set plays no part: the race then reports the chosen recipe against it.

    Args:
        device: where to train; default :func:`~mnist_course.device.pick_device`.
        seeds: e.g. ``(0, 1, 2)``.
        root: the data root.
        limit: split only the first ``limit`` training images (for tests; more than 5,000).
        data: the training images, already loaded on ``device`` (as :func:`measure` has them);
            default: load them with ``root`` and ``limit``.

    Returns:
        list[CandidateRow]: one row per combination; the chosen one has the highest ``mean``.
    """
    device = pick_device(device)
    if data is None:
        data = load_tensors(True, root, device=device, limit=limit)
    train, val = train_val_split(data)
    rows = []
    for lr in FAST_CANDIDATES["lr"]:
        for smoothing in FAST_CANDIDATES["label_smoothing"]:
            budget = FAST_BUDGET.with_(lr=lr, label_smoothing=smoothing)
            accuracies = []
            for seed in seeds:
                run = build_run(LeNet5, train, budget.with_(seed=seed), device=device)
                run.fit(progress=False)
                accuracies.append(evaluate(run.model, val).accuracy)
            rows.append(CandidateRow(lr, smoothing, accuracies))
    return rows


def race(recipe: Recipe, device=None, seeds=(0, 1, 2), *, target: float = 0.99, root=None, limit=None) -> Race:
    """Time to ``target`` for ``recipe`` once per seed, and the median over seeds (chapter 12).

    The data is loaded once for all seeds. The target is test accuracy, as speed records
    report it.

    Args:
        recipe: the race entry.
        device: where to train; default :func:`~mnist_course.device.pick_device`.
        seeds: e.g. ``(0, 1, 2)``.
        target: the test accuracy to reach.
        root: the data root.
        limit: train on the first ``limit`` images only (for tests).

    Returns:
        Race: per-seed runs and the median seconds (None unless most seeds reached the target).
    """
    device = pick_device(device)
    train = recipe_data(recipe, device, root=root, limit=limit)
    test = load_tensors(False, root, device=device, normalize=recipe.normalize)
    outcomes = [time_to_accuracy(recipe, train, test, device, seed=s, target=target) for s in seeds]
    runs = [r for r, _ in outcomes]
    median = statistics.median(r.seconds if r.reached else math.inf for r in runs)
    return Race(outcomes[0][1], list(seeds), sum(r.reached for r in runs), None if math.isinf(median) else median, runs)


#: The rows of :func:`speed_levers`: each adds one lever to the one before.
LEVER_STEPS = (
    ("float32, in-memory tensors", {}),
    ("+ channels_last", {"channels_last": True}),
    ("+ bf16 autocast", {"channels_last": True, "bf16": True}),
    ("+ fused Adam", {"channels_last": True, "bf16": True, "fused": True}),
)


def speed_levers(train: TensorData, device=None, repeats: int = 3, *, compile: bool = False) -> list[LeverRow]:
    """One LeNet-5 epoch at batch 64 with the speed levers added one at a time (chapter 12).

    Args:
        train: the training images.
        device: where to train; default :func:`~mnist_course.device.pick_device`.
        repeats: timings per row (the median is kept).
        compile: add a ``torch.compile`` row (after a warm-up epoch).

    Returns:
        list[LeverRow]: seconds and speed-up over the first row; bf16 rows are skipped without native bf16.
    """
    device = pick_device(device)
    steps = list(LEVER_STEPS)
    if compile:
        steps.append(("+ torch.compile (after warm-up)", {**steps[-1][1], "compile": True}))
    rows = []
    for name, levers in steps:
        if levers.get("bf16") and not native_bf16(device):
            rows.append(LeverRow(name, None, note="skipped: no native bf16 on this device"))
            continue
        loader = TensorLoader(train, 64, shuffle=True, seed=0)
        if levers.get("compile"):
            epoch_seconds(LeNet5, loader, device, **levers)  # the first epoch pays for compilation
        seconds = _median_seconds(lambda lv=levers, ld=loader: epoch_seconds(LeNet5, ld, device, **lv), repeats)
        rows.append(LeverRow(name, seconds))
    for row in rows:
        if row.seconds is not None:
            row.speedup = rows[0].seconds / row.seconds
    return rows


@contextmanager
def _quiet_stderr():
    """Send the process's own stderr (file descriptor 2) to /dev/null for a moment.

    Some torch builds' profiler backend (kineto) writes status lines such as ``profiler_start``
    straight to descriptor 2, bypassing Python; in a notebook they would show up as errors.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_steps(step: Callable[[], object], device, *, steps: int = 10, warmup: int = 2):
    """Run ``step`` ``warmup`` times, then ``steps`` times under ``torch.profiler`` (chapter 12).

    Args:
        step: one training step.
        device: on CUDA the GPU kernels are recorded too.
        steps: profiled steps.
        warmup: unprofiled steps first.

    Returns:
        The per-operation averages (``prof.key_averages()``): call ``.table(sort_by="self_cpu_time_total")`` on it.
    """
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        step()
    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with _quiet_stderr(), profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize(device)
    return prof.key_averages()


def step_profile(train: TensorData, device=None, batch_size: int = 128) -> list[OpShare]:
    """The operations of a LeNet-5 training step ranked by their share of CPU time (chapter 12).

    Adam at lr 1e-3 from seeded weights; profiled with :func:`profile_steps`.

    Args:
        train: the training images.
        device: where to train; default :func:`~mnist_course.device.pick_device`.
        batch_size: examples per step.

    Returns:
        list[OpShare]: the eight operations with the most self CPU time, largest first.
    """
    run = build_run(LeNet5, train, Budget(batch_size=batch_size, lr=1e-3, schedule="constant"), device=device)
    batches = iter(run.loader)

    def step():
        x, y = next(batches)
        run.optimizer.zero_grad()
        nn.functional.cross_entropy(run.model(x), y).backward()
        run.optimizer.step()

    ops = [e for e in profile_steps(step, device_of(run.model)) if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in ops)
    ranked = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)
    return [OpShare(e.key, e.self_cpu_time_total / total, e.count) for e in ranked[:8]]


def measure_data_path(train: TensorData, device, repeats: int, *, root=None, limit=None) -> DataPath:
    """One LeNet-5 epoch at batch 128: ``DataLoader`` + ``ToTensor`` + ``Normalize`` vs in-memory tensors (chapter 12).

    Args:
        train: the in-memory training tensors.
        device: where to train; default :func:`~mnist_course.device.pick_device`.
        repeats: timings per path (the median is kept).
        root: the data root.
        limit: the DataLoader path uses the first ``limit`` images (match ``train``).

    Returns:
        DataPath: both times and the speed-up of the tensors.
    """
    dataset = recipe_data(Recipe(LeNet5, Budget(), data="dataloader"), device, root=root, limit=limit)

    slow_s = _median_seconds(lambda: epoch_seconds(LeNet5, dataset, device), repeats)  # batch 128, seeded shuffle
    fast_s = _median_seconds(lambda: epoch_seconds(LeNet5, train, device), repeats)
    return DataPath(len(train), 128, "LeNet5", slow_s, fast_s, slow_s / fast_s)


def _epoch_of(data: TensorData, batch_size: int, device, repeats: int, model=LeNet5) -> float:
    return _median_seconds(
        lambda: epoch_seconds(model, TensorLoader(data, batch_size, shuffle=True, seed=0), device), repeats
    )


def measure_threads(data: TensorData, device, repeats: int) -> list[ThreadsRow]:
    """Epoch time of seed 001's Net with one thread and with all of them, CPU only (chapter 12).

    The thread count is restored afterwards.

    Args:
        data: the training images.
        device: the CPU.
        repeats: timings per row (the median is kept).

    Returns:
        list[ThreadsRow]: one row per thread count, fewest first.
    """
    threads = torch.get_num_threads()
    rows = []
    for t in sorted({1, threads}):
        torch.set_num_threads(t)
        try:
            rows.append(ThreadsRow(t, _epoch_of(data, 128, device, repeats, PyTorchExamplesNet)))
        finally:
            torch.set_num_threads(threads)
    return rows


def _races(device, seeds, quick: bool, root, limit, log) -> dict[str, Race]:
    races = {}
    for name, recipe in RECIPES.items():
        if quick:  # the same code path, tiny budgets: checks that it runs, not how fast
            recipe = Recipe(recipe.model, recipe.budget.with_(epochs=1), recipe.data, recipe.normalize)
        log(f"time to 99%: {name}, seeds {list(seeds)} ...")
        races[name] = race(recipe, device, seeds, root=root, limit=limit)
        for r in races[name].runs:
            state = "reached 99%" if r.reached else "did NOT reach 99%"
            accuracies = ", ".join(f"{a:.2%}" for a in r.accuracy_per_epoch)
            log(f"  seed {r.seed}: {state} after {r.epochs} epochs, {r.seconds:.1f} s of training ({accuracies})")
    return races


def _fastest(races: dict[str, Race]) -> tuple[float | None, str | None]:
    seed_name, fast_name, *_ = races
    medians = {k: v.median_seconds for k, v in races.items()}
    speedup = medians[seed_name] / medians[fast_name] if medians[seed_name] and medians[fast_name] else None
    book = {k: v for k, v in medians.items() if k != seed_name and v is not None}
    return speedup, (min(book, key=book.get) if book else None)


def measure(quick: bool = False, device=None, root=None, log=print) -> BenchResult:
    """Every measurement of chapter 12 in one run; ``quick`` shrinks each one (chapter 12).

    Args:
        quick: 6,000 images, one repeat, one seed, one epoch per race: checks that everything
            runs; its ratios are noise on a loaded machine.
        device, root: where to train (default :func:`~mnist_course.device.pick_device`) and the data root.
        log: called with progress lines.

    Returns:
        BenchResult: all the measurements.
    """
    device = pick_device(device)
    repeats, limit, seeds = (1, 6_000, (0,)) if quick else (3, None, (0, 1, 2))
    train = load_tensors(True, root, device=device, limit=limit)
    log(f"data path: one LeNet-5 epoch of {len(train):,} images, batch 128, median of {repeats}")
    data_path = measure_data_path(train, device, repeats, root=root, limit=limit)
    log(f"  DataLoader {data_path.dataloader_seconds:.2f} s, tensors {data_path.tensor_seconds:.2f} s")
    log(f"fast recipe: peak rate x label smoothing on the validation split, seeds {list(seeds)}")
    choice = choose_fast_recipe(device, seeds, data=train)  # the images loaded above, not a second decode
    races = _races(device, seeds, quick, root, limit, log)
    speedup, fastest = _fastest(races)
    subset = train[:10_000]
    sizes = [32, 128, 512] if quick else [32, 64, 128, 256, 512, 1024]
    log(f"scaling: epoch time of LeNet-5 on {len(subset):,} images vs batch size {sizes}")
    by_size = [BatchSizeRow(b, _epoch_of(subset, b, device, repeats)) for b in sizes]
    fractions = [0.25, 1.0] if quick else [0.1, 0.25, 0.5, 1.0]
    log(f"scaling: epoch time vs fraction of the training set {fractions}")
    parts = [train[: int(f * len(train))] for f in fractions]
    by_fraction = [
        FractionRow(f, len(p), _epoch_of(p, 128, device, repeats)) for f, p in zip(fractions, parts, strict=True)
    ]
    log("profile of one LeNet-5 step (batch 128), then the speed levers")
    profile = step_profile(subset, device)
    levers = speed_levers(subset, device, repeats, compile=device.type == "cuda" and not quick)
    result = BenchResult(
        environment(device), quick, repeats, data_path, races, speedup, fastest, by_size, by_fraction, profile, levers
    )
    result.fast_recipe_choice = choice
    return _device_rows(result, subset, device)


def _device_rows(result: BenchResult, data: TensorData, device) -> BenchResult:
    """Thread scaling on a CPU; on a GPU, a note on what its rows measure."""
    if device.type == "cpu":
        result.threads = measure_threads(data, device, result.repeats)
        result.gpu = "no GPU: torch.compile and the GPU-resident data need CUDA"
    else:
        result.gpu = "data resident in GPU memory; torch.compile in speed_levers" + (
            " (not in --quick)" if result.quick else ""
        )
    return result


def _row(label: str, rows, fmt) -> str:
    return f"{label}: " + ", ".join(fmt(r) for r in rows)


def summary(result: BenchResult) -> str:
    """A plain-text report of a :class:`BenchResult` (chapter 12).

    Args:
        result: what :func:`measure` returned.

    Returns:
        str: one line per measurement.
    """
    d = result.data_path
    lines = [
        f"{result.environment.device} - {result.environment.date}",
        f"data path (LeNet-5 epoch): DataLoader {d.dataloader_seconds:.2f} s, "
        f"tensors {d.tensor_seconds:.2f} s -> {d.speedup:.2f}x",
    ]
    if result.fast_recipe_choice:
        best = max(result.fast_recipe_choice, key=lambda r: r.mean)
        lines.append(
            f"fast recipe chosen on the validation split: peak lr {best.lr:g}, label smoothing "
            f"{best.label_smoothing:g} (mean validation accuracy {best.mean:.2%})"
        )
    for name, r in result.time_to_99.items():
        took = f"{r.median_seconds:.1f} s" if r.median_seconds is not None else "not reached"
        epochs = ", ".join(str(run.epochs) if run.reached else "-" for run in r.runs)
        lines.append(f"time to 99%: {name:<36} median {took:>11}  ({r.reached}/{len(r.seeds)} seeds; epochs {epochs})")
    speedup = result.time_to_99_speedup
    lines.append(f"time-to-99% speed-up, book vs seed recipe (medians): {f'{speedup:.1f}x' if speedup else 'n/a'}")
    lines.append(f"fastest to 99%: {result.fastest_to_99 or 'none reached'}")
    lines.append(
        _row("one LeNet-5 step, CPU time", result.step_profile[:4], lambda r: f"{r.op} {r.self_cpu_share:.0%}")
    )
    lines.append(
        _row(
            "speed levers -> s/epoch",
            result.speed_levers,
            lambda r: f"{r.levers}: " + (f"{r.seconds:.2f}" if r.seconds else "skipped"),
        )
    )
    lines.append(_row("batch size -> s/epoch", result.scaling_batch_size, lambda r: f"{r.batch_size}: {r.seconds:.2f}"))
    lines.append(_row("fraction -> s/epoch", result.scaling_fraction, lambda r: f"{r.fraction:g}: {r.seconds:.2f}"))
    if result.threads:
        lines.append(_row("threads -> s/epoch", result.threads, lambda r: f"{r.threads}: {r.seconds:.2f}"))
    lines.append(f"GPU: {result.gpu}")
    if result.quick:
        lines.append(
            "quick mode: 6,000 images, one seed, one epoch per race - it checks that every measurement runs; "
            "its times and ratios are noise on a busy machine, and 99% is not expected"
        )
    return "\n".join(lines)


def reference(name: str = "bench-cpu"):
    """A committed result shipped with the package, typed (chapter 12).

    Args:
        name: ``"bench-cpu"`` (a :class:`BenchResult`) or ``"record"`` (a
            :class:`~mnist_course.record.RecordResult`).

    Returns:
        The result dataclass.
    """
    from mnist_course.record import RecordResult

    kind = RecordResult if name == "record" else BenchResult
    return from_dict(kind, read_reference(name))
