"""Benchmarks: where training time goes, and how fast 99% can be reached (chapter 10).

``python -m mnist_course bench [--quick] [--device D] [--out FILE.json]`` runs every measurement
in one process and reports ratios within that run (these machines are shared and noisy: each
timing is the median of its repeats). It is a script, not a test: the test suite only checks the
shape of what ``--quick`` writes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from mnist_course.compare import Budget, make_optimizer
from mnist_course.data import TensorData, TensorLoader, load_tensors, mnist_datasets
from mnist_course.models import ConvNetBN, LeNet, LeNet5, PyTorchExamplesNet
from mnist_course.train import History, describe_device, fit, native_bf16, pick_device, seed_everything

#: The speed levers of the book's recipes (chapter 10): the channels_last memory layout, bf16
#: autocast (only where :func:`~mnist_course.train.native_bf16` says the hardware has it) and
#: the fused optimizer step.
FAST = {"channels_last": True, "bf16": True, "fused": True}

#: The book's fast recipe: one epoch of batch 64, one-cycle Adam (20% warm-up, linear anneal,
#: beta2 0.99), label smoothing 0.1 — chosen by measuring time to 99% over several seeds.
FAST_BUDGET = Budget(epochs=1, batch_size=64, lr=5e-3, warmup=0.2, anneal="linear", beta2=0.99, label_smoothing=0.1)

#: The recipes of the time-to-99% race. ``data`` is "dataloader" (torchvision + ToTensor, as in
#: seed 002) or "tensors" (the in-memory path); ``normalize`` applies the data's statistics;
#: ``speed`` picks levers from :data:`FAST`. The first is the baseline, the others the book's.
RECIPES: dict[str, dict] = {
    # (a) seed 002: LeNet-5 (the book's, with activations), Adam 1e-3, batch 100, ToTensor only, DataLoader
    "seed 002 recipe (LeNet-5)": {
        "model": LeNet5,
        "data": "dataloader",
        "normalize": False,
        "budget": Budget(epochs=20, batch_size=100, lr=1e-3, schedule="constant"),
    },
    # (b) the same architecture, the book's recipe
    "book's fast recipe (LeNet-5)": {
        "model": LeNet5,
        "data": "tensors",
        "normalize": True,
        "budget": FAST_BUDGET,
        "speed": FAST,
    },
    # (c) candidates for the fastest small model: seed 003's unpadded LeNet, and the BatchNorm ConvNet
    "book's recipe, LeNet (no padding)": {
        "model": LeNet,
        "data": "tensors",
        "normalize": True,
        "budget": FAST_BUDGET,
        "speed": FAST,
    },
    "book's recipe, ConvNet-BN": {
        "model": ConvNetBN,
        "data": "tensors",
        "normalize": True,
        "budget": FAST_BUDGET,
        "speed": FAST,
    },
}


def _median_seconds(run: Callable[[], float], repeats: int) -> float:
    return statistics.median(run() for _ in range(repeats))


def _loader(kind: str, train: TensorData | None, batch_size: int, seed: int, normalize: bool, root=None, limit=None):
    if kind == "tensors":
        return TensorLoader(train, batch_size, shuffle=True, seed=seed)
    dataset, _ = mnist_datasets(root, normalize=normalize)
    if limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(limit))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))


def apply_speed(model: nn.Module, device, *, channels_last=False, bf16=False) -> tuple[nn.Module, torch.dtype | None]:
    """Put ``model`` in the channels_last layout and pick bf16 autocast if the hardware has it (chapter 10).

    Returns ``(model, autocast dtype or None)`` for :func:`~mnist_course.train.fit`'s ``autocast``.
    """
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, (torch.bfloat16 if bf16 and native_bf16(device) else None)


def epoch_seconds(
    model_factory, loader, device, seed: int = 0, *, channels_last=False, bf16=False, fused=False, compile=False
) -> float:
    """Training time of one epoch of ``loader`` with Adam (lr 1e-3), from freshly seeded weights (chapter 10).

    ``channels_last``, ``bf16`` (autocast, only with native support) and ``fused`` (the
    optimizer step) are the speed levers of chapter 10; ``compile`` wraps the model in
    ``torch.compile`` (its compilation is included: warm it up with a first call).
    """
    seed_everything(seed)
    model, autocast = apply_speed(model_factory().to(device), device, channels_last=channels_last, bf16=bf16)
    optimizer, _ = make_optimizer(model, Budget(lr=1e-3, schedule="constant"), len(loader), fused=fused)
    history = fit(
        torch.compile(model) if compile else model,
        loader,
        optimizer=optimizer,
        epochs=1,
        device=device,
        progress=False,
        autocast=autocast,
    )
    return history.epochs[0]["seconds"]


def train_epochs(
    model,
    loader,
    test,
    optimizer,
    scheduler,
    epochs,
    device,
    *,
    target=None,
    log=None,
    loss_fn=nn.functional.cross_entropy,
    autocast=None,
) -> History:
    """Train epoch by epoch (scheduler stepped per batch); stop once test accuracy reaches ``target`` (chapter 10)."""
    history = History()
    for epoch in range(1, epochs + 1):
        fit(
            model,
            loader,
            test,
            optimizer=optimizer,
            epochs=epoch,
            scheduler=scheduler,
            scheduler_interval="batch",
            device=device,
            progress=False,
            history=history,
            loss_fn=loss_fn,
            autocast=autocast,
        )
        accuracy = history.epochs[-1]["test_accuracy"]
        if log is not None:
            log(f"epoch {epoch}/{epochs}: test accuracy {accuracy:.2%} ({history.train_seconds:.0f} s so far)")
        if target is not None and accuracy >= target:
            break
    return history


def recipe_data(
    recipe: dict, test: TensorData, device, *, root=None, limit=None
) -> tuple[TensorData | None, TensorData]:
    """The training tensors (None for a DataLoader recipe) and test tensors ``recipe`` needs (chapter 10).

    ``test`` is the normalised test split, reused when the recipe normalises.
    """
    tensors = recipe["data"] == "tensors"
    train = load_tensors(True, root, device=device, normalize=recipe["normalize"], limit=limit) if tensors else None
    test_data = test if recipe["normalize"] else load_tensors(False, root, device=device, normalize=False)
    return train, test_data


def time_to_accuracy(
    recipe: dict,
    test: TensorData,
    device,
    *,
    seed: int | None = None,
    target: float = 0.99,
    root=None,
    limit=None,
    data: tuple[TensorData | None, TensorData] | None = None,
) -> dict:
    """Train ``recipe`` epoch by epoch until test accuracy first reaches ``target`` (chapter 10).

    ``seed`` replaces the budget's; ``data`` is :func:`recipe_data`'s result, if already loaded.
    Returns the training seconds up to that epoch (evaluation excluded), the epochs, and the
    accuracy after each epoch; ``reached`` is False if ``budget.epochs`` ran out first.
    """
    budget: Budget = recipe["budget"] if seed is None else recipe["budget"].with_(seed=seed)
    speed = recipe.get("speed", {})
    train, test_data = data if data is not None else recipe_data(recipe, test, device, root=root, limit=limit)
    seed_everything(budget.seed)
    model, autocast = apply_speed(
        recipe["model"]().to(device),
        device,
        channels_last=speed.get("channels_last", False),
        bf16=speed.get("bf16", False),
    )
    loader = _loader(recipe["data"], train, budget.batch_size, budget.seed, recipe["normalize"], root, limit)
    optimizer, scheduler = make_optimizer(model, budget, len(loader), fused=speed.get("fused", False))
    history = train_epochs(
        model,
        loader,
        test_data,
        optimizer,
        scheduler,
        budget.epochs,
        device,
        target=target,
        loss_fn=budget.loss_fn,
        autocast=autocast,
    )
    return {
        "seed": budget.seed,
        "reached": history.epochs[-1]["test_accuracy"] >= target,
        "seconds": history.train_seconds,
        "epochs": len(history.epochs),
        "accuracy_per_epoch": [e["test_accuracy"] for e in history.epochs],
        "settings": {
            "model": recipe["model"].__name__,
            "data": recipe["data"],
            "normalize": recipe["normalize"],
            **{k: v for k, v in asdict(budget).items() if k != "seed"},
            "channels_last": speed.get("channels_last", False),
            "precision": "bf16 autocast" if autocast is not None else "float32",
            "fused_optimizer": bool(optimizer.defaults.get("fused")),
        },
    }


def race(recipe: dict, test: TensorData, device, seeds, *, target: float = 0.99, root=None, limit=None) -> dict:
    """Time to ``target`` for ``recipe`` once per seed, and the median over seeds (chapter 10).

    A seed that never reaches the target counts as infinitely slow, so the median is ``None``
    (not reached) unless most seeds got there.
    """
    data = recipe_data(recipe, test, device, root=root, limit=limit)  # loaded once for all seeds
    runs = [
        time_to_accuracy(recipe, test, device, seed=s, target=target, root=root, limit=limit, data=data) for s in seeds
    ]
    median = statistics.median(r["seconds"] if r["reached"] else math.inf for r in runs)
    return {
        "settings": runs[0]["settings"],
        "seeds": list(seeds),
        "reached": sum(r["reached"] for r in runs),
        "median_seconds": None if math.isinf(median) else median,
        "runs": [{k: v for k, v in r.items() if k != "settings"} for r in runs],
    }


def speed_levers(train: TensorData, device, repeats: int, *, compile: bool = False, log=print) -> list[dict]:
    """One LeNet-5 epoch at batch 64 with the levers of :data:`FAST` added one at a time (chapter 10)."""
    steps = [
        ("float32, in-memory tensors", {}),
        ("+ channels_last", {"channels_last": True}),
        ("+ bf16 autocast", {"channels_last": True, "bf16": True}),
        ("+ fused Adam", {"channels_last": True, "bf16": True, "fused": True}),
    ]
    if compile:
        steps.append(("+ torch.compile (after warm-up)", {**FAST, "compile": True}))
    rows = []
    for name, levers in steps:
        if levers.get("bf16") and not native_bf16(device):
            rows.append({"levers": name, "seconds": None, "note": "skipped: no native bf16 on this device"})
            continue
        loader = TensorLoader(train, 64, shuffle=True, seed=0)
        if levers.get("compile"):
            epoch_seconds(LeNet5, loader, device, **levers)  # the first epoch pays for compilation
        seconds = _median_seconds(
            lambda levers=levers, loader=loader: epoch_seconds(LeNet5, loader, device, **levers), repeats
        )
        rows.append({"levers": name, "seconds": seconds})
    base = rows[0]["seconds"]
    for row in rows:
        if row["seconds"] is not None:
            row["speedup"] = base / row["seconds"]
    log("  " + ", ".join(f"{r['levers']}: " + (f"{r['seconds']:.2f} s" if r["seconds"] else "skipped") for r in rows))
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
    """Run ``step`` ``warmup`` times, then ``steps`` times under ``torch.profiler`` (chapter 10).

    Returns the per-operation averages (``prof.key_averages()``): call ``.table(sort_by=
    "self_cpu_time_total")`` on it. On CUDA the GPU kernels are recorded too.
    """
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
    with _quiet_stderr():
        with profile(activities=activities) as prof:
            for _ in range(steps):
                step()
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
        return prof.key_averages()


def step_profile(train: TensorData, device, batch_size: int = 128) -> list[dict]:
    """The operations of a LeNet-5 training step ranked by their share of CPU time (chapter 10)."""
    seed_everything(0)
    model = LeNet5().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(TensorLoader(train, batch_size, shuffle=True, seed=0))

    def step():
        x, y = next(batches)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    ops = [e for e in profile_steps(step, device) if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in ops)
    ranked = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls": e.count} for e in ranked[:8]]


def environment(device) -> dict:
    """Hardware, versions and settings of this run (chapter 10)."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m mnist_course", *sys.argv[1:]])
        if sys.argv[0].endswith("__main__.py")
        else " ".join(sys.argv),
        "device": describe_device(device),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def run(quick: bool = False, device=None, root=None, log=print) -> dict:
    """All measurements as one JSON-ready dict; ``quick`` shrinks every one (chapter 10)."""
    device = pick_device(device)
    repeats = 1 if quick else 3
    limit = 6_000 if quick else None
    out = {"environment": environment(device), "quick": quick, "repeats": repeats}
    train = load_tensors(True, root, device=device, limit=limit)
    test = load_tensors(False, root, device=device)
    n = len(train)

    log(f"data path: one LeNet-5 epoch of {n:,} images, batch 128, median of {repeats}")
    slow = _median_seconds(
        lambda: epoch_seconds(LeNet5, _loader("dataloader", None, 128, 0, True, root, limit), device), repeats
    )
    fast = _median_seconds(
        lambda: epoch_seconds(LeNet5, TensorLoader(train, 128, shuffle=True, seed=0), device), repeats
    )
    out["data_path"] = {
        "images": n,
        "batch_size": 128,
        "model": "LeNet5",
        "dataloader_seconds": slow,
        "tensor_seconds": fast,
        "speedup": slow / fast,
    }
    log(f"  DataLoader + ToTensor + Normalize {slow:.2f} s, in-memory tensors {fast:.2f} s: {slow / fast:.2f}x")

    seeds = (0,) if quick else (0, 1, 2)
    out["time_to_99"] = {}
    recipes = RECIPES
    if quick:  # the same code path, tiny budgets: checks that it runs, not how fast
        recipes = {k: {**v, "budget": v["budget"].with_(epochs=1)} for k, v in RECIPES.items()}
    for name, recipe in recipes.items():
        log(f"time to 99%: {name}, seeds {list(seeds)} ...")
        result = race(recipe, test, device, seeds, root=root, limit=limit)
        out["time_to_99"][name] = result
        for r in result["runs"]:
            state = "reached 99%" if r["reached"] else "did NOT reach 99%"
            log(
                f"  seed {r['seed']}: {state} after {r['epochs']} epochs, {r['seconds']:.1f} s of training "
                f"(accuracy {', '.join(f'{a:.2%}' for a in r['accuracy_per_epoch'])})"
            )
    medians = {k: v["median_seconds"] for k, v in out["time_to_99"].items()}
    seed_name, fast_name, *_ = RECIPES
    out["time_to_99_speedup"] = (
        medians[seed_name] / medians[fast_name] if medians[seed_name] and medians[fast_name] else None
    )
    book = {k: v for k, v in medians.items() if k != seed_name and v is not None}
    out["fastest_to_99"] = min(book, key=book.get) if book else None

    sizes = [32, 128, 512] if quick else [32, 64, 128, 256, 512, 1024]
    subset = TensorData(train.images[: min(n, 10_000)], train.labels[: min(n, 10_000)])
    log(f"scaling: epoch time of LeNet-5 on {len(subset):,} images vs batch size {sizes}")
    out["scaling_batch_size"] = [
        {
            "batch_size": b,
            "seconds": _median_seconds(
                lambda b=b: epoch_seconds(LeNet5, TensorLoader(subset, b, shuffle=True, seed=0), device), repeats
            ),
        }
        for b in sizes
    ]
    fractions = [0.25, 1.0] if quick else [0.1, 0.25, 0.5, 1.0]
    log(f"scaling: epoch time vs fraction of the training set {fractions}")
    out["scaling_fraction"] = []
    for f in fractions:
        part = TensorData(train.images[: int(f * n)], train.labels[: int(f * n)])
        seconds = _median_seconds(
            lambda part=part: epoch_seconds(LeNet5, TensorLoader(part, 128, shuffle=True, seed=0), device), repeats
        )
        out["scaling_fraction"].append({"fraction": f, "images": len(part), "seconds": seconds})
    out["step_profile"] = step_profile(subset, device)
    log(
        "profile of one LeNet-5 step (batch 128): "
        + ", ".join(f"{r['op']} {r['self_cpu_share']:.0%}" for r in out["step_profile"][:4])
    )
    log(f"speed levers: one LeNet-5 epoch of {len(subset):,} images, batch 64")
    out["speed_levers"] = speed_levers(subset, device, repeats, compile=device.type == "cuda" and not quick, log=log)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        out["threads"] = []
        for t in sorted({1, threads}):
            torch.set_num_threads(t)
            try:
                seconds = _median_seconds(
                    lambda: epoch_seconds(PyTorchExamplesNet, TensorLoader(subset, 128, shuffle=True, seed=0), device),
                    repeats,
                )
            finally:
                torch.set_num_threads(threads)
            out["threads"].append({"threads": t, "seconds": seconds})
        log("threads: " + ", ".join(f"{r['threads']}: {r['seconds']:.2f} s" for r in out["threads"]))
        out["gpu"] = "no GPU: torch.compile and the GPU-resident data need CUDA"
    else:
        out["gpu"] = {
            "device": describe_device(device),
            "data": "the whole training and test sets resident in GPU memory",
            "torch.compile": "skipped in --quick" if quick else "see speed_levers",
        }
    return out


