"""Dataset provenance: what a run trained on, as a small dict every backend can show.

    from runkit.repro.dataset import describe
    tracker.log_dataset(describe(datamodule))   # dataset.json in the run dir, and every backend

The fingerprint is a SHA-256 over the bytes of every split's tensors (their dtype and shape included), so two
runs on different data (another seed of synthetic data, another split, a changed file) never look alike, and
two runs on the same data always share it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

SPLITS = ("train", "val", "test")


def describe(datamodule: Any, name: str | None = None, source: str | None = None) -> dict[str, Any]:
    """{name, source, fingerprint, splits: {split: size}, classes: {split: {class: count}}, features}.

    Reads `<split>_set` (a TensorDataset, or a Subset of one) for train, val and test; `name` defaults to the
    data module's class, `source` to its `source` attribute (else its import path)."""
    digest = hashlib.sha256()
    splits: dict[str, int] = {}
    classes: dict[str, dict[str, int]] = {}
    features: list[int] = []
    for split in SPLITS:
        dataset = getattr(datamodule, f"{split}_set", None)
        if dataset is None:
            continue
        tensors = _tensors(dataset)
        splits[split] = len(dataset)
        digest.update(split.encode())
        for tensor in tensors:
            _hash_tensor(digest, tensor)
        if len(tensors) >= 2 and _is_labels(tensors[-1]):
            counts = Counter(int(v) for v in _values(tensors[-1]))
            classes[split] = {str(k): counts[k] for k in sorted(counts)}
        if tensors and not features:
            features = [int(n) for n in tuple(tensors[0].shape)[1:]]
    kind = type(datamodule)
    return {
        "name": name or kind.__name__,
        "source": source
        or str(getattr(datamodule, "source", "") or f"{kind.__module__}.{kind.__qualname__}"),
        "fingerprint": digest.hexdigest()[:16],
        "splits": splits,
        "classes": classes,
        "features": features,
        "num_classes": getattr(datamodule, "num_classes", None),
    }


def _tensors(dataset: Any) -> list[Any]:
    """The tensors of a TensorDataset, or of the TensorDataset under a Subset (only its indices)."""
    indices = None
    while hasattr(dataset, "dataset") and hasattr(dataset, "indices"):  # torch.utils.data.Subset
        indices = list(dataset.indices) if indices is None else [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    tensors = list(getattr(dataset, "tensors", ()))
    if indices is not None:
        tensors = [t[indices] for t in tensors]
    return tensors


def _hash_tensor(digest: Any, tensor: Any) -> None:
    array = tensor.detach().cpu().contiguous().numpy() if hasattr(tensor, "detach") else tensor
    digest.update(f"{array.dtype}{tuple(array.shape)}".encode())
    digest.update(array.tobytes())


def _is_labels(tensor: Any) -> bool:
    dtype = str(getattr(tensor, "dtype", ""))
    return len(tuple(tensor.shape)) == 1 and ("int" in dtype or "long" in dtype)


def _values(tensor: Any) -> Iterable[Any]:
    return tensor.tolist() if hasattr(tensor, "tolist") else list(tensor)
