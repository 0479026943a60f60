"""Command line: ``python -m mnist_course fetch | models | train | evaluate | predict | bench | record``."""

from __future__ import annotations

import argparse
import sys

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

    p = sub.add_parser("train", help="train a model on the in-memory tensors and report test accuracy")
    p.add_argument("--model", required=True, choices=list(MODELS), metavar="NAME", help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--epochs", type=_positive_int, default=2)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--lr", type=_positive_float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--schedule", choices=["onecycle", "constant"], default="onecycle")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--checkpoint", help="save a checkpoint here after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=_positive_int, help="train on the first N training images only")
    p.add_argument("--root", help="data root")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mnist_course`` (chapter 4).

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
    p = sub.add_parser("bench", help="benchmark data paths, time to 99%% and scaling (prints a table, writes JSON)")
    p.add_argument(
        "--quick", action="store_true", help="tiny versions of every measurement: checks they run; noisy ratios"
    )
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--root", help="data root")
    p = sub.add_parser("record", help="train the best-accuracy recipe (ModernCNN + augmentation) and record its result")
    p.add_argument("--epochs", type=_positive_int, default=15)
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--checkpoint", help="save the trained model here")
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--root", help="data root")
    return parser


def cmd_fetch(args) -> None:
    """`fetch`: put verified MNIST files in place and say where they came from (chapter 1).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.download import ensure_mnist

    print(ensure_mnist(args.root, repair=args.repair))


def cmd_models(args) -> None:
    """`models`: list the registry with parameter counts (chapter 6).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.models import MODELS

    width = max(len(name) for name in MODELS)
    print(f"{'model':<{width}}  {'parameters':>10}  source")
    for info in MODELS.values():
        print(f"{info.name:<{width}}  {info.parameters:>10,}  {info.source}")


def cmd_train(args) -> None:
    """`train`: train a registry model on the in-memory data, with optional checkpoint/resume (chapters 4, 7).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.data import load_tensors
    from mnist_course.device import describe_device, pick_device
    from mnist_course.models import MODELS
    from mnist_course.recipe import Budget, build_run

    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint PATH")
    device = pick_device(args.device)
    print(f"device: {describe_device(device)}")
    budget = Budget(args.epochs, args.batch_size, args.lr, args.optimizer, args.schedule, args.seed)
    train = load_tensors(True, args.root, device=device, limit=args.limit)
    run = build_run(MODELS[args.model].model_factory, train, budget, device=device)
    print(
        f"training {args.model} for {args.epochs} epochs on {len(train):,} images, "
        f"batch {args.batch_size}, {args.optimizer} lr {args.lr:g} ({args.schedule})"
    )
    test = load_tensors(False, args.root, device=device)
    history = run.fit(test, progress=not args.no_progress, checkpoint=args.checkpoint, resume=args.resume)
    for e in history.epochs:
        print(
            f"epoch {e.epoch}: train loss {e.train_loss:.4f}, test loss {e.eval_loss:.4f}, "
            f"test accuracy {e.eval_accuracy:.2%} ({e.seconds:.1f} s)"
        )
    if history.epochs:
        print(f"final test accuracy: {history.last.eval_accuracy:.2%}")
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint}")


def _load_model(checkpoint, device=None):
    """The model saved in ``checkpoint``, on ``device``, with what the checkpoint says of it."""
    from mnist_course.checkpoint import load_checkpoint, read_checkpoint
    from mnist_course.device import pick_device
    from mnist_course.models import create_model

    model = create_model(read_checkpoint(checkpoint)["model_name"]).to(pick_device(device))
    return model, load_checkpoint(checkpoint, model, restore_rng=False)


def cmd_evaluate(args) -> None:
    """`evaluate`: test loss and accuracy of a checkpoint (chapter 7).

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
    """`predict`: classify images of single digits, MNIST-style preprocessing first (chapter 8).

    Without ``--checkpoint``, a LeNet-5 is trained once and cached under the data root.

    Args:
        args: the parsed command line (see :func:`build_parser`).

    Returns:
        int: the exit status: 1 if any image could not be read, else 0.
    """
    from mnist_course.data import normalization_stats
    from mnist_course.handwriting import classify

    model, _ = _load_model(args.checkpoint or _default_model(args.root), "cpu")
    mean, std = normalization_stats(args.root)
    results = classify(model, [(image, image) for image in args.images], mean=mean, std=std)
    for result in results:
        print(result)
    return 1 if any(r.error for r in results) else 0


def cmd_bench(args) -> None:
    """`bench`: the speed measurements, printed as a summary and optionally written as JSON (chapter 10).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.bench import measure, summary
    from mnist_course.results import write_json

    result = measure(quick=args.quick, device=args.device, root=args.root, log=lambda m: print(m, flush=True))
    print()
    print(summary(result))
    if args.out:
        print(f"results: {write_json(result, args.out)}")


def cmd_record(args) -> None:
    """`record`: train the best-accuracy recipe and report its test accuracy (chapter 10).

    Args:
        args: the parsed command line (see :func:`build_parser`).
    """
    from mnist_course.record import record
    from mnist_course.results import write_json

    result = record(
        args.epochs, device=args.device, root=args.root, checkpoint=args.checkpoint, log=lambda m: print(m, flush=True)
    )
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
    "bench": cmd_bench,
    "record": cmd_record,
}


def main(argv=None) -> int:
    """Entry point of ``python -m mnist_course`` (chapter 4).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        int: the exit status; expected failures print one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1
