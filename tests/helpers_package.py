"""What tests/test_package.py and tests/test_command.py share: a fake installed distribution."""

import os

from conftest import python_env


def fake_distribution(site, name, version):
    """A dist-info folder, as pip leaves one, in the folder `site` (made if need be).

    Returns:
        `site`.
    """
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (folder / "INSTALLER").write_text("pip\n")
    return site


def with_site(site):
    """`python_env()` with the folder `site` first on PYTHONPATH."""
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), *[p for p in [env.get("PYTHONPATH")] if p]])
    return env
