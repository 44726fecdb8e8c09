"""k-means shared by the SSL tokenizer and the mini codec's residual quantizer.

scikit-learn's MiniBatchKMeans does the fitting (ESPnet's SSL recipes use it the same way);
assignment is a nearest-centroid search written here because it must run on plain arrays
loaded from disk, without the fitted sklearn object.
"""
from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans


def sample_frames(features: list[np.ndarray], max_frames: int, seed: int) -> np.ndarray:
    """Stack per-utterance features [T_i, D] into [N, D], keeping at most `max_frames` rows
    chosen uniformly at random with `seed` (a fixed subset, so fitting is reproducible)."""
    x = np.concatenate(features, axis=0).astype(np.float32)
    if max_frames > 0 and len(x) > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=max_frames, replace=False))
        x = x[keep]
    return x


def fit_kmeans(x: np.ndarray, n_clusters: int, seed: int, batch_size: int = 4096, n_init: int = 3) -> np.ndarray:
    """Centroids [n_clusters, D] of `x` [N, D]; deterministic for a given `seed` and `x`."""
    if len(x) < n_clusters:
        raise ValueError(
            f"k-means with {n_clusters} clusters needs at least that many frames, got {len(x)}; "
            "use more training audio or fewer clusters"
        )
    km = MiniBatchKMeans(
        n_clusters=n_clusters,
        batch_size=batch_size,
        n_init=n_init,
        max_no_improvement=20,
        reassignment_ratio=0.0,  # as ESPnet's learn_kmeans: no random re-seeding of small clusters
        random_state=seed,
    )
    km.fit(x)
    return km.cluster_centers_.astype(np.float32)


def nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for each row: [N, D], [K, D] -> int64 [N]."""
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every c and is dropped.
    scores = x.astype(np.float32) @ centroids.T * -2.0 + np.einsum("kd,kd->k", centroids, centroids)
    return scores.argmin(axis=1).astype(np.int64)
