"""Model cards: what each preset is and how well it does, from the registry.

    keras_resnet.model_cards.cards()     # one ModelCard per preset and depth
    keras_resnet.model_cards.page()      # the documentation's model-card page, as text

    python -m keras_resnet.model_cards                  # a table in the terminal
    python -m keras_resnet.model_cards --format=json    # or markdown, csv
    python -m keras_resnet.model_cards --format=page --output=model-cards.md

The command (`keras-resnet presets` once installed) lists every preset with
its depths, source, licence and recorded test errors; `--format=page`
writes the documentation's model-card page, which is generated, never
edited by hand.

Nothing here is typed in twice. Sources, licences, training data,
preprocessing, class names and test errors are the registry's
(`keras_resnet.presets` for the built-in presets, `register_preset` for
yours). Parameters and FLOPs are computed from the architecture tables
(`keras_resnet.specs`) by the arithmetic of `keras_resnet.blocks`, at the
family's input size (32x32 CIFAR, 224x224 ImageNet), without building the
nets (ResNet-1202 takes 18 s to build); tests/test_model_cards.py checks
that arithmetic against `model.count_params()` and
`keras_resnet.count_flops(model)`. A shipped or local file's size is read
from the file. Where a figure is not known here the card holds None and
the page says so in words: ImageNet presets are not measured here (no
ImageNet images on these machines, and the 846 original and JPEG CIFAR-10
test images are not theirs), files downloaded on first use have the size
their publisher gives, if any.
"""

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import sys

from keras_resnet import atomic
from keras_resnet import presets as presets_lib
from keras_resnet import registry
from keras_resnet import specs
from keras_resnet import weight_files

FORMATS = ("table", "markdown", "json", "csv", "page")
SHIPPED, DOWNLOAD, LOCAL = "shipped", "download", "local file"
NOT_APPLICABLE = "n/a (ImageNet)"
NOT_MEASURED = "not measured"
NOT_KNOWN = "not known"
PAGE_COMMAND = "python -m keras_resnet.model_cards --format=page"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """One preset at one depth.

    Attributes:
        preset, depth: `ResNet(depth, weights=preset)` loads it.
        aliases: the aliases that load it at this depth ("cifar10", ...).
        family, variant, shortcut: the architecture it fits.
        source, license, training_data: who published it, under which
            licence (SPDX id), trained on what; None where not recorded.
        preprocessing: what the weights expect of raw 0..255 RGB pixels.
        classes: how many classes its classifier has.
        class_list: which class names the preset records ("CIFAR-10",
            "ImageNet-1k", a registered preset's own), or None.
        error_original_head, error_jpeg_copy: top-1 error (%) measured here
            on the first 846 original CIFAR-10 test images and on the
            10,000 test images of the JPEG q75 copy; None where not measured.
        error_published: the publisher's top-1 error (%); None where none.
        published_on: what the publisher measured it on.
        parameters: `model.count_params()` of the net with its classifier.
        flops: `keras_resnet.count_flops(model)`: multiply-adds of one image
            at the family's input size.
        file_size: bytes of the weights file; None where not known.
        delivery: "shipped" in the package, "download" on first use, or a
            registered "local file".
    """

    preset: str
    depth: int
    aliases: tuple
    family: str
    variant: str
    shortcut: str
    source: str
    license: str
    training_data: str
    preprocessing: str
    classes: int
    class_list: str
    error_original_head: float
    error_jpeg_copy: float
    error_published: float
    published_on: str
    parameters: int
    flops: int
    file_size: int
    delivery: str


def cards(names=None):
    """The model cards of presets `names` (default: every registered preset,
    yours included), one per depth, sorted by preset name and depth.

    Args:
        names: preset names (not aliases), or None for all.

    Returns:
        A list of `ModelCard`.

    Raises:
        ValueError: for a name that is not a registered preset.
    """
    names = sorted(registry.PRESETS) if names is None else list(names)
    unknown = [n for n in names if n not in registry.PRESETS]
    if unknown:
        raise ValueError(f"Unknown presets {unknown}. Presets: {sorted(registry.PRESETS)}.")
    return _cards_of({name: registry.PRESETS[name] for name in names}, registry.ALIASES)


def builtin_cards():
    """The cards of the built-in presets alone (`keras_resnet.presets`), as
    the package ships them: what the documentation's page shows."""
    return _cards_of(presets_lib.BUILTIN, presets_lib.ALIASES)


def _cards_of(table, aliases):
    """Cards of `table` (name -> {depth: Preset}), sorted by name and depth."""
    return [_card(table[name][depth], aliases) for name in sorted(table) for depth in sorted(table[name])]


