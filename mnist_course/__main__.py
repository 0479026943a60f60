"""Command line: ``python -m mnist_course fetch | models | train | evaluate | predict | bench``."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mnist_course`` (chapter 4)."""
    from mnist_course.models import MODELS

    parser = argparse.ArgumentParser(prog="python -m mnist_course", description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch", help="download or rebuild the MNIST files and verify their SHA-256")
    p.add_argument("--root", help="data root (files go to ROOT/MNIST/raw)")
    p.add_argument("--repair", action="store_true", help="keep a file that fails verification aside and fetch it again")

    sub.add_parser("models", help="list the book's models with their parameter counts")

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

    p = sub.add_parser("predict", help="classify images of single handwritten digits (PNG, JPEG, ...)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="a checkpoint from `train` (default: a LeNet-5 trained once and cached)")
    p.add_argument("--root", help="data root")

    p = sub.add_parser("bench", help="benchmark data paths, time to 99%% and scaling (prints a table, writes JSON)")
    p.add_argument("--quick", action="store_true", help="tiny versions of every measurement (under 2 minutes)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--root", help="data root")
    p.add_argument(
        "--record",
        action="store_true",
        help="instead: train the best-accuracy recipe (ModernCNN + augmentation) and record its result",
    )
    p.add_argument("--epochs", type=_positive_int, default=15, help="epochs of the --record recipe")
    p.add_argument("--checkpoint", help="with --record: save the trained model here")

    p = sub.add_parser("evaluate", help="test loss and accuracy of a saved checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--device")
    p.add_argument("--root", help="data root")
    return parser


def cmd_fetch(args) -> None:
    """`fetch`: put verified MNIST files in place and say where they came from (chapter 1)."""
    from mnist_course.data import ensure_mnist

    print(ensure_mnist(args.root, repair=args.repair))


def cmd_models(args) -> None:
    """`models`: list the registry with parameter counts (chapter 6)."""
    from mnist_course.models import model_table

    rows = model_table()
    width = max(len(r["name"]) for r in rows)
    print(f"{'model':<{width}}  {'parameters':>10}  source")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['parameters']:>10,}  {r['source']}")


def cmd_train(args) -> None:
    """`train`: train a registry model on the in-memory data, with optional checkpoint/resume (chapters 4, 7)."""
    from mnist_course.checkpoint import read_checkpoint
    from mnist_course.compare import Budget, make_optimizer
    from mnist_course.data import TensorLoader, load_tensors
    from mnist_course.models import create_model
    from mnist_course.train import describe_device, fit, pick_device, seed_everything

    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint PATH")
    device = pick_device(args.device)
    print(f"device: {describe_device(device)}")
    seed_everything(args.seed)
    train = TensorLoader(
        load_tensors(True, args.root, device=device, limit=args.limit), args.batch_size, shuffle=True, seed=args.seed
    )
    test = load_tensors(False, args.root, device=device)
    model = create_model(args.model).to(device)
    budget = Budget(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        seed=args.seed,
    )
    optimizer, scheduler = make_optimizer(model, budget, len(train))
    if scheduler is not None and args.resume and Path(args.checkpoint).exists():
        saved = read_checkpoint(args.checkpoint)["scheduler"] or {}
        if saved.get("total_steps") not in (None, scheduler.total_steps):
            planned = saved["total_steps"] // len(train)
            raise ValueError(
                f"{args.checkpoint} follows a one-cycle schedule planned for {planned} epochs of this data; "
                f"resume with --epochs {planned}, or train with --schedule constant to extend runs freely"
            )
    print(
        f"training {args.model} for {args.epochs} epochs on {len(train.dataset):,} images, "
        f"batch {args.batch_size}, {args.optimizer} lr {args.lr:g} ({args.schedule})"
    )
    history = fit(
        model,
        train,
        test,
        optimizer=optimizer,
        epochs=args.epochs,
        scheduler=scheduler,
        scheduler_interval="batch",
        device=device,
        progress=not args.no_progress,
        checkpoint=args.checkpoint,
        resume=args.resume,
    )
    for e in history.epochs:
        print(
            f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, test loss {e['test_loss']:.4f}, "
            f"test accuracy {e['test_accuracy']:.2%} ({e['seconds']:.1f} s)"
        )
    if history.epochs:
        print(f"final test accuracy: {history.epochs[-1]['test_accuracy']:.2%}")
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint}")


def cmd_evaluate(args) -> None:
    """`evaluate`: test loss and accuracy of a checkpoint (chapter 7)."""
    from mnist_course.checkpoint import load_checkpoint, read_checkpoint
    from mnist_course.data import load_tensors
    from mnist_course.evaluate import evaluate
    from mnist_course.models import create_model
    from mnist_course.train import pick_device

    device = pick_device(args.device)
    model = create_model(read_checkpoint(args.checkpoint)["model_name"])
    ck = load_checkpoint(args.checkpoint, model, restore_rng=False)
    result = evaluate(model.to(device), load_tensors(False, args.root, device=device))
    print(f"{ck.model_name} after {ck.epoch} epochs: test {result}")


def _default_model(root) -> str:
    """The cached LeNet-5 checkpoint used by `predict` without --checkpoint; trained on first use."""
    from mnist_course.data import ensure_mnist

    path = ensure_mnist(root).root / "checkpoints" / "lenet5.ckpt"
    if not path.exists():
        print(f"no --checkpoint given: training LeNet-5 once (2 epochs) and caching it at {path}", file=sys.stderr)
        train_args = ["train", "--model", "lenet5", "--epochs", "2", "--checkpoint", str(path), "--no-progress"]
        if root:
            train_args += ["--root", str(root)]
        cmd_train(build_parser().parse_args(train_args))
    return str(path)


def cmd_predict(args) -> int:
    """`predict`: classify images of single digits, MNIST-style preprocessing first (chapter 8)."""
    from mnist_course.checkpoint import load_checkpoint, read_checkpoint
    from mnist_course.data import ensure_mnist, normalization_stats
    from mnist_course.handwriting import classify
    from mnist_course.models import create_model

    checkpoint = args.checkpoint or _default_model(args.root)
    model = create_model(read_checkpoint(checkpoint)["model_name"])
    load_checkpoint(checkpoint, model, restore_rng=False)
    mean, std = normalization_stats(ensure_mnist(args.root).root)
    results = classify(model, [(image, image) for image in args.images], mean=mean, std=std)
    for result in results:
        print(result)
    return 1 if any(r.error for r in results) else 0


def cmd_bench(args) -> None:
    """`bench`: speed measurements, or with --record the best-accuracy recipe (chapter 10)."""
    from mnist_course.bench import record, run, summary, write_json

    def log(message):
        print(message, flush=True)

    if args.record:
        result = record(args.epochs, device=args.device, root=args.root, checkpoint=args.checkpoint, log=log)
        reached = "reached" if result["reached_target"] else "not reached"
        print(
            f"final test accuracy {result['test_accuracy']:.2%} after {result['train_seconds']:.0f} s of training "
            f"(target 99.65%: {reached})"
        )
    else:
        result = run(quick=args.quick, device=args.device, root=args.root, log=log)
        print()
        print(summary(result))
    if args.out:
        print(f"results: {write_json(result, args.out)}")


COMMANDS = {
    "fetch": cmd_fetch,
    "models": cmd_models,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "bench": cmd_bench,
}


def main(argv=None) -> int:
    """Entry point of ``python -m mnist_course`` (chapter 4)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
