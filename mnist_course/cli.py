"""Command line: ``python -m mnist_course fetch|models|train|evaluate|predict|export|bench|record|ddp``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

EPILOG = "Data lives in $MNIST_COURSE_DATA, else ~/.cache/mnist_course (see --root)."


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def _add_train(sub) -> None:
    from mnist_course.models import MODELS
    from mnist_course.recipe import CHOICES

    p = sub.add_parser("train", help="train a model on the in-memory tensors and report test accuracy")
    p.add_argument("--model", required=True, choices=list(MODELS), metavar="NAME", help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--epochs", type=_positive_int, help="total epochs (default 2)")
    p.add_argument("--batch-size", type=_positive_int, help="default 128")
    p.add_argument("--lr", type=_positive_float, help="peak learning rate of the one-cycle schedule (default 0.003)")
    p.add_argument("--optimizer", choices=CHOICES["optimizer"], help="default adam")
    p.add_argument("--schedule", choices=CHOICES["schedule"], help="default onecycle")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--checkpoint", help="save a checkpoint here after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint with its saved settings")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --checkpoint file with a new run")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--limit", type=_positive_int, help="train on the first N training images only")
    p.add_argument("--root", help="data root")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_ddp(sub) -> None:
    from mnist_course.models import MODELS

    p = sub.add_parser(
        "ddp",
        help="data-parallel training on several processes; start it with torchrun (chapter 13)",
        description="Run under torchrun, e.g. "
        "`torchrun --standalone --nproc-per-node 2 -m mnist_course ddp --checkpoint ddp.ckpt`: "
        "one process per GPU (nccl), or CPU processes (gloo).",
    )
    p.add_argument("--checkpoint", required=True, help="rank 0 writes the model here after every epoch")
    p.add_argument("--model", default="lenet5", choices=list(MODELS), metavar="NAME", help="default lenet5")
    p.add_argument("--epochs", type=_positive_int, default=2)
    p.add_argument("--batch-size", type=_positive_int, default=64, help="per process (default 64)")
    p.add_argument("--lr", type=_positive_float, default=0.05, help="SGD's learning rate, momentum 0.9 (default 0.05)")
    p.add_argument("--limit", type=_positive_int, help="train on the first N training images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float64", action="store_true", help="compute in double precision (to compare runs exactly)")
    p.add_argument("--resume", action="store_true", help="continue --checkpoint if it exists (for torchrun restarts)")
    p.add_argument("--overwrite", action="store_true", help="start again over an existing --checkpoint")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mnist_course`` (chapter 6).

    Returns:
        argparse.ArgumentParser: one subcommand per entry of ``COMMANDS``.
    """
    parser = argparse.ArgumentParser(prog="python -m mnist_course", description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("fetch", help="download or rebuild the MNIST files and verify their SHA-256")
    p.add_argument("--root", help="data root (files go to ROOT/MNIST/raw)")
    p.add_argument("--repair", action="store_true", help="keep a file that fails verification aside and fetch it again")
    sub.add_parser("models", help="list the book's models with their parameter counts")
    _add_train(sub)
    p = sub.add_parser("evaluate", help="test loss and accuracy of a saved checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--device")
    p.add_argument("--root", help="data root")
    p = sub.add_parser("predict", help="classify images of single handwritten digits (PNG, JPEG, ...)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="a checkpoint from `train` (default: a LeNet-5 trained once and cached)")
    p.add_argument("--root", help="data root")
    _add_export(sub)
    p = sub.add_parser("bench", help="benchmark data paths, time to 99%% and scaling (prints a table, writes JSON)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny versions of every measurement (a few minutes): they check that everything runs; "
        "their ratios are noise on a busy machine and 99%% is not expected",
    )
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--root", help="data root")
    p = sub.add_parser("record", help="train the best-accuracy recipe (ModernCNN + augmentation) and record its result")
    p.add_argument("--epochs", type=_positive_int, default=15)
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--checkpoint", help="save the trained model here")
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out or --checkpoint files")
    p.add_argument("--root", help="data root")
    _add_ddp(sub)
    return parser


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's network as ONNX: pixels in, probabilities out")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--root", help="data root (the test images the export is checked on)")


def cmd_fetch(args) -> None:
    """`fetch`: put verified MNIST files in place and say where they came from (chapter 1).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.download import ensure_mnist

    print(ensure_mnist(args.root, repair=args.repair))


def cmd_models(args) -> None:
    """`models`: list the registry with parameter counts (chapter 8).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.models import MODELS

    width = max(len(name) for name in MODELS)
    print(f"{'model':<{width}}  {'parameters':>10}  source")
    for info in MODELS.values():
        print(f"{info.name:<{width}}  {info.parameters:>10,}  {info.source}")


def cmd_ddp(args) -> None:
    """`ddp`: one process of a data-parallel run started by torchrun (chapter 13).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.distributed import DDPSettings, check_new_run, train_ddp

    settings = DDPSettings(
        args.checkpoint, args.model, args.epochs, args.batch_size, args.lr, args.limit, args.seed, args.float64
    )
    check_new_run(settings, resume=args.resume, overwrite=args.overwrite)
    train_ddp(settings, resume=args.resume)


def _train_defaults() -> dict:
    """The settings of a `train` run, stored in its checkpoint: the :class:`Budget` defaults, 2 epochs."""
    from mnist_course.recipe import Budget

    budget = Budget(epochs=2)
    return {k: getattr(budget, k) for k in ("epochs", "batch_size", "lr", "optimizer", "schedule", "seed")}


def _flag(name: str, value) -> str:
    flag = f"--{name.replace('_', '-')}"
    return f"no {flag}" if value is None else f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def _flags(settings: dict) -> str:
    return " ".join(_flag(k, v) for k, v in settings.items())


def _train_settings(args) -> tuple[dict, dict | None]:
    """The settings a `train` run uses, and the checkpoint state it resumes (None for a new run).

    A resumed run keeps the settings saved in its checkpoint; passing a different one is refused
    with the command to run, except ``--epochs`` with a constant schedule (a longer run).
    """
    from mnist_course.checkpoint import read_checkpoint
    from mnist_course.errors import CheckpointError

    defaults = {**_train_defaults(), "limit": None}
    given = {k: getattr(args, k) for k in defaults if getattr(args, k) is not None}
    if not (args.resume and Path(args.checkpoint).exists()):
        return {**defaults, **given}, None
    state = read_checkpoint(args.checkpoint)
    if state["model_name"] != args.model:
        raise CheckpointError(
            f"{args.checkpoint} holds a {state['model_name']} run: resume it with --model {state['model_name']}"
        )
    saved = state["extra"].get("settings")
    if saved is None:
        raise CheckpointError(
            f"{args.checkpoint} stores no `train` settings (it was written by fit() or an older version), so the "
            "command line cannot resume it safely: resume it in Python with fit(..., resume=True) and the same "
            "optimizer and scheduler, or start a new run with another --checkpoint"
        )
    changed = {k: v for k, v in given.items() if v != saved.get(k)}
    if saved["schedule"] == "constant":
        changed.pop("epochs", None)
    if changed:
        root = f" --root {shlex.quote(args.root)}" if args.root else ""
        command = f"python -m mnist_course train --model {args.model} --checkpoint {shlex.quote(args.checkpoint)}"
        command += f"{root} --resume"
        raise CheckpointError(
            f"{args.checkpoint} was trained with {_flags({k: saved.get(k) for k in changed})}, and a resumed run keeps "
            f"its settings{' (a one-cycle schedule is planned for its epochs)' if 'epochs' in changed else ''}. "
            f"To continue it: `{command}`; to train with {_flags(changed)}, start a new run with another --checkpoint"
        )
    return {**saved, **given}, state


def _finished(args, settings: dict, state: dict) -> bool:
    """Say so when a resumed run has already trained all its epochs."""
    if state is None or state["epoch"] < settings["epochs"]:
        return False
    epochs = (state["history"] or {}).get("epochs") or [{}]
    accuracy = epochs[-1].get("eval_accuracy", epochs[-1].get("test_accuracy"))
    more = " or pass a larger --epochs to train on" if settings["schedule"] == "constant" else ""
    print(
        f"{args.checkpoint} has finished its {state['epoch']} epoch{'s' if state['epoch'] != 1 else ''}"
        + (f" (test accuracy {accuracy:.2%})" if accuracy is not None else "")
        + ": nothing to train. Evaluate it with "
        + f"`python -m mnist_course evaluate --checkpoint {args.checkpoint}`{more}."
    )
    return True


def cmd_train(args) -> None:
    """`train`: train a registry model on the in-memory data, with optional checkpoint/resume (chapters 6, 9).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.data import load_tensors
    from mnist_course.device import describe_device, pick_device
    from mnist_course.models import MODELS
    from mnist_course.recipe import Budget, build_run

    settings, state = _train_settings(args)
    if _finished(args, settings, state):
        return
    if args.checkpoint:
        _check_checkpoint_path(args)
    device = pick_device(args.device)
    print(f"device: {describe_device(device)}")
    budget = Budget(**{k: settings[k] for k in _train_defaults()})
    shown = _flags({k: settings[k] for k in _train_defaults()})
    train = load_tensors(True, args.root, device=device, limit=settings["limit"])
    run = build_run(MODELS[args.model].model_factory, train, budget, device=device)
    start = f", resuming after epoch {state['epoch']}" if state else ""
    print(f"training {args.model} on {len(train):,} images: {shown}{start}")
    test = load_tensors(False, args.root, device=device)
    history = run.fit(
        test,
        progress=not args.no_progress,
        checkpoint=args.checkpoint,
        resume=args.resume,
        extra={"settings": settings},
        overwrite=args.overwrite,
    )
    _report(history, args.checkpoint)


def _check_checkpoint_path(args) -> None:
    """Refuse a --checkpoint that would replace a file the reader has, or cannot be written, before training."""
    from mnist_course.download import check_output_path

    hint = "--resume continues that run, --overwrite replaces it with a new one"
    check_output_path(args.checkpoint, overwrite=args.resume or args.overwrite, what="checkpoint", exists=hint)


def _report(history, checkpoint) -> None:
    for e in history.epochs:
        print(
            f"epoch {e.epoch}: train loss {e.train_loss:.4f}, test loss {e.eval_loss:.4f}, "
            f"test accuracy {e.eval_accuracy:.2%} ({e.seconds:.1f} s)"
        )
    if history.epochs:
        print(f"final test accuracy: {history.last.eval_accuracy:.2%}")
    if checkpoint:
        print(f"checkpoint: {checkpoint}")


def _load_model(checkpoint, device=None):
    """The model saved in ``checkpoint``, on ``device``, with what the checkpoint says of it."""
    from mnist_course.checkpoint import load_checkpoint, read_checkpoint
    from mnist_course.device import pick_device
    from mnist_course.models import create_model

    model = create_model(read_checkpoint(checkpoint)["model_name"]).to(pick_device(device))
    return model, load_checkpoint(checkpoint, model, restore_rng=False)


def cmd_evaluate(args) -> None:
    """`evaluate`: test loss and accuracy of a checkpoint (chapter 9).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.data import load_tensors
    from mnist_course.evaluate import evaluate

    model, saved = _load_model(args.checkpoint, args.device)
    result = evaluate(model, load_tensors(False, args.root))
    print(f"{saved.model_name} after {saved.epoch} epochs: test {result}")


def _default_model(root) -> str:
    """The cached LeNet-5 checkpoint used by `predict` without --checkpoint; trained on first use."""
    from mnist_course.download import ensure_mnist

    path = ensure_mnist(root).root / "checkpoints" / "lenet5.ckpt"
    if not path.exists():
        print(f"no --checkpoint given: training LeNet-5 once (2 epochs) and caching it at {path}", file=sys.stderr)
        train_args = ["train", "--model", "lenet5", "--epochs", "2", "--checkpoint", str(path), "--no-progress"]
        cmd_train(build_parser().parse_args(train_args + (["--root", str(root)] if root else [])))
    return str(path)


def cmd_predict(args) -> int:
    """`predict`: classify images of single digits, MNIST-style preprocessing first (chapter 10).

    Without ``--checkpoint``, a LeNet-5 is trained once and cached under the data root.

    Args:
        args: the parsed command line (see :func:`build_parser`).

    Returns:
        int: the exit status: 6 if any image could not be read (the others are still answered), else 0.
    """
    from mnist_course.data import normalization_stats
    from mnist_course.errors import DigitImageError
    from mnist_course.handwriting import classify

    model, _ = _load_model(args.checkpoint or _default_model(args.root), "cpu")
    mean, std = normalization_stats(args.root)
    results = classify(model, [(image, image) for image in args.images], mean=mean, std=std)
    for result in results:
        print(result)
    return DigitImageError.exit_code if any(r.error for r in results) else 0


def cmd_export(args) -> None:
    """`export`: the checkpoint's network as one ONNX file, checked against PyTorch on the test set (chapter 15).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.data import load_tensors, normalization_stats
    from mnist_course.download import check_output_path
    from mnist_course.errors import MnistCourseError
    from mnist_course.export import check_onnx, export_onnx

    check_output_path(args.out, overwrite=args.overwrite, what="ONNX")
    model, saved = _load_model(args.checkpoint, "cpu")
    mean, std = normalization_stats(args.root)
    path = export_onnx(model, args.out, mean=mean, std=std)
    test = load_tensors(False, args.root)
    print(f"{saved.model_name} after {saved.epoch} epochs -> {path} ({path.stat().st_size:,} bytes)")
    check = check_onnx(path, model, test.images * std + mean, mean=mean, std=std)
    print(check)
    if not check.agrees:
        raise MnistCourseError(f"{path} does not compute what the checkpoint does ({check}); it is kept for inspection")


def cmd_bench(args) -> None:
    """`bench`: the speed measurements, printed as a summary and optionally written as JSON (chapter 12).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.bench import measure, summary
    from mnist_course.download import check_output_path
    from mnist_course.results import write_json

    if args.out:
        check_output_path(args.out, overwrite=args.overwrite, what="results")
    result = measure(quick=args.quick, device=args.device, root=args.root, log=lambda m: print(m, flush=True))
    print()
    print(summary(result))
    if args.out:
        print(f"results: {write_json(result, args.out)}")


def cmd_record(args) -> None:
    """`record`: train the best-accuracy recipe and report its test accuracy (chapter 12).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.download import check_output_path
    from mnist_course.record import record
    from mnist_course.results import write_json

    for path, what in ((args.out, "results"), (args.checkpoint, "checkpoint")):
        if path:
            check_output_path(path, overwrite=args.overwrite, what=what)
    log = lambda m: print(m, flush=True)  # noqa: E731
    result = record(args.epochs, device=args.device, root=args.root, checkpoint=args.checkpoint, log=log)
    reached = "reached" if result.reached_target else "not reached"
    print(
        f"final test accuracy {result.test_accuracy:.2%} after {result.train_seconds:.0f} s of training "
        f"(target {result.target:.2%}: {reached})"
    )
    if args.out:
        print(f"result: {write_json(result, args.out)}")


COMMANDS = {
    "fetch": cmd_fetch,
    "models": cmd_models,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "export": cmd_export,
    "bench": cmd_bench,
    "record": cmd_record,
    "ddp": cmd_ddp,
}


def main(argv=None) -> int:
    """Entry point of ``python -m mnist_course`` (chapter 6).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        int: the exit status; expected failures print one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "resume", False) and not args.checkpoint:
        parser.error("--resume needs --checkpoint PATH")
    try:
        return COMMANDS[args.command](args) or 0
    except Exception as exc:  # noqa: BLE001 - the one error boundary: one line, a distinct status
        message, status = _failure(exc)
    except KeyboardInterrupt:
        saved = args.command == "train" and args.checkpoint
        status, message = 130, "interrupted"
        if saved:
            message += f"; {args.checkpoint} holds the last complete epoch (continue with --resume)"
    print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr)
    return status


#: Exit statuses of expected failures besides the package's own (see :mod:`mnist_course.errors`).
EXIT_FILE_SYSTEM, EXIT_OTHER = 3, 1


def _failure(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit status for a failure; unexpected ones are raised again."""
    from mnist_course.errors import MnistCourseError, first_line

    if isinstance(exc, MnistCourseError):
        return " ".join(str(exc).split("\n")), exc.exit_code
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EXIT_FILE_SYSTEM
    if isinstance(exc, (ValueError, RuntimeError)):
        return first_line(exc), EXIT_OTHER
    raise exc