def _card(preset, aliases):
    errors = preset.test_error or {}
    published = errors.get(presets_lib.PUBLISHED)
    published_on = presets_lib.TEST_SETS[presets_lib.PUBLISHED] if published is not None else None
    if published is None and preset.top1 is not None:
        published, published_on = round(100 * (1 - preset.top1), 3), preset.accuracy_source
    spec = specs.get_spec(preset.depth, preset.family)
    parameters, flops = architecture_counts(spec, preset.shortcut, preset.variant, preset.classes)
    delivery, size = _file(preset)
    return ModelCard(
        preset=preset.name, depth=preset.depth, aliases=_aliases(preset, aliases), family=preset.family,
        variant=preset.variant, shortcut=preset.shortcut, source=preset.source, license=preset.license,
        training_data=preset.training_data, preprocessing=_preprocessing(preset.preprocessing),
        classes=preset.classes,
        class_list=None if preset.class_names is None else preset.class_names.title,
        error_original_head=errors.get(presets_lib.ORIGINAL_HEAD),
        error_jpeg_copy=errors.get(presets_lib.JPEG_COPY),
        error_published=published, published_on=published_on,
        parameters=parameters, flops=flops, file_size=size, delivery=delivery,
    )


def _aliases(preset, aliases):
    return tuple(sorted(alias for alias, table in aliases.items() if table.get(preset.depth) == preset.name))


def _preprocessing(mode):
    """`mode` in words: its name and what it does to raw 0..255 RGB pixels."""
    if not isinstance(mode, str):
        return weight_files.describe_preprocessing(mode)
    if mode == "none":
        return "none: the net takes raw pixels"
    mean, std, bgr = presets_lib.preprocessing_parameters(mode)
    return f"{mode}: " + weight_files.describe_preprocessing({"mean": mean, "std": std, "bgr": bgr})


def _file(preset):
    """(delivery, size in bytes or None)."""
    if preset.path is None:
        return DOWNLOAD, preset.file_size
    shipped = os.path.dirname(preset.path) == presets_lib.WEIGHTS_DATA
    size = os.path.getsize(preset.path) if os.path.isfile(preset.path) else None
    return (SHIPPED if shipped else LOCAL), size


def architecture_counts(spec, shortcut, variant="v1", classes=None):
    """(parameters, multiply-adds) of `ResNet` with a classifier, from its spec.

    The arithmetic of the layers `keras_resnet.models` and `blocks` build
    (bias-free convs, each followed by a BN of 4 values per channel, the
    dense classifier with its bias), at the family's input size. Parameters
    are `model.count_params()` (BN's moving statistics included); FLOPs are
    what `keras_resnet.count_flops` counts: one multiply-add per kernel
    weight per output pixel of every conv and of the classifier.

    Args:
        spec: a `keras_resnet.specs.Spec`.
        shortcut: "A", "B", "C", or None for a plain net.
        variant: "v1" or "v1.5" (bottleneck stride placement).
        classes: the classifier's classes; default the family's.

    Returns:
        (parameters, flops), two ints.
    """
    tally = {"parameters": 0, "flops": 0}

    def conv_bn(size, inputs, outputs, kernel, stride):
        out = math.ceil(size / stride)  # symmetric padding or "same": ceil either way
        tally["parameters"] += kernel * kernel * inputs * outputs + 4 * outputs
        tally["flops"] += out * out * kernel * kernel * inputs * outputs
        return out

    defaults = specs.DEFAULTS[spec.family]
    size = defaults.size
    if spec.family == specs.IMAGENET:
        size, channels = math.ceil(conv_bn(size, 3, 64, 7, 2) / 2), 64  # stem, then 3x3/2 max-pool
    else:
        size, channels = conv_bn(size, 3, 16, 3, 1), 16
    for stage in spec.stages:
        for block in range(stage.blocks):
            stride = stage.stride if block == 0 else 1
            out_channels = stage.filters * spec.expansion
            if spec.block == specs.BASIC:
                conv_bn(conv_bn(size, channels, stage.filters, 3, stride), stage.filters, stage.filters, 3, 1)
            else:
                first, second = (stride, 1) if variant == "v1" else (1, stride)
                reduced = conv_bn(size, channels, stage.filters, 1, first)
                conv_bn(conv_bn(reduced, stage.filters, stage.filters, 3, second),
                        stage.filters, out_channels, 1, 1)
            changes = stride != 1 or channels != out_channels
            if shortcut == "C" or (shortcut == "B" and changes):
                conv_bn(size, channels, out_channels, 1, stride)
            size, channels = math.ceil(size / stride), out_channels
    classes = classes or defaults.classes
    tally["parameters"] += channels * classes + classes
    tally["flops"] += channels * classes
    return tally["parameters"], tally["flops"]


