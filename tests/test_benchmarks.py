"""The benchmark harnesses run and write what they promise. No timing asserts."""

import json

import keras
import pytest

from benchmarks import build_time
from benchmarks import throughput


def test_throughput_harness_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "r.json"
    table = tmp_path / "r.md"
    report = throughput.main([
        "--model", "resnet8", "--batch", "4", "--repeats", "2", "--steps", "1",
        "--latency-calls", "2", "--compare", "none", "--backend", keras.backend.backend(),
        "--json", str(out), "--markdown", str(table),
    ])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(report))
    ours = saved["results"]["ours"]
    assert set(ours) >= {"images_per_s", "images_per_s_runs", "latency_ms_batch1", "build_s", "params"}
    assert len(ours["images_per_s_runs"]) == 2 and ours["images_per_s"] > 0
    assert saved["image_size"] == 32 and saved["backend"] == keras.backend.backend()
    assert "| ours |" in table.read_text()
    assert "| ours |" in capsys.readouterr().out


def test_throughput_skips_a_peer_without_the_depth(tmp_path):
    report = throughput.main([
        "--model", "resnet18", "--image-size", "32", "--batch", "2", "--repeats", "1",
        "--steps", "1", "--latency-calls", "1", "--compare", "keras_applications",
        "--mode", "infer", "--backend", keras.backend.backend(),
    ])
    assert report["skipped"] == {"keras_applications": "keras.applications has no ResNet-18"}
    assert report["ratios_ours_over_peer"] == {}


@pytest.mark.parametrize("argv, message", [
    (["--model", "vgg16"], "--model must look like resnet<depth>"),
    (["--compare", "timm"], "--compare takes peers from"),
    (["--batch", "0"], "--batch must be >= 1"),
])
def test_throughput_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        throughput.parse_args(argv)
    assert message in capsys.readouterr().err


def test_build_time_writes_its_fields(tmp_path):
    out = tmp_path / "b.json"
    report = build_time.main(["--repeats", "1", "--skip-1202", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(report))
    assert set(saved["build_s"]) == {
        "resnet152_ours", "resnet152_keras_applications", "ratio_theirs_over_ours"
    }
    assert all(v > 0 for v in saved["build_s"].values())


@pytest.mark.parametrize("argv, message", [
    (["--repeats", "0"], "--repeats must be >= 1. Received 0."),
    (["--repeats-1202", "-1"], "--repeats-1202 must be >= 1. Received -1."),
])
def test_build_time_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        build_time.main(argv)
    assert message in capsys.readouterr().err
