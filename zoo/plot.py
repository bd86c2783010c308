"""Error curves of several runs in the style of the paper's Fig. 6.

    python -m zoo.plot /tmp/plain20 /tmp/plain56 /tmp/r20 /tmp/r56 --out=fig6.png

Thin lines: training error (the running error of each epoch, on augmented
batches). Bold lines: held-out error (the run's val split, measured at the
end of each epoch). Plain nets go to the left panel and ResNets to the
right, as in Fig. 6; with only one kind, one panel. A group of seeds
(`zoo.train --seeds`) is drawn as the mean over its seeds, with a band from
the lowest to the highest seed at each point.
"""

import pathlib

from absl import flags

from zoo import cli
from zoo import datasets
from zoo import files
from zoo import run as run_lib

FLAGS = flags.FLAGS


def load_run(workdir):
    """One workdir's curves: a dict of label, plain, steps, train_error and
    val_error (%, val_error None where not measured), and for a group of
    seeds the bands: train_band and val_band, (lowest, highest) per point.

    Raises:
        zoo.run.MissingRunFile: the directory holds no history.csv (nor a
            group of runs that do); a ValueError, as an empty one raises.
    """
    workdir = run_lib.directory(workdir)
    if run_lib.is_group(workdir):
        return _load_group(workdir)
    label, plain, steps, train_error, val_error = _load_single(workdir)
    return {"label": label, "plain": plain, "steps": steps, "train_error": train_error,
            "val_error": val_error, "train_band": None, "val_band": None}


def _load_single(workdir):
    from zoo import history  # Imports Keras: not at start-up (see cli.run).

    rows = history.read(workdir / run_lib.HISTORY)
    if not rows:
        # A missing file is the run module's one exception type (a ValueError too).
        error = ValueError if (workdir / run_lib.HISTORY).exists() else run_lib.MissingRunFile
        raise error(f"{workdir} has no {run_lib.HISTORY} with rows: is it a zoo.train workdir?")
    config_path = workdir / run_lib.CONFIG
    recipe = {}
    if config_path.exists():
        config = files.read_json(config_path, "the run's config", "It is written when the run starts.")
        recipe = config.get("recipe", {}) if isinstance(config, dict) else {}
    label = recipe.get("name", workdir.name)
    steps = [r["step"] for r in rows]
    train_error = [100 * (1 - r["accuracy"]) for r in rows]
    val_error = [100 * (1 - r["val_accuracy"]) if "val_accuracy" in r else None for r in rows]
    return label, bool(recipe.get("plain", False)), steps, train_error, val_error


def _load_group(workdir):
    members = sorted(
        (p for p in workdir.glob(f"{run_lib.REPLICA_PREFIX}*") if (p / run_lib.HISTORY).exists()),
        key=lambda p: p.name,
    )
    curves = []
    for member in members:
        try:
            curves.append(_load_single(member))
        except ValueError:
            continue  # A replica with no epoch yet.
    if not curves:
        raise ValueError(
            f"{workdir} is a group of seeds, but none of its {run_lib.REPLICA_PREFIX}k runs has a history yet."
        )
    points = min(len(c[2]) for c in curves)  # Replicas of one group share their steps.
    label, plain, steps = curves[0][0], curves[0][1], curves[0][2][:points]
    band = {}
    for name, index in (("train", 3), ("val", 4)):
        columns = list(zip(*(c[index][:points] for c in curves)))
        if any(v is None for column in columns for v in column):
            band[name] = (None, [None] * points)
            continue
        mean = [sum(column) / len(column) for column in columns]
        band[name] = ((min(c) for c in columns), mean, (max(c) for c in columns))
    result = {"label": f"{label} ({len(curves)} seeds)", "plain": plain, "steps": steps}
    for name in ("train", "val"):
        if band[name][0] is None:
            result[f"{name}_error"], result[f"{name}_band"] = band[name][1], None
        else:
            low, mean, high = band[name]
            result[f"{name}_error"], result[f"{name}_band"] = mean, (list(low), list(high))
    return result


def plot(workdirs, out):
    """Draws the runs' error curves into `out`; returns the path written.

    `out` without a suffix gets ".png" (what matplotlib would add); another
    suffix picks that format (.pdf, .svg, ...), if matplotlib writes it.

    Raises:
        ValueError: a suffix matplotlib cannot write, naming those it can.
    """
    matplotlib = datasets.require("matplotlib", "matplotlib", "zoo.plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = pathlib.Path(cli.expand(out))
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if out.suffix[1:].lower() not in formats:
        raise ValueError(
            f"--out={out} has the suffix {out.suffix!r}, which matplotlib cannot write. Give one "
            f"of {', '.join('.' + f for f in sorted(formats))} (or none, for .png)."
        )
    out = cli.output_file(out, "--out")
    runs = [load_run(w) for w in workdirs]
    groups = [g for g in (True, False) if any(r["plain"] == g for r in runs)]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, plain in zip(axes[0], groups):
        for i, run in enumerate(runs):
            if run["plain"] != plain:
                continue
            color = f"C{i % 10}"
            iters = [s / 1e4 for s in run["steps"]]
            ax.plot(iters, run["train_error"], color=color, linewidth=0.8, linestyle="--")
            if run["train_band"]:
                ax.fill_between(iters, *run["train_band"], color=color, alpha=0.1, linewidth=0)
            if any(v is not None for v in run["val_error"]):
                ax.plot(iters, run["val_error"], color=color, linewidth=2.2, label=run["label"])
                if run["val_band"]:
                    ax.fill_between(iters, *run["val_band"], color=color, alpha=0.25, linewidth=0)
            else:
                ax.plot([], [], color=color, linewidth=2.2, label=run["label"])
        ax.set_title("plain" if plain else "ResNet")
        ax.set_xlabel("iter. (1e4)")
        ax.set_ylabel("error (%)")
        ax.grid(alpha=0.3)
        ax.legend(title="bold: val, dashed: train")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv):
    if len(argv) < 2:
        cli.fail("Give one or more zoo.train workdirs: python -m zoo.plot DIR... --out=F.png", "zoo.plot")
    try:
        path = plot(argv[1:], FLAGS.out)
    except (ValueError, ImportError) as error:
        cli.fail(str(error), "zoo.plot")
    except OSError as error:
        cli.fail(cli.os_error(error))
    print(f"wrote {path}")


def define_flags():
    """Defines the command-line flags (only when run as a program)."""
    flags.DEFINE_string("out", "errors.png", "Output image: PNG (also without a suffix), or .pdf, .svg, ...")


if __name__ == "__main__":
    define_flags()
    cli.run(main, "zoo.plot")