# Rendering: the words a page or terminal shows for each cell.

def _error(card, value, measured_here):
    if value is not None:
        return f"{value:.2f}%"
    if measured_here:
        return NOT_APPLICABLE if card.family == specs.IMAGENET else NOT_MEASURED
    return "none published"


def _size(card):
    if card.file_size is None:
        return f"size {NOT_KNOWN}"
    return f"{card.file_size / 1e6:.{2 if card.file_size < 1e7 else 1}f} MB"


def _count(value, unit):
    if unit == "M" or value < 1e9:
        return f"{value / 1e6:.{2 if value < 1e7 else 1}f}M"
    return f"{value / 1e9:.2f}G"


def _cells(card):
    """The overview table's cells for one card, by column title."""
    return {
        "preset": f"`{card.preset}`",
        "depth": str(card.depth),
        "aliases": ", ".join(f"`{a}`" for a in card.aliases) or "",
        "classes": f"{card.class_list or NOT_KNOWN} ({card.classes})",
        "error, 846 originals": _error(card, card.error_original_head, True),
        "error, JPEG copy": _error(card, card.error_jpeg_copy, True),
        "error, published": _error(card, card.error_published, False),
        "params": _count(card.parameters, "M"),
        "FLOPs": _count(card.flops, None),
        "weights": f"{card.delivery}, {_size(card)}",
        "licence": card.license or NOT_KNOWN,
    }


def markdown_table(rows):
    """`rows` (a list of {column: cell}) as a Markdown table."""
    columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c].replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(rows):
    """`rows` (a list of {column: cell}) aligned in columns for a terminal."""
    if not rows:
        return "no presets\n"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in columns).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def _terminal_rows(all_cards):
    rows = []
    for card in all_cards:
        cells = _cells(card)
        rows.append({
            "preset": card.preset, "depth": cells["depth"], "aliases": ", ".join(card.aliases),
            "source": card.source or NOT_KNOWN, "licence": cells["licence"],
            "error 846 orig.": cells["error, 846 originals"], "error JPEG": cells["error, JPEG copy"],
            "error published": cells["error, published"],
        })
    return rows


def _records(all_cards):
    return [dict(dataclasses.asdict(card), aliases=list(card.aliases)) for card in all_cards]


def to_csv(all_cards):
    """The cards as CSV, one row per card, every field (aliases space-separated)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in dataclasses.fields(ModelCard)], lineterminator="\n")
    writer.writeheader()
    for record in _records(all_cards):
        writer.writerow({k: " ".join(v) if k == "aliases" else ("" if v is None else v) for k, v in record.items()})
    return out.getvalue()


def _same_or_by_depth(group, field):
    """One value if every depth has it, else "depth 18: a; depth 34: b"."""
    values = [getattr(card, field) for card in group]
    words = [NOT_KNOWN if v is None else str(v) for v in values]
    if len(set(words)) == 1:
        return words[0]
    return "; ".join(f"depth {card.depth}: {word}" for card, word in zip(group, words))


def _preset_section(group):
    first = group[0]
    aliases = sorted({(alias, card.depth) for card in group for alias in card.aliases})
    alias_words = ", ".join(
        f"`{alias}` (depths {', '.join(str(d) for a, d in aliases if a == alias)})"
        for alias in sorted({a for a, _ in aliases})) or "none"
    lines = [
        f"### `{first.preset}`",
        "",
        f"- **Source:** {_same_or_by_depth(group, 'source')}",
        f"- **Licence:** {_same_or_by_depth(group, 'license')}",
        f"- **Training data:** {_same_or_by_depth(group, 'training_data')}",
        f"- **Preprocessing:** {_same_or_by_depth(group, 'preprocessing')} "
        f"(`include_preprocessing=True`, or `keras_resnet.preprocess_input(x, weights=\"{first.preset}\")`)",
        f"- **Classes:** {_same_or_by_depth(group, 'class_list')} ({_same_or_by_depth(group, 'classes')}); "
        f"`keras_resnet.decode_predictions(preds, classes=\"{first.preset}\")` names them",
        f"- **Architecture:** {first.family}, shortcut {_same_or_by_depth(group, 'shortcut')}, "
        f"variant {_same_or_by_depth(group, 'variant')}",
        f"- **Depths:** {', '.join(str(card.depth) for card in group)}; aliases: {alias_words}",
        f"- **Published figure:** {_same_or_by_depth(group, 'published_on').replace(NOT_KNOWN, 'none')}",
        "",
    ]
    return "\n".join(lines)


def page(all_cards=None):
    """The documentation's model-card page, as Markdown (docs/hooks.py makes it when the site is built).

    Args:
        all_cards: the cards to show; default `builtin_cards()`.

    Returns:
        The page's text.
    """
    all_cards = builtin_cards() if all_cards is None else all_cards
    groups = {}
    for card in all_cards:
        groups.setdefault(card.preset, []).append(card)
    intro = f"""<!-- Generated from the preset registry when the site is built (docs/hooks.py); `{PAGE_COMMAND}`
