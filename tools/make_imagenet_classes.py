"""Writes keras_resnet/labels_data/imagenet1k.tsv, the ImageNet-1k class list.

    python tools/make_imagenet_classes.py            # writes the file
    python tools/make_imagenet_classes.py --check    # exits 1 if the file differs

The class ids are the order every common ImageNet-1k checkpoint uses
(keras.applications, torchvision, timm, keras-hub): the 1,000 WordNet ids of
ILSVRC 2012 sorted, so 0 = n01440764 (tench) ... 999 = n15075141 (toilet
tissue). Two installed, independent sources give it, and this script checks
that they agree index by index before writing anything:

- the WordNet ids: tensorflow_datasets'
  `tensorflow_datasets/datasets/imagenet2012/labels.txt` (one id per line,
  in label order; Apache-2.0);
- the names: keras_hub's `keras_hub/src/utils/imagenet/imagenet_utils.py`,
  `IMAGENET_NAMES` (index -> (WordNet id, name); Apache-2.0), the names
  keras.applications' `decode_predictions` returns.

The file cites both, with the versions read, in its header.
"""

import argparse
import pathlib
import sys

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "keras_resnet" / "labels_data" / "imagenet1k.tsv"


def sources():
    """(WordNet ids, names, header lines) from the installed packages."""
    import importlib.resources

    import keras_hub
    import tensorflow_datasets
    from keras_hub.src.utils.imagenet import imagenet_utils

    labels = importlib.resources.files("tensorflow_datasets") / "datasets" / "imagenet2012" / "labels.txt"
    wnids = labels.read_text().split()
    table = imagenet_utils.IMAGENET_NAMES
    if len(wnids) != 1000 or sorted(table) != list(range(1000)):
        raise SystemExit(f"Expected 1000 classes; tfds has {len(wnids)}, keras_hub {len(table)}.")
    if wnids != sorted(wnids):
        raise SystemExit("tfds' labels.txt is not in sorted WordNet-id order.")
    differ = [i for i, wnid in enumerate(wnids) if table[i][0] != wnid]
    if differ:
        raise SystemExit(f"tfds and keras_hub disagree at class ids {differ[:10]}.")
    header = [
        "ImageNet-1k (ILSVRC 2012) classes: class id, WordNet id, name (tab-separated).",
        "Class ids are those of the keras.applications, torchvision, timm and keras-hub ImageNet",
        "weights: the WordNet ids sorted, 0 = n01440764 tench ... 999 = n15075141 toilet_tissue.",
        f"WordNet ids: tensorflow_datasets {tensorflow_datasets.__version__},",
        "  tensorflow_datasets/datasets/imagenet2012/labels.txt (Apache-2.0).",
        f"Names: keras_hub {keras_hub.__version__}, keras_hub/src/utils/imagenet/imagenet_utils.py,",
        "  IMAGENET_NAMES (Apache-2.0): the names keras.applications' decode_predictions returns.",
        "The two sources agree on the WordNet id of every class id. Written by",
        "tools/make_imagenet_classes.py; do not edit by hand.",
    ]
    return wnids, [table[i][1] for i in range(1000)], header


def render(wnids, names, header):
    lines = [f"# {line}" for line in header]
    lines += [f"{i}\t{wnid}\t{name}" for i, (wnid, name) in enumerate(zip(wnids, names))]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the sources")
    args = parser.parse_args(argv)
    text = render(*sources())
    if args.check:
        same = OUTPUT.is_file() and OUTPUT.read_text() == text
        print(f"{OUTPUT}: {'up to date' if same else 'differs from the sources'}")
        return 0 if same else 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
