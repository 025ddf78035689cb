"""Every package folder is listed in pyproject.toml (the list is explicit because of demos/)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "edgeinfer").rglob("__init__.py")
    }
    found |= {
        ".".join(("edgeinfer", "demos", *init.parent.relative_to(ROOT / "demos").parts))
        for init in (ROOT / "demos").rglob("__init__.py")
    }
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"
    assert config["package-dir"]["edgeinfer.demos"] == "demos"


def test_constraints_pin_the_cpu_torch():
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in [line.strip() for line in lines]