prints it. -->

# Model cards

Every preset that `keras_resnet.ResNet(depth, weights=NAME)` loads, one row per preset and depth; an alias
(`cifar10`, `imagenet`) loads the preset it stands beside. `python -m keras_resnet.model_cards` lists the
same from the installed package, your own registered presets included.

Test errors are top-1 errors, in percent:

- **846 originals:** {presets_lib.TEST_SETS[presets_lib.ORIGINAL_HEAD]}.
- **JPEG copy:** {presets_lib.TEST_SETS[presets_lib.JPEG_COPY]}.
- **published:** the publisher's own figure: on the original 10,000 CIFAR-10 test images, or, for ImageNet
  presets, on ImageNet's validation set (single 224x224 crop).

An ImageNet preset's published figure is 100 minus its published top-1 accuracy. ImageNet presets are not
measured here ("{NOT_APPLICABLE}"): these machines hold no ImageNet images, and the two CIFAR-10 test sets
are not theirs. The CIFAR-10 presets downloaded on first use are "{NOT_MEASURED}" here.

**params** is `model.count_params()` with the classifier, BN's moving statistics included (as
keras.applications counts; the paper counts trainable weights: 0.46M where ResNet-32 has 0.47M here).
**FLOPs** is `keras_resnet.count_flops(model)`: multiply-adds for one 32x32 (CIFAR) or 224x224 (ImageNet)
image. **weights**: shipped inside the package, or downloaded on first use (pinned by hash), with the
file's size ("size {NOT_KNOWN}" where its publisher gives none).

"""
    table = markdown_table([_cells(card) for card in all_cards])
    sections = "\n".join(_preset_section(group) for group in groups.values())
    return intro + table + "\n## The presets\n\n" + sections


def render(all_cards, format):
    """`all_cards` in one of `FORMATS`, as text."""
    if format == "table":
        return text_table(_terminal_rows(all_cards))
    if format == "markdown":
        return markdown_table([_cells(card) for card in all_cards])
    if format == "json":
        return json.dumps(_records(all_cards), indent=2) + "\n"
    if format == "csv":
        return to_csv(all_cards)
    if format == "page":
        return page(all_cards)
    raise ValueError(f"`format` must be one of {FORMATS}. Received format={format!r}.")


def main(argv=None):
    """`python -m keras_resnet.model_cards` (`keras-resnet presets`).

    Args:
        argv: the arguments, without the program name; default sys.argv[1:].

    Returns:
        The exit status, 0. Bad flags exit with status 2 and a message
        (argparse), as does an unknown `--preset`.
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_resnet.model_cards",
        description=(
            "Lists every preset of keras-resnet (ResNet(depth, weights=PRESET)) with its depths, source, "
            "licence and recorded test errors; --format=page writes the documentation's model-card page."
        ),
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table",
        help="table (for a terminal, the default), markdown (the cards' table), json or csv (every field "
             "of every card), or page (the documentation's model-card page: the built-in presets)")
    parser.add_argument("--preset", action="append", metavar="NAME",
                        help="only this preset (repeat for several); default all")
    parser.add_argument("--output", metavar="PATH", help="write to PATH instead of standard output")
    args = parser.parse_args(argv)
    if args.preset and args.format == "page":
        parser.error("--preset and --format=page do not go together: the page shows every built-in preset")
    unknown = sorted(set(args.preset or ()) - set(registry.PRESETS))
    if unknown:
        hint = [n for n in unknown if n in registry.ALIASES]
        parser.error(
            f"unknown preset {', '.join(unknown)}"
            + (f" ({', '.join(hint)}: an alias; name the preset it loads)" if hint else "")
            + f". Presets: {', '.join(sorted(registry.PRESETS))}")
    text = render(builtin_cards() if args.format == "page" else cards(args.preset), args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic.write_atomically(args.output, True, lambda tmp: _write_text(tmp, text))
        print(f"wrote {args.output}")
    return 0


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
