"""The paper's step-based learning-rate schedule."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr, divided by 10 at each boundary, after an optional warm-up.

    For steps < warmup_steps the lr is `warmup_lr` (ResNet-110/1202's 0.01).
    The step is the optimizer's iteration count, which checkpoints save, so
    a resumed run continues the same schedule.

    Args:
        lr: base learning rate (0.1).
        boundaries: steps at which the lr is divided by 10 (32k, 48k).
        warmup_lr: lr before `warmup_steps`, or None.
        warmup_steps: length of the warm-up in steps.
    """

    def __init__(self, lr, boundaries, warmup_lr=None, warmup_steps=0):
        self.lr = float(lr)
        self.boundaries = [int(b) for b in boundaries]
        self.warmup_lr = None if warmup_lr is None else float(warmup_lr)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        drops = sum(ops.cast(step >= b, "float32") for b in self.boundaries) if self.boundaries else 0.0
        lr = self.lr * ops.power(0.1, drops)
        if self.warmup_lr is not None and self.warmup_steps:
            lr = ops.where(step < self.warmup_steps, self.warmup_lr, lr)
        return lr

    def get_config(self):
        return {
            "lr": self.lr,
            "boundaries": self.boundaries,
            "warmup_lr": self.warmup_lr,
            "warmup_steps": self.warmup_steps,
        }


def from_recipe(recipe):
    """The `StepDecay` of a recipe."""
    return StepDecay(recipe.lr, recipe.lr_boundaries, recipe.warmup_lr, recipe.warmup_steps)
