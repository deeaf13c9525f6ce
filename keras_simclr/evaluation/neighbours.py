"""Nearest neighbours by cosine similarity: what the features find.

numpy, in chunks of the database: 1 M features of 128 floats are searched
without a 1 M x Q matrix in memory. (Keras has no top-k search over a
database; `keras.ops.top_k` would need the whole similarity matrix.)
"""

import numpy as np


def normalise(features):
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    features = np.asarray(features, "float32")
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def nearest_neighbours(database, queries, k=8, chunk_size=65_536, exclude=None):
    """The `k` rows of `database` most cosine-similar to each query.

    Args:
        database: `(N, D)` features (e.g. `keras-simclr embed`'s `features`).
        queries: `(Q, D)` features.
        k: int, neighbours per query (at most N, or N - 1 with `exclude`).
        chunk_size: database rows compared at a time.
        exclude: None, or `(Q,)` ints: the database row each query must not
            find, -1 for none (a query taken from the database is given its
            own row, so that it does not find itself).

    Returns:
        `(indices, similarities)`: int64 and float32 `(Q, k)`, most similar
        first. Without `exclude`, a query that is in the database finds
        itself first, at ~1.

    Examples:
        >>> import numpy as np
        >>> database = np.array([[1, 0], [0, 1], [1, 1]], "float32")
        >>> indices, similarities = nearest_neighbours(database, database[:1], k=2)
        >>> indices.tolist(), [round(float(s), 3) for s in similarities[0]]
        ([[0, 2]], [1.0, 0.707])
        >>> nearest_neighbours(database, database[:1], k=2, exclude=[0])[0].tolist()
        [[2, 1]]
    """
    database, queries = normalise(database), normalise(queries)
    _check_finite(database, "database")
    _check_finite(queries, "queries")
    if database.ndim != 2 or queries.ndim != 2 or database.shape[1] != queries.shape[1]:
        raise ValueError(
            "database and queries must be (N, D) and (Q, D) features of the same "
            f"D. Received: {database.shape} and {queries.shape}"
        )
    exclude = _excluded_rows(exclude, len(queries), len(database))
    largest = len(database) - (exclude is not None and bool((exclude >= 0).any()))
    if int(k) != k or not 1 <= k <= largest:
        raise ValueError(f"`k` must be an int in 1..{largest}. Received: {k!r}")
    best_index = np.zeros((len(queries), 0), "int64")
    best_score = np.zeros((len(queries), 0), "float32")
    for start in range(0, len(database), chunk_size):
        scores = queries @ database[start : start + chunk_size].T  # (Q, chunk)
        if exclude is not None:
            rows = np.flatnonzero(
                (exclude >= start) & (exclude < start + len(scores.T))
            )
            scores[rows, exclude[rows] - start] = -np.inf
        take = min(k, scores.shape[1])
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best_index = np.concatenate([best_index, top + start], axis=1)
        best_score = np.concatenate(
            [best_score, np.take_along_axis(scores, top, axis=1)], axis=1
        )
        keep = np.argsort(-best_score, axis=1, kind="stable")[:, :k]
        best_index = np.take_along_axis(best_index, keep, axis=1)
        best_score = np.take_along_axis(best_score, keep, axis=1)
    return best_index, best_score


def _check_finite(features, name):
    """Raises naming the rows of `features` that hold NaN or inf: a row
    like that has no similarity, so it would never be found (as a database
    row) or find arbitrary rows (as a query)."""
    bad = np.flatnonzero(~np.isfinite(features).all(axis=-1))
    if bad.size:
        raise ValueError(
            f"{bad.size} row(s) of `{name}` hold NaN or inf (rows "
            f"{bad[:10].tolist()}{' ...' if bad.size > 10 else ''}): they have no "
            "cosine similarity. Embed those images again, or drop the rows."
        )


def _excluded_rows(exclude, queries, rows):
    if exclude is None:
        return None
    exclude = np.asarray(exclude)
    if exclude.shape != (queries,) or not np.issubdtype(exclude.dtype, np.integer):
        raise ValueError(
            f"`exclude` must be {queries} ints, one per query. Received: {exclude!r}"
        )
    if (exclude >= rows).any() or (exclude < -1).any():
        raise ValueError(f"`exclude` rows must be in -1..{rows - 1}.")
    return exclude.astype("int64")