def summary(result: dict) -> str:
    """A plain-text table of a :func:`run` result (chapter 10)."""
    lines = [f"{result['environment']['device']} - {result['environment']['date']}"]
    d = result["data_path"]
    lines.append(
        f"data path (LeNet-5 epoch): DataLoader {d['dataloader_seconds']:.2f} s, tensors "
        f"{d['tensor_seconds']:.2f} s -> {d['speedup']:.2f}x"
    )
    for name, r in result["time_to_99"].items():
        took = f"{r['median_seconds']:.1f} s" if r["median_seconds"] is not None else "not reached"
        epochs = ", ".join(str(run["epochs"]) if run["reached"] else "-" for run in r["runs"])
        lines.append(
            f"time to 99%: {name:<36} median {took:>11}  ({r['reached']}/{len(r['seeds'])} seeds; epochs {epochs})"
        )
    speedup = result["time_to_99_speedup"]
    lines.append(f"time-to-99% speed-up, book vs seed recipe (medians): {f'{speedup:.1f}x' if speedup else 'n/a'}")
    lines.append(f"fastest to 99%: {result['fastest_to_99'] or 'none reached'}")
    if "step_profile" in result:
        lines.append(
            "one LeNet-5 step, CPU time: "
            + ", ".join(f"{r['op']} {r['self_cpu_share']:.0%}" for r in result["step_profile"][:4])
        )
    lines.append(
        "speed levers -> s/epoch: "
        + ", ".join(
            f"{r['levers']}: " + (f"{r['seconds']:.2f}" if r["seconds"] else "skipped") for r in result["speed_levers"]
        )
    )
    lines.append(
        "batch size -> s/epoch: "
        + ", ".join(f"{r['batch_size']}: {r['seconds']:.2f}" for r in result["scaling_batch_size"])
    )
    lines.append(
        "fraction -> s/epoch: "
        + ", ".join(f"{r['fraction']:g}: {r['seconds']:.2f}" for r in result["scaling_fraction"])
    )
    if "threads" in result:
        lines.append(
            "threads -> s/epoch: " + ", ".join(f"{r['threads']}: {r['seconds']:.2f}" for r in result["threads"])
        )
    lines.append(f"GPU: {result['gpu']}")
    return "\n".join(lines)


