"""LARS: layer-wise adaptive rate scaling, as SimCLR uses it."""

import keras
from keras import ops


def is_rank_one(variable):
    """Default exclusion: BatchNormalization gamma/beta and biases (rank ≤ 1)."""
    return len(variable.shape) <= 1


def _as_predicate(exclude, argument_name):
    """Turns `None`, a predicate, or a list of variables/name parts into a predicate."""
    if exclude is None:
        return is_rank_one
    if callable(exclude):
        return exclude
    if isinstance(exclude, (list, tuple)):
        names = [item for item in exclude if isinstance(item, str)]
        variable_ids = {id(item) for item in exclude if not isinstance(item, str)}

        def predicate(variable):
            path = getattr(variable, "path", variable.name)
            return id(variable) in variable_ids or any(n in path for n in names)

        return predicate
    raise TypeError(
        f"`{argument_name}` must be None, a callable `predicate(variable) -> bool`"
        " or a list of variables / variable-path substrings. Received: "
        f"{argument_name}={exclude!r}"
    )


@keras.saving.register_keras_serializable(package="keras_simclr")
class LARS(keras.optimizers.Optimizer):
    """Momentum SGD with layer-wise adaptive rate scaling (You et al., 2017).

    Reference: Chen et al., 2020, Section 2.2: "we use the LARS optimizer to
    stabilize training for all batch sizes". For a variable `w` with gradient
    `g` and learning rate `lr`, one step is, as in SimCLR's implementation:

    1. `g = g + weight_decay * w` (unless excluded from weight decay);
    2. `trust = trust_coefficient * ||w|| / ||g||` (unless excluded from layer
       adaptation, or either norm is 0, when `trust = 1`);
    3. `v = momentum * v + lr * trust * g`;
    4. `w = w - v`, or with Nesterov `w = w - (momentum * v + lr * trust * g)`.

    Weight decay is the coupled L2 term of step 1; the base class's decoupled
    decay is not applied. `optimizer.exclude_from_weight_decay(...)` of the base
    class is honoured too.

    Args:
        learning_rate: float or `LearningRateSchedule`. SimCLR uses
            `scaled_learning_rate(0.3, batch_size)` or
            `scaled_learning_rate(0.075, batch_size, "sqrt")`.
        momentum: float in [0, 1). Defaults to 0.9.
        weight_decay: float ≥ 0, the L2 coefficient. Defaults to 1e-6.
        trust_coefficient: float > 0, the LARS η. Defaults to 0.001.
        nesterov: bool. Defaults to False.
        exclude_from_weight_decay: None (rank-≤1 variables: BatchNormalization
            weights and biases), a callable `predicate(variable) -> bool`, or a
            list of variables and/or substrings of variable paths.
        exclude_from_layer_adaptation: same forms; None means the same as
            `exclude_from_weight_decay`.
        **kwargs: passed to `keras.optimizers.Optimizer` (e.g. `clipnorm`).

    Examples:
        >>> import keras
        >>> optimizer = LARS(learning_rate=0.1)
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> model.compile(optimizer=optimizer, loss="mse")
        >>> optimizer.momentum
        0.9
    """

    def __init__(
        self,
        learning_rate,
        momentum=0.9,
        weight_decay=1e-6,
        trust_coefficient=0.001,
        nesterov=False,
        exclude_from_weight_decay=None,
        exclude_from_layer_adaptation=None,
        name="lars",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            name=name,
            **kwargs,
        )
        if isinstance(learning_rate, (int, float)) and learning_rate < 0:
            raise ValueError(
                f"`learning_rate` must be >= 0. Received: learning_rate={learning_rate}"
            )
        if not 0 <= momentum < 1:
            raise ValueError(f"`momentum` must be in [0, 1). Received: {momentum}")
        if trust_coefficient <= 0:
            raise ValueError(
                f"`trust_coefficient` must be > 0. Received: {trust_coefficient}"
            )
        if weight_decay is not None and weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: {weight_decay}")
        self.momentum = momentum
        self.trust_coefficient = trust_coefficient
        self.nesterov = nesterov
        self._weight_decay_exclusion = exclude_from_weight_decay
        self._layer_adaptation_exclusion = exclude_from_layer_adaptation
        self._excluded_from_decay = _as_predicate(
            exclude_from_weight_decay, "exclude_from_weight_decay"
        )
        self._excluded_from_adaptation = (
            self._excluded_from_decay
            if exclude_from_layer_adaptation is None
            else _as_predicate(
                exclude_from_layer_adaptation, "exclude_from_layer_adaptation"
            )
        )

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum")

    def _apply_weight_decay(self, variables):
        # Weight decay is the coupled L2 term inside `update_step` (SimCLR's
        # LARS), never the base class's decoupled decay.
        return

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self.momentum, variable.dtype)
        index = self._get_variable_index(variable)
        velocity = self._momentums[index]
        # The exclusion predicates see the Keras variable (with `.path`), not
        # the backend variable the update runs on.
        keras_variable = self._trainable_variables[index]

        # 1. Coupled weight decay.
        if (
            self.weight_decay
            and not self._excluded_from_decay(keras_variable)
            and self._use_weight_decay(keras_variable)
        ):
            gradient = gradient + ops.cast(self.weight_decay, variable.dtype) * variable
        # 2. Trust ratio.
        if self._excluded_from_adaptation(keras_variable):
            scaled_gradient = learning_rate * gradient
        else:
            weight_norm = ops.norm(ops.reshape(variable, (-1,)))
            gradient_norm = ops.norm(ops.reshape(gradient, (-1,)))
            trust = ops.where(
                ops.logical_and(weight_norm > 0, gradient_norm > 0),
                self.trust_coefficient
                * weight_norm
                / ops.maximum(gradient_norm, 1e-30),
                ops.ones_like(weight_norm),
            )
            scaled_gradient = learning_rate * trust * gradient
        # 3. Momentum; 4. update.
        self.assign(velocity, momentum * velocity + scaled_gradient)
        if self.nesterov:
            self.assign_sub(variable, momentum * velocity + scaled_gradient)
        else:
            self.assign_sub(variable, velocity)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "trust_coefficient": self.trust_coefficient,
                "nesterov": self.nesterov,
                "exclude_from_weight_decay": _serialize_exclusion(
                    self._weight_decay_exclusion
                ),
                "exclude_from_layer_adaptation": _serialize_exclusion(
                    self._layer_adaptation_exclusion
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)  # never modify the caller's config
        for key in ("exclude_from_weight_decay", "exclude_from_layer_adaptation"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return super().from_config(config, custom_objects=custom_objects)


def _serialize_exclusion(exclude):
    """None and lists of name parts serialise as is; callables by registered name."""
    if exclude is None:
        return None
    if callable(exclude):
        return keras.saving.serialize_keras_object(exclude)
    if all(isinstance(item, str) for item in exclude):
        return list(exclude)
    raise ValueError(
        "A LARS exclusion list that holds variables cannot be saved; pass "
        "variable-path substrings or a registered predicate instead. Received: "
        f"{exclude!r}"
    )
