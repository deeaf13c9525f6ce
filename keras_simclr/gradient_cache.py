"""Gradient caching: the whole batch's NT-Xent, the encoder run in chunks.

Reference: Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size
under Memory Limited Setup". Plain gradient accumulation changes the loss
(each micro-batch would see only its own negatives); caching keeps it. The
views are encoded chunk by chunk without keeping activations (pass 1); the
loss of the whole batch and its gradient dL/dz come from the projections
(cheap: z is 128-d); then each chunk is encoded again, with gradients, and
its cached dL/dz back-propagated (pass 2). Memory is that of one chunk, the
loss and gradient those of the whole batch, the cost about one more
forward pass.

The algorithm is written here once. Each backend supplies only the
custom-gradient wiring and the two loops (`backend.current().cached_chunks`:
`tf.custom_gradient` over `tf.while_loop`, `jax.custom_vjp` over
`lax.scan`, a `torch.autograd.Function`), since Keras has no
backend-neutral custom gradient. Keras's own train step is unchanged: it
differentiates the loss, and the cached backward runs where the projections
were made.

BatchNorm. In chunks, BatchNorm's batch statistics are those of a chunk
(like per-replica BN without synchronisation), so a chunk holding both
views of an image would let the model find the positive through the
statistics (Chen et al., 2020, Section 4, "Global BN"). `pair_views`
therefore builds chunk k from the first views of image group k and the
second views of group k+1: no chunk holds both views of an image. Moving
statistics are updated once per view, in pass 1 (pass 2 recomputes with
the same batch statistics and discards its updates). Layers that draw
random numbers inside the encoder or head (dropout) draw again in pass 2,
so their gradient is not exact; SimCLR's ResNet and head have none.

Examples:
    >>> import numpy as np
    >>> from keras import ops
    >>> images = np.arange(8)  # the image index of each view
    >>> chunks = pair_views(images, images, groups=2)
    >>> ops.convert_to_numpy(chunks).tolist()  # chunk 0: views a of 0-3, b of 4-7
    [[0, 1, 2, 3, 4, 5, 6, 7], [4, 5, 6, 7, 0, 1, 2, 3]]
    >>> ops.convert_to_numpy(unpair(chunks, groups=2)).tolist() == [*range(8)] * 2
    True
"""

from keras import ops

from keras_simclr import backend
from keras_simclr.batching import chunk_groups


def pair_views(views_a, views_b, groups, devices=1):
    """`(groups, 2B / groups, ...)` chunks; no chunk holds both views of an image.

    Each device's images form `groups` groups; chunk k holds, on every
    device, the first views of its group k and the second views of its
    group k + 1 (mod `groups`), so each device's rows stay on it.

    Args:
        views_a: `(B, ...)` first views.
        views_b: `(B, ...)` second views (row i: the same image as `views_a`).
        groups: chunks per step (`chunk_groups`), >= 2.
        devices: devices the batch is split over inside the step.
    """
    shape = tuple(views_a.shape[1:])
    first = ops.reshape(views_a, (devices, groups, -1, *shape))
    second = ops.roll(ops.reshape(views_b, (devices, groups, -1, *shape)), -1, axis=1)
    chunks = ops.swapaxes(ops.concatenate([first, second], axis=2), 0, 1)
    return ops.reshape(chunks, (groups, -1, *shape))  # (G, P·2C, ...)


def unpair(outputs, groups, devices=1):
    """Inverse of `pair_views` on per-view outputs: `(2B, ...)`, views a first."""
    shape = tuple(outputs.shape[2:])
    outputs = ops.swapaxes(ops.reshape(outputs, (groups, devices, -1, *shape)), 0, 1)
    first, second = ops.split(outputs, 2, axis=2)  # (P, G, C, ...) each
    second = ops.roll(second, 1, axis=1)
    return ops.concatenate(
        [ops.reshape(first, (-1, *shape)), ops.reshape(second, (-1, *shape))], axis=0
    )


def chunk_forward(encoder, head, training):
    """`forward(trainable, non_trainable, chunk) -> (h, z, non_trainable)`:
    encoder then head as one stateless function of their variables."""
    trainable_count = len(encoder.trainable_variables)
    state_count = len(encoder.non_trainable_variables)

    def forward(trainable, non_trainable, chunk):
        features, encoder_state = encoder.stateless_call(
            trainable[:trainable_count],
            non_trainable[:state_count],
            chunk,
            training=training,
        )
        projections, head_state = head.stateless_call(
            trainable[trainable_count:],
            non_trainable[state_count:],
            features,
            training=training,
        )
        return features, projections, [*encoder_state, *head_state]

    # Whether the forward all-reduces (synchronised BatchNorm): the
    # TensorFlow backend then cannot run the chunks in a `tf.while_loop`.
    forward.synchronizes = any(
        getattr(sublayer, "synchronized", False)
        for layer in (encoder, head)
        for sublayer in layer._flatten_layers()
    )
    return forward


def direct_chunks(forward, chunks, trainable, non_trainable):
    """`cached_chunks`' result computed as one differentiated graph (every
    chunk's activations kept): the oracle the cached gradient is tested on."""
    state, features, projections = list(non_trainable), [], []
    for index in range(chunks.shape[0]):
        h, z, state = forward(trainable, state, chunks[index])
        features.append(ops.stop_gradient(h))
        projections.append(z)
    return ops.stack(features), ops.stack(projections), state


def encode_in_chunks(encoder, head, views_a, views_b, chunk_size, training, cache=True):
    """h and z of both views, `(2B, D)` and `(2B, d)` (views a first), the
    encoder run `chunk_size` images per device at a time; z's gradient
    reaches the weights through pass 2. h carries no gradient (the online
    probe stops it anyway). `cache=False` differentiates the same chunked
    forward directly (`direct_chunks`, for tests)."""
    active = backend.current()
    devices = active.devices_in_step()
    groups = chunk_groups(views_a.shape[0], chunk_size, devices)
    if groups == 1:  # the whole batch is one chunk: one pass
        views = ops.concatenate([views_a, views_b], axis=0)
        features = encoder(views, training=training)
        return ops.stop_gradient(features), head(features, training=training)
    layers = (encoder, head)
    state_variables = [v for layer in layers for v in layer.non_trainable_variables]
    trainable = [
        ops.convert_to_tensor(v) for layer in layers for v in layer.trainable_variables
    ]
    run = active.cached_chunks if cache else direct_chunks
    features, projections, state = run(
        chunk_forward(encoder, head, training),
        pair_views(views_a, views_b, groups, devices),
        trainable,
        [ops.convert_to_tensor(v) for v in state_variables],
    )
    if training:  # moving statistics, updated once per view (pass 1)
        for variable, value in zip(state_variables, state):
            variable.assign(value)
    return unpair(features, groups, devices), unpair(projections, groups, devices)


def encode_views(encoder, head, views_a, views_b, chunk_size, training, cache=True):
    """h and z of both views, `(2B, D)` and `(2B, d)` (views a first): one
    pass over both views (so BatchNorm sees both) when `chunk_size` is None,
    else `encode_in_chunks`."""
    if chunk_size is None:
        features = encoder(
            ops.concatenate([views_a, views_b], axis=0), training=training
        )
        return features, head(features, training=training)
    return encode_in_chunks(
        encoder, head, views_a, views_b, chunk_size, training, cache
    )


__all__ = [
    "chunk_forward",
    "direct_chunks",
    "encode_in_chunks",
    "encode_views",
    "pair_views",
    "unpair",
]
