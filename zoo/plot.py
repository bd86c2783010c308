"""Error curves of several runs in the style of the paper's Fig. 6.

    python -m zoo.plot /tmp/plain20 /tmp/plain56 /tmp/r20 /tmp/r56 --out=fig6.png

Thin lines: training error (the running error of each epoch, on augmented
batches). Bold lines: held-out error (the run's val split, measured at the
end of each epoch). Plain nets go to the left panel and ResNets to the
right, as in Fig. 6; with only one kind, one panel.
"""

import pathlib

from absl import flags

from zoo import cli
from zoo import datasets

FLAGS = flags.FLAGS


def load_run(workdir):
    """(label, plain, steps, train_error %, val_error %) of one workdir.

    Raises:
        ValueError: if the directory holds no history.csv.
    """
    from zoo import history  # Imports Keras: not at start-up (see cli.run).

    workdir = pathlib.Path(cli.expand(workdir))
    rows = history.read(workdir / "history.csv")
    if not rows:
        raise ValueError(f"{workdir} has no history.csv with rows: is it a zoo.train workdir?")
    config_path = workdir / "config.json"
    recipe = {}
    if config_path.exists():
        config = history.read_json(config_path, "the run's config", "It is written when the run starts.")
        recipe = config.get("recipe", {}) if isinstance(config, dict) else {}
    label = recipe.get("name", workdir.name)
    steps = [r["step"] for r in rows]
    train_error = [100 * (1 - r["accuracy"]) for r in rows]
    val_error = [100 * (1 - r["val_accuracy"]) if "val_accuracy" in r else None for r in rows]
    return label, bool(recipe.get("plain", False)), steps, train_error, val_error


def plot(workdirs, out):
    """Draws the runs' error curves into the PNG `out`; returns its path."""
    matplotlib = datasets.require("matplotlib", "matplotlib", "zoo.plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = cli.output_file(out, "--out")
    runs = [load_run(w) for w in workdirs]
    groups = [g for g in (True, False) if any(r[1] == g for r in runs)]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, plain in zip(axes[0], groups):
        for i, (label, is_plain, steps, train_error, val_error) in enumerate(runs):
            if is_plain != plain:
                continue
            color = f"C{i % 10}"
            iters = [s / 1e4 for s in steps]
            ax.plot(iters, train_error, color=color, linewidth=0.8, linestyle="--")
            if any(v is not None for v in val_error):
                ax.plot(iters, val_error, color=color, linewidth=2.2, label=label)
            else:
                ax.plot([], [], color=color, linewidth=2.2, label=label)
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
    flags.DEFINE_string("out", "errors.png", "Output PNG file.")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
