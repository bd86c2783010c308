"""The class lists presets carry: which class each output of a classifier is.

    CIFAR10       the 10 CIFAR-10 classes, airplane ... truck, in the label
                  order of the dataset's release (its batches.meta
                  label_names, https://www.cs.toronto.edu/~kriz/cifar.html),
                  which tfds and torchvision keep and the presets were
                  trained with; alphabetical, as the folders of the JPEG copy.
    IMAGENET_1K   the 1,000 ImageNet-1k classes: WordNet id and name, in the
                  order of the keras.applications, torchvision, timm and
                  keras-hub weights (0 = n01440764 tench ... 999 = n15075141
                  toilet_tissue). Package data, labels_data/imagenet1k.tsv,
                  whose header cites its sources; read on first use.

`Preset.class_names` is one of these, or a list registered with a preset
(`register_preset(class_names=...)`, checked by `class_list`). Reading
predictions as classes is `keras_resnet.labels` (`decode_predictions`); this
module is the data under it and under the preset registry.
"""

import collections
import collections.abc
import functools
import os

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "labels_data")


class ClassList(collections.abc.Sequence):
    """The class names of a classifier, index = class id; optionally ids too.

    A sequence of names (`len`, indexing, iteration, `list(...)`), plus:

    Attributes:
        key: a short name ("cifar10", "imagenet1k"; a preset's name for a
            list registered with it).
        title: what to call it in text ("CIFAR-10").
        ids: a tuple of identifiers by class id (WordNet ids for
            ImageNet-1k), or None: then a class's id is its index.
        source: where the names come from.
    """

    def __init__(self, key, names=None, *, title=None, ids=None, source=None, loader=None):
        """Args:
            key: see Attributes.
            names: the names, by class id; or None with `loader`.
            title, ids, source: see Attributes.
            loader: called once, on first use, for (ids, names) instead.
        """
        self.key, self.title, self.source = key, title or key, source
        self._loader = loader
        if loader is None:  # Filled now, where `_table` would cache the loader's answer.
            self.__dict__["_table"] = (None if ids is None else tuple(ids), tuple(names))

    @functools.cached_property
    def _table(self):
        ids, names = self._loader()
        return tuple(ids), tuple(names)

    @property
    def names(self):
        """The names, a tuple by class id."""
        return self._table[1]

    @property
    def ids(self):
        """The ids, a tuple by class id, or None (the index is the id)."""
        return self._table[0]

    def class_id(self, index):
        """The id of class `index`: its WordNet id (ImageNet-1k) or `index`."""
        return int(index) if self.ids is None else self.ids[index]

    def distinct_names(self):
        """The names, where a name that several classes share is followed by
        the class's id: ImageNet-1k's two "crane" (bird, machine) and two
        "maillot" classes become "crane (n02012849)", ... A SavedModel's
        `top_k_names` needs one name per class."""
        counts = collections.Counter(self.names)
        return [f"{name} ({self.class_id(i)})" if counts[name] > 1 else name
                for i, name in enumerate(self.names)]

    def __getitem__(self, index):
        return self.names[index]

    def __len__(self):
        return len(self.names)

    def __eq__(self, other):
        if not isinstance(other, ClassList):
            return NotImplemented
        return self.key == other.key and self._table == other._table

    def __hash__(self):
        return hash((self.key, len(self)))

    def __repr__(self):
        return f"ClassList({self.key!r}, {len(self)} classes)"


def _read_imagenet():
    """(WordNet ids, names) from labels_data/imagenet1k.tsv, checked."""
    path = os.path.join(DATA, "imagenet1k.tsv")
    try:
        with open(path, encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    except OSError as error:
        raise ValueError(
            f"Cannot read the ImageNet-1k class names {path!r} ({error}): was keras-resnet "
            "installed without its package data? Reinstall it."
        ) from None
    if len(rows) != 1000 or any(len(r) != 3 or r[0] != str(i) for i, r in enumerate(rows)):
        raise ValueError(f"{path!r} is damaged: it must hold 1000 rows 'id<TAB>wnid<TAB>name', ids 0..999.")
    return [r[1] for r in rows], [r[2] for r in rows]


CIFAR10 = ClassList(
    "cifar10",
    ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    title="CIFAR-10",
    source="CIFAR-10's batches.meta label_names (Krizhevsky, 2009)",
)
IMAGENET_1K = ClassList(
    "imagenet1k",
    title="ImageNet-1k",
    source="keras_resnet/labels_data/imagenet1k.tsv (tfds' WordNet ids, keras_hub's names)",
    loader=_read_imagenet,
)
CLASS_LISTS = {CIFAR10.key: CIFAR10, IMAGENET_1K.key: IMAGENET_1K}


def class_list(class_names, key="custom"):
    """`class_names` as a `ClassList`: a `CLASS_LISTS` key, a `ClassList`,
    or a list (tuple, 1-d array) of distinct non-empty strings by class id.

    Args:
        class_names: see above.
        key: the `ClassList.key` a list of strings gets.

    Returns:
        A `ClassList`.

    Raises:
        ValueError: naming what was received and what is valid.
    """
    if isinstance(class_names, ClassList):
        return class_names
    if isinstance(class_names, str):
        if class_names in CLASS_LISTS:
            return CLASS_LISTS[class_names]
        raise ValueError(
            f"Class names must be a class list's name {sorted(CLASS_LISTS)} or a list of names. "
            f"Received {class_names!r}."
        )
    expected = "Class names must be a list of distinct non-empty strings, index = class id"
    if isinstance(class_names, np.ndarray):
        class_names = class_names.tolist() if class_names.ndim == 1 else class_names
    if isinstance(class_names, (bytes, np.ndarray)) or not isinstance(class_names, collections.abc.Sequence):
        raise ValueError(f"{expected}. Received a {type(class_names).__name__}: {class_names!r:.200}.")
    names = list(class_names)
    bad = [n for n in names if not isinstance(n, str) or not n]
    counts = collections.Counter(n for n in names if isinstance(n, str))
    repeated = sorted(n for n, count in counts.items() if count > 1)
    if not names or bad or repeated:
        problem = ("none" if not names else f"{bad[:3]!r} among them" if bad
                   else f"{repeated[:5]!r} more than once")
        raise ValueError(f"{expected}. Received {len(names)} entries, {problem}.")
    return ClassList(key, names)