def reference(name: str) -> dict:
    """A committed benchmark result shipped with the package: ``"bench-cpu"`` or ``"record"`` (chapter 10)."""
    from importlib.resources import files

    resource = files("mnist_course") / "reference" / f"{name}.json"
    if not resource.is_file():
        available = sorted(
            p.name[:-5] for p in (files("mnist_course") / "reference").iterdir() if p.name.endswith(".json")
        )
        raise FileNotFoundError(f"no reference result {name!r}; available: {', '.join(available) or 'none'}")
    return json.loads(resource.read_text())


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Write ``result`` as indented JSON (chapter 10)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def record(epochs: int = 15, *, device=None, root=None, checkpoint=None, limit=None, log=print) -> dict:
    """The best-accuracy recipe: ModernCNN, random affine augmentation, one-cycle Adam, label smoothing (chapter 10).

    Returns the settings, per-epoch test accuracy, training time, hardware and, if
    ``checkpoint`` is given, the saved checkpoint's SHA-256. ``limit`` shrinks both splits (for tests).
    """
    from mnist_course.augment import AugmentedLoader
    from mnist_course.checkpoint import save_checkpoint
    from mnist_course.data import sha256_of
    from mnist_course.models import ModernCNN

    device = pick_device(device)
    budget = Budget(epochs=epochs, batch_size=128, lr=3e-3, label_smoothing=0.1)
    train = load_tensors(True, root, device=device, limit=limit)
    test = load_tensors(False, root, device=device, limit=limit)
    seed_everything(budget.seed)
    model = ModernCNN().to(device)
    loader = AugmentedLoader(
        TensorLoader(train, budget.batch_size, shuffle=True, seed=budget.seed),
        seed=budget.seed,
        degrees=10.0,
        translate=0.1,
        scale=(0.9, 1.1),
    )
    optimizer, scheduler = make_optimizer(model, budget, len(loader))
    history = train_epochs(model, loader, test, optimizer, scheduler, epochs, device, log=log, loss_fn=budget.loss_fn)
    result = {
        "environment": environment(device),
        "recipe": {
            "model": "ModernCNN",
            "augmentation": "random affine: +-10 degrees, +-10% shift, 0.9-1.1 zoom",
            "loss": f"cross-entropy, label smoothing {budget.label_smoothing:g}",
            **{k: getattr(budget, k) for k in ("epochs", "batch_size", "lr", "optimizer", "schedule", "seed")},
        },
        "test_accuracy": history.epochs[-1]["test_accuracy"],
        "best_epoch_accuracy": max(e["test_accuracy"] for e in history.epochs),
        "accuracy_per_epoch": [e["test_accuracy"] for e in history.epochs],
        "train_seconds": history.train_seconds,
        "training_images": len(train),
        "test_images": len(test),
        "target": 0.9965,
        "reached_target": history.epochs[-1]["test_accuracy"] >= 0.9965,
    }
    if checkpoint is not None:
        path = save_checkpoint(checkpoint, model, optimizer, scheduler, epoch=epochs, history=history)
        result["checkpoint"] = {"path": Path(path).name, "sha256": sha256_of(path)}
    return result
