"""The paper's experiments as typed, registered configs (configs as code).

Each recipe is one frozen `Recipe` built by a small function whose
docstring gives the paper's section, where the recipe departs from the
paper, and the command that runs it. Values that follow from others (lr
boundaries, epochs, steps per epoch) are computed, never typed in.

    from zoo import recipes
    recipe = recipes.get("cifar10_resnet110")
    recipe = recipes.override(recipe, ["steps=2000", "batch_size=64"])
"""

import dataclasses
import math
import typing

from keras_resnet import specs
from zoo import datasets

# The families are the library's (`keras_resnet.specs`, which imports no Keras).
CIFAR = specs.CIFAR
IMAGENET = specs.IMAGENET
# keras_resnet.blocks.SHORTCUTS, restated: the shortcut options live with
# their layers (blocks imports Keras, which the commands import only after
# their flags are parsed, zoo.cli.run); tests/test_zoo_recipes.py keeps the
# two equal.
SHORTCUTS = ("A", "B", "C")

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training experiment. Batch sizes are global (all replicas).

    Args:
        name: the registered name.
        family: "cifar" or "imagenet": which input pipeline and net family.
        depth: number of weighted layers, as the paper counts them.
        plain: the plain baseline (no shortcuts).
        shortcut: "A", "B", "C" or None (the library's default for the
            family; must be None when `plain`).
        dataset: the paper's data, a dataset spec (see `zoo.datasets`):
            what `--dataset=paper` trains on.
        classes: number of classes of the paper's data.
        image_size: training crop size (32 or 224).
        batch_size: global mini-batch.
        steps: total SGD iterations.
        lr: base learning rate.
        lr_decay_at: fractions of `steps` where the lr is divided by 10.
        warmup_lr: lr for the first `warmup_steps` steps (None: no warm-up).
        warmup_steps: length of the warm-up, in steps.
        momentum: SGD momentum.
        weight_decay: coupled (Caffe/PyTorch) weight decay, passed to
            `keras_resnet.ResNet(weight_decay=...)` as L2(wd/2) on kernels.
        val_size: examples held out of the training split for validation.
        epoch_steps: steps between validation and checkpoint; a kill
            repeats at most this many steps. Must divide `steps`.
        pad: CIFAR augmentation: zero padding before the random crop.
        flip: random horizontal flips.
        scale_min, scale_max: ImageNet augmentation: the shorter side is
            resized to a size drawn uniformly from [scale_min, scale_max].
        eval_resize: ImageNet evaluation: shorter side before the centre crop.
        lighting_std: ImageNet PCA lighting noise std (0 disables it).
        mean_examples: ImageNet: training images used to estimate the
            per-pixel mean (the whole split for CIFAR).
        seed: seeds the split, the shuffling, augmentation and init.
        run_eagerly: Keras's debugging switch: run the train step without
            compiling it to a graph. Slower per step, but it skips graph
            tracing, which for the deepest nets (ResNet-1202: ~7,000 layers)
            takes minutes on a CPU. Not a change of method.
    """

    name: str
    family: str
    depth: int
    plain: bool = False
    shortcut: typing.Optional[str] = None
    dataset: str = "tfds:cifar10"
    classes: int = 10
    image_size: int = 32
    batch_size: int = 128
    steps: int = 64000
    lr: float = 0.1
    lr_decay_at: typing.Tuple[float, ...] = (0.5, 0.75)
    warmup_lr: typing.Optional[float] = None
    warmup_steps: int = 0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    val_size: int = 5000
    epoch_steps: int = 400
    pad: int = 4
    flip: bool = True
    scale_min: int = 256
    scale_max: int = 480
    eval_resize: int = 256
    lighting_std: float = 0.0
    mean_examples: int = 10000
    seed: int = 0
    run_eagerly: bool = False

    def __post_init__(self):
        if self.family not in (CIFAR, IMAGENET):
            raise ValueError(
                f"`family` must be {CIFAR!r} or {IMAGENET!r}. Received family={self.family!r}."
            )
        # Every number is checked here, when the recipe is made (by
        # `override` for --set), so a bad value fails before any data is read.
        for key, minimum in _INT_MINIMUMS.items():
            self._set(key, _integer(key, getattr(self, key), minimum))
        if self.seed > MAX_SEED:
            raise ValueError(
                f"`seed` must be an int in [0, {MAX_SEED}] (2**32 - 1, the largest seed numpy "
                f"takes). Received seed={self.seed}."
            )
        for key, (low, high) in _REAL_RANGES.items():
            self._set(key, _real(key, getattr(self, key), low, high))
        if self.warmup_lr is not None:
            self._set("warmup_lr", _real("warmup_lr", self.warmup_lr, *_REAL_RANGES["lr"]))
        for key in ("plain", "flip", "run_eagerly"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"`{key}` must be True or False. Received {key}={getattr(self, key)!r}."
                )
        try:
            datasets.parse(self.dataset)
        except (ValueError, AttributeError, TypeError):
            raise ValueError(
                "`dataset` (the paper's data, which --dataset=paper trains on) must be a "
                "dataset spec: 'digits', 'tfds:NAME' or 'folder:PATH'. "
                f"Received dataset={self.dataset!r}."
            ) from None
        if self.shortcut is not None and self.shortcut not in SHORTCUTS:
            raise ValueError(
                f"`shortcut` must be None, {', '.join(repr(s) for s in SHORTCUTS[:-1])} or "
                f"{SHORTCUTS[-1]!r}. Received shortcut={self.shortcut!r}."
            )
        if self.steps % self.epoch_steps:
            raise ValueError(
                f"`steps` ({self.steps}) must be a multiple of `epoch_steps` "
                f"({self.epoch_steps}) so that a resumed run ends at the same step. "
                f"Set e.g. --set=epoch_steps={math.gcd(self.steps, self.epoch_steps)}."
            )
        self._set("lr_decay_at", tuple(
            _real("lr_decay_at", f, 0.0, 1.0) for f in _as_tuple(self.lr_decay_at)
        ))
        if not all(0 < f < 1 for f in self.lr_decay_at) or list(self.lr_decay_at) != sorted(
            self.lr_decay_at
        ):
            raise ValueError(
                "`lr_decay_at` must be increasing fractions of `steps` in (0, 1). "
                f"Received lr_decay_at={self.lr_decay_at!r}."
            )
        if self.plain and self.shortcut is not None:
            raise ValueError(
                f"A plain recipe has no shortcut. Received plain=True, shortcut={self.shortcut!r}."
            )
        if self.warmup_steps and self.warmup_lr is None:
            raise ValueError(
                f"`warmup_steps={self.warmup_steps}` needs `warmup_lr`. Received warmup_lr=None."
            )
        if not self.scale_min <= self.scale_max:
            raise ValueError(
                "`scale_min` must be <= `scale_max`. "
                f"Received scale_min={self.scale_min}, scale_max={self.scale_max}."
            )
        if self.family == IMAGENET:
            for key in ("scale_min", "eval_resize"):
                if getattr(self, key) < self.image_size:
                    raise ValueError(
                        f"`{key}` (the shorter side before cropping) must be >= "
                        f"`image_size` ({self.image_size}). Received {key}={getattr(self, key)}."
                    )

    def _set(self, key, value):
        object.__setattr__(self, key, value)  # The dataclass is frozen.

    @property
    def lr_boundaries(self):
        """Steps at which the lr drops by 10x: e.g. 32k and 48k of 64k."""
        return tuple(round(f * self.steps) for f in self.lr_decay_at)

    @property
    def epochs(self):
        """Number of `epoch_steps`-long epochs (validation/checkpoint periods)."""
        return self.steps // self.epoch_steps

    def to_dict(self):
        """The recipe as JSON data (config.json's "recipe"), derived values included.

        `from_dict` reads it back; `lr_boundaries` and `epochs` are recorded
        for readers of the file, and recomputed, never read.
        """
        config = dataclasses.asdict(self)
        config["lr_decay_at"] = list(self.lr_decay_at)
        config["lr_boundaries"] = list(self.lr_boundaries)
        config["epochs"] = self.epochs
        return config

    @classmethod
    def from_dict(cls, config):
        """The `Recipe` that `to_dict` wrote (a run's config.json "recipe").

        A field an older zoo did not record takes its default.

        Raises:
            ValueError: `config` is not a dict, holds a key that is neither a
                field nor a derived value, or a value the field refuses.
        """
        if not isinstance(config, dict):
            raise ValueError(f"A recipe dict is expected. Received {config!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - fields - set(DERIVED))
        if unknown:
            raise ValueError(
                f"Unknown recipe keys {unknown}: not fields of Recipe ({', '.join(sorted(fields))}) "
                f"nor derived values ({', '.join(DERIVED)})."
            )
        values = {k: v for k, v in config.items() if k in fields}
        if isinstance(values.get("lr_decay_at"), list):
            values["lr_decay_at"] = tuple(values["lr_decay_at"])
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.name not in values and f.default is dataclasses.MISSING)
        if missing:
            raise ValueError(f"The recipe dict lacks {', '.join(missing)}. Received {config!r}.")
        return cls(**values)


# What `Recipe.to_dict` adds to the fields: computed from them, so not read back.
DERIVED = ("lr_boundaries", "epochs")


# The largest seed: numpy's, which Keras's set_random_seed seeds.
MAX_SEED = 2**32 - 1
# The smallest value of each int field.
_INT_MINIMUMS = {
    "depth": 1, "classes": 1, "image_size": 1, "batch_size": 1, "steps": 1,
    "warmup_steps": 0, "val_size": 0, "epoch_steps": 1, "pad": 0, "scale_min": 1,
    "scale_max": 1, "eval_resize": 1, "mean_examples": 1, "seed": 0,
}
# The range of each float field: [low, high) for momentum, (0, inf) for the
# learning rate, [0, inf) otherwise; always finite.
_REAL_RANGES = {
    "lr": (0.0, math.inf),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, math.inf),
    "lighting_std": (0.0, math.inf),
}
_OPEN_LOW = ("lr", "warmup_lr", "lr_decay_at")


def _integer(key, value, minimum):
    """`value` as an int >= minimum (numpy ints welcome, `specs.integer`); raises otherwise."""
    number = specs.integer(value)
    if number is None or number < minimum:
        raise ValueError(f"`{key}` must be an int >= {minimum}. Received {key}={value!r}.")
    return number


def _real(key, value, low, high):
    """`value` as a finite float in the field's range; raises otherwise."""
    try:
        number = float(value) if not isinstance(value, (bool, str)) else None
    except (TypeError, ValueError):
        number = None
    if number is not None and math.isfinite(number):
        above = number > low if key in _OPEN_LOW else number >= low
        if above and number < high:
            return number
    interval = f"{'(' if key in _OPEN_LOW else '['}{low}, {high})"
    raise ValueError(
        f"`{key}` must be a finite number in {interval}. Received {key}={value!r}."
    )


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def register(function):
    """Registers a recipe function under its name; keeps its docstring."""
    recipe = function()
    if recipe.name in _REGISTRY:
        raise ValueError(f"Recipe {recipe.name!r} is registered twice.")
    _REGISTRY[recipe.name] = (recipe, function.__doc__)
    return function


def alias(name, of, note):
    """Registers `name` as another name of recipe `of`: the same fields, one definition.

    `get(name)` is `of`'s recipe under the name `name` (the name a run's
    config.json records, so runs made under either name keep resuming).
    """
    if name in _REGISTRY:
        raise ValueError(f"Recipe {name!r} is registered twice.")
    recipe, doc = _REGISTRY[of]
    doc = doc.strip().replace(f"--recipe={of} ", f"--recipe={name} ")
    _REGISTRY[name] = (dataclasses.replace(recipe, name=name), f"{note}\n\n    {doc}\n")


def names():
    """All registered recipe names, sorted."""
    return sorted(_REGISTRY)


def get(name):
    """The registered recipe `name`.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown recipe {name!r}. Valid recipes: {', '.join(names())}.")
    return _REGISTRY[name][0]


def describe(name):
    """The docstring of recipe `name`: departures from the paper and its command."""
    get(name)
    return _REGISTRY[name][1]


def override(recipe, assignments):
    """Returns `recipe` with `key=value` assignments applied.

    Values are parsed to the field's type: ints, floats, booleans
    (true/false/1/0), strings, "none" for optional fields, and
    comma-separated tuples (e.g. `lr_decay_at=0.5,0.75`).

    Args:
        recipe: a `Recipe`.
        assignments: iterable of "key=value" strings.

    Raises:
        ValueError: for a malformed assignment, an unknown key (listing the
            valid keys) or a value that does not parse.
    """
    hints = typing.get_type_hints(Recipe)
    valid = [f.name for f in dataclasses.fields(Recipe) if f.name != "name"]
    changes = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(
                f"An override must look like key=value. Received {assignment!r}."
            )
        if key not in valid:
            raise ValueError(
                f"Unknown recipe key {key!r} in {assignment!r}. Valid keys: {', '.join(valid)}."
            )
        changes[key] = _parse(key, text.strip(), hints[key])
    return dataclasses.replace(recipe, **changes)


def _parse(key, text, hint):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if text.lower() == "none":
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if origin is tuple:
            return tuple(_parse(key, t.strip(), args[0]) for t in text.split(",") if t.strip())
        if hint is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        return text
    except ValueError:
        raise ValueError(
            f"Recipe key {key!r} takes a {getattr(hint, '__name__', hint)}. Received {text!r}."
        ) from None


# --- CIFAR-10, Sec. 4.2 -----------------------------------------------------

_CIFAR_DOC = """CIFAR-10 {kind}-{depth} (Sec. 4.2, Table 6, Fig. 6).

    Batch 128, SGD momentum 0.9, coupled weight decay 1e-4 (L2(5e-5) on
    kernels via `keras_resnet.ResNet(weight_decay=1e-4)`), lr 0.1 divided
    by 10 at 32k and 48k steps, 64k steps; 45k/5k train/val split; pad 4,
    random 32x32 crop, horizontal flip; per-pixel mean of the 45k training
    images subtracted inside the model.{warmup}

    Departures: Keras SGD applies momentum to lr*grad (PyTorch applies lr
    after momentum): identical except for a few steps after an lr drop.
    Padding is applied to raw pixels (value 0) before the mean is
    subtracted. The lr boundaries are fractions (0.5, 0.75) of `steps`,
    so `--steps` shortens the schedule proportionally.

    Command:
        python -m zoo.train --recipe={name} --workdir=DIR --dataset=tfds:cifar10
    """

_WARMUP_DOC = """
    Warm-up: lr 0.01 for the first 400 steps, then 0.1. The paper warms up
    "until the training error is below 80% (about 400 iterations)"; this
    recipe uses the fixed 400 steps instead of watching the error."""


def _cifar(depth, plain=False):
    kind = "plain" if plain else "resnet"
    name = f"cifar10_{kind}{depth}"
    deep = depth >= 110
    # n = 18 (110 layers) and n = 200 (1202) need the warm-up, Sec. 4.2.
    recipe = Recipe(
        name=name,
        family=CIFAR,
        depth=depth,
        plain=plain,
        warmup_lr=0.01 if deep else None,
        warmup_steps=400 if deep else 0,
    )

    def function():
        return recipe

    function.__doc__ = _CIFAR_DOC.format(
        kind="plain" if plain else "ResNet",
        depth=depth,
        name=name,
        warmup=_WARMUP_DOC if deep else "",
    )
    return function


for _depth in (20, 32, 44, 56, 110, 1202):
    register(_cifar(_depth))
for _depth in (20, 32, 44, 56, 110):
    register(_cifar(_depth, plain=True))


# --- ImageNet, Sec. 3.4 ------------------------------------------------------

_IMAGENET_DOC = """ImageNet {title} (Sec. 3.4, Table {table}).

    Batch 256, SGD momentum 0.9, coupled weight decay 1e-4, lr 0.1,
    60x10^4 steps; shorter side resized to U[256, 480], random 224 crop,
    horizontal flip, per-pixel mean subtraction (inside the model), PCA
    lighting noise with std 0.1 (AlexNet's colour augmentation).
    Shortcut: {shortcut}.

    Departures: the paper divides the lr by 10 "when the error plateaus";
    this recipe divides it at fixed fractions 0.25/0.5/0.75 of the 600k
    steps (epochs 30/60/90 of 120, the usual reading of that schedule).
    The per-pixel mean is estimated on the first 10,000 training images
    (centre crops) rather than all 1.28M. Checkpoints every 5,000 steps.

    Command:
        python -m zoo.train --recipe={name} --workdir=DIR \\
            --dataset=tfds:imagenet2012 --data_dir=DIR_WITH_MANUAL_DOWNLOAD
    """


def _imagenet(depth, plain=False, shortcut=None, suffix="", table="1, 2"):
    kind = "plain" if plain else "resnet"
    name = f"imagenet_{kind}{depth}{suffix}"
    if not plain and shortcut is None:
        # Table 2 compares plain-18/34 with option-A ResNets (no extra
        # parameters); the bottleneck nets (Table 3/4) use option B.
        shortcut = "A" if depth in (18, 34) else "B"
    recipe = Recipe(
        name=name,
        family=IMAGENET,
        depth=depth,
        plain=plain,
        shortcut=shortcut,
        dataset="tfds:imagenet2012",
        classes=1000,
        image_size=224,
        batch_size=256,
        steps=600000,
        lr_decay_at=(0.25, 0.5, 0.75),
        epoch_steps=5000,
        lighting_std=0.1,
    )

    def function():
        return recipe

    title = f"plain-{depth}" if plain else f"ResNet-{depth}"
    function.__doc__ = _IMAGENET_DOC.format(
        title=title,
        table=table,
        shortcut="none (plain net)" if plain else shortcut,
        name=name,
    )
    return function


for _depth in (18, 34, 50, 101, 152):
    register(_imagenet(_depth))
for _depth in (18, 34):
    register(_imagenet(_depth, plain=True))
# Table 3: ResNet-34 with shortcut options A, B and C. Option A is the
# ResNet-34 of Tables 1 and 2, field for field.
alias("imagenet_resnet34_a", "imagenet_resnet34",
      "ImageNet ResNet-34 with option-A shortcuts (Table 3): imagenet_resnet34 under another name.")
for _option in ("B", "C"):
    register(_imagenet(34, shortcut=_option, suffix=f"_{_option.lower()}", table="3"))
