"""InceptionV3 features, for numbers comparable with papers: torch-fidelity's `inception-v3-compat`.

Never the default. On MNIST the digit classifier's features are the sharper
instrument, and InceptionV3 scores about 10 images a second on a 2-core CPU
(28 x 28 digits are resized to 299 x 299). Ask for it in a matrix with
`[evaluation] feature_extractor = "inception"`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from urllib.parse import urlparse

import torch

from benchmark.errors import DataError
from benchmark.metrics import Extractor

logger = logging.getLogger(__name__)

INCEPTION_NAME = "inception-v3-compat"  # torch-fidelity's registry name
FEATURE_LAYER = "2048"  # the pool features of FID, KID and precision/recall
LOGITS_LAYER = "logits_unbiased"  # the inception score's layer in torch-fidelity


def inception_url() -> str:
    """Where torch-fidelity publishes its InceptionV3 weights (converted from TensorFlow's)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


def default_weights_path() -> Path:
    """Where torch-fidelity's own download keeps the weights: torch hub's checkpoint folder."""
    name = Path(urlparse(inception_url()).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_inception(weights: Path | None = None) -> Extractor:
    """torch-fidelity's InceptionV3, from a local weights file or downloaded once.

    Args:
        weights: a `.pth` state dict in torch-fidelity's format; None takes
            torch hub's checkpoint folder (see `default_weights_path`), and
            downloads the file there when it is missing.

    Returns:
        The extractor, hashed by the sha256 of its weights file.

    Raises:
        DataError: if `weights` does not exist, or the download fails (offline).
    """
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise DataError(f"--inception-weights {str(weights)!r} is not a file")
    else:
        weights = default_weights_path()
        if not weights.is_file():
            _download(weights)

    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return Extractor(
        INCEPTION_NAME, weights, digest.hexdigest()[:12], None,
        FEATURE_LAYER, LOGITS_LAYER, channels=3, batch_size=64,
    )  # fmt: skip


def _download(target: Path) -> None:
    url = inception_url()
    logger.info("downloading InceptionV3 weights url=%s to=%s", url, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except OSError as err:  # URLError and socket errors are OSErrors
        raise DataError(
            f"feature_extractor 'inception' needs InceptionV3 weights, and downloading "
            f"{url} failed ({err}); on a machine that is online, download that file and "
            f"pass it with --inception-weights PATH, or put it at {target}"
        ) from err
