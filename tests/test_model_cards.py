"""Model cards (keras_resnet.model_cards): generated from the registry (the site's
page too, when it is built: tests/test_docs.py), so the page cannot drift from it; the architecture arithmetic against built nets;
and `python -m keras_resnet.model_cards` (`keras-resnet presets`)."""

import csv
import io
import json
import pathlib
import re
import runpy
import sys

import pytest

import keras_resnet
from keras_resnet import model_cards
from keras_resnet import presets
from keras_resnet import specs

from helpers_presets import isolated  # noqa: F401 (autouse: the registry is restored after each test)

def _page_rows():
    """The page's overview table, read back as {(preset, depth): {column: cell}}."""
    lines = [line for line in model_cards.page().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        row = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|"))))
        rows[(row["preset"].strip("`"), int(row["depth"]))] = row
    return rows


def test_the_page_has_a_row_per_builtin_preset_and_depth_with_its_figures():
    rows = _page_rows()
    assert set(rows) == {(name, depth) for name, entries in presets.BUILTIN.items() for depth in entries}
    for (name, depth), row in rows.items():
        preset = presets.BUILTIN[name][depth]
        errors = preset.test_error or {}
        for column, test_set in (("error, 846 originals", presets.ORIGINAL_HEAD),
                                 ("error, JPEG copy", presets.JPEG_COPY)):
            if errors.get(test_set) is not None:
                assert row[column] == f"{errors[test_set]:.2f}%"
            else:  # Never a number that was not measured.
                assert row[column] == ("n/a (ImageNet)" if preset.family == "imagenet" else "not measured")
        published = errors.get(presets.PUBLISHED)
        if published is None and preset.top1 is not None:
            published = 100 * (1 - preset.top1)
        assert row["error, published"] == ("none published" if published is None else f"{published:.2f}%")
        assert row["licence"] == preset.license
        assert row["classes"] == f"{preset.class_names.title} ({preset.classes})"
        shipped = preset.path is not None
        assert row["weights"].startswith("shipped" if shipped else "download")
        if shipped:
            assert row["weights"] == f"shipped, {pathlib.Path(preset.path).stat().st_size / 1e6:.2f} MB"
        elif preset.file_size is None:
            assert row["weights"] == "download, size not known"
    # The figures the README's CIFAR-10 table gives, read here from the page.
    assert rows[("akamaster_cifar10", 20)]["error, 846 originals"] == "8.16%"
    assert rows[("keras_applications_imagenet", 50)]["error, published"] == "25.10%"
    assert rows[("akamaster_cifar10", 1202)]["params"] == "19.5M"


@pytest.mark.parametrize("depth, kwargs, shortcut", [
    (8, {"shortcut": "C"}, "C"),
    (8, {"plain": True}, None),
    (20, {}, "A"),
    (14, {"shortcut": "B"}, "B"),
    (18, {}, "B"),
    (50, {}, "B"),
    (50, {"variant": "v1.5"}, "B"),
])
def test_architecture_counts_are_the_built_nets(depth, kwargs, shortcut):
    model = keras_resnet.ResNet(depth, **kwargs)
    counted = model_cards.architecture_counts(specs.get_spec(depth), shortcut, kwargs.get("variant", "v1"))
    assert counted == (model.count_params(), keras_resnet.count_flops(model))


def test_cards_show_registered_presets_and_what_is_not_known(tmp_path):
    path = tmp_path / "r8.weights.h5"
    keras_resnet.ResNet(8, classes=3).save_weights(str(path))
    keras_resnet.register_preset("mine", path, depth=8, classes=3, top1=0.75, accuracy_source="my val split")
    (card,) = model_cards.cards(["mine"])
    assert (card.delivery, card.file_size) == ("local file", path.stat().st_size)
    assert (card.error_published, card.published_on) == (25.0, "my val split")
    assert (card.license, card.source, card.class_list) == (None, None, None)
    assert card.parameters == keras_resnet.ResNet(8, classes=3).count_params()
    assert "mine" in {c.preset for c in model_cards.cards()}
    assert "mine" not in {c.preset for c in model_cards.builtin_cards()}
    row = model_cards.render([card], "table").splitlines()[1]
    assert row.split()[:2] == ["mine", "8"] and "not known" in row and "25.00%" in row
    with pytest.raises(ValueError, match=r"Unknown presets \['cifar10'\]"):
        model_cards.cards(["cifar10"])


def run(argv, capsys):
    """main(argv): (exit status, stdout, stderr)."""
    try:
        status = model_cards.main(argv)
    except SystemExit as exit:
        status = exit.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_command_formats(capsys, tmp_path):
    status, out, _ = run([], capsys)
    assert status == 0
    assert out.splitlines()[0].split()[:5] == ["preset", "depth", "aliases", "source", "licence"]
    assert len(out.splitlines()) == 1 + len(model_cards.cards())
    status, out, _ = run(["--format=json", "--preset=akamaster_cifar10"], capsys)
    records = json.loads(out)
    assert status == 0 and [r["depth"] for r in records] == [20, 32, 44, 56, 110, 1202]
    assert records[0]["error_original_head"] == 8.16 and records[0]["aliases"] == ["cifar10"]
    assert records[-1]["error_jpeg_copy"] is None
    status, out, _ = run(["--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["preset"], int(r["depth"])) for r in rows] == [(c.preset, c.depth) for c in model_cards.cards()]
    status, out, _ = run(["--format=markdown", "--preset=zoo_cifar10"], capsys)
    assert out.splitlines()[2].startswith("| `zoo_cifar10` | 20 |")
    target = tmp_path / "docs" / "model-cards.md"
    status, out, _ = run(["--format=page", f"--output={target}"], capsys)
    assert status == 0 and target.read_text() == model_cards.page()


def test_command_runs_as_a_module(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["model_cards", "--format=csv", "--preset=zoo_cifar10"])
    monkeypatch.delitem(sys.modules, "keras_resnet.model_cards")  # run afresh, as `python -m` does
    with pytest.raises(SystemExit) as exit:
        runpy.run_module("keras_resnet.model_cards", run_name="__main__")
    assert exit.value.code == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("zoo_cifar10,20,")


@pytest.mark.parametrize("argv, message", [
    (["--format=xml"], "argument --format: invalid choice: 'xml'"),
    (["--colour"], "unrecognized arguments: --colour"),
    (["--preset=nope"], "unknown preset nope. Presets: akamaster_cifar10,"),
    (["--preset=cifar10"], r"unknown preset cifar10 \(cifar10: an alias; name the preset it loads\)"),
    (["--format=page", "--preset=zoo_cifar10"], "--preset and --format=page do not go together"),
])
def test_command_bad_flags_exit_2(argv, message, capsys):
    status, out, err = run(argv, capsys)
    assert status == 2 and out == ""
    assert re.search(message, err), err


def test_command_help_exits_0(capsys):
    status, out, _ = run(["--help"], capsys)
    assert status == 0 and "--format {table,markdown,json,csv,page}" in out
