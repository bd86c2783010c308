"""benchmarks/predict_latency.py runs and writes what it promises. No timing asserts."""

import json

import pytest

from benchmarks import predict_latency


def test_predict_latency_harness_writes_json_and_a_table(tmp_path, capsys):
    out = tmp_path / "latency.json"
    report = predict_latency.main(["--models", "resnet8", "--image-size", "8", "--batches", "1,3",
                                   "--rounds", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert [(row["model"], row["batch"], row["rounds"]) for row in report["rows"]] == [("resnet8", 1, 2),
                                                                                       ("resnet8", 3, 2)]
    assert all(set(row["ms"]) == set(predict_latency.CALLS) and min(row["ms"].values()) > 0
               for row in report["rows"])
    printed = capsys.readouterr().out
    assert "| resnet8 | 8x8 | 3 | 2 |" in printed and report["cpu"] in printed


@pytest.mark.parametrize("argv, message", [
    (["--models", "vgg16"], "--models takes names like resnet20,resnet50"),
    (["--batches", "0"], "--batches must name integers >= 1"),
    (["--rounds", "0"], "--rounds must be >= 1"),
])
def test_predict_latency_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        predict_latency.parse_args(argv)
    assert message in capsys.readouterr().err
