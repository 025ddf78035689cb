"""`import edgeinfer` must stay cheap: no dependency imported, nothing built, nothing probed."""

import json
import subprocess
import sys

import pytest

HEAVY = {"torch", "numpy", "scipy", "transformers", "tokenizers", "cv2", "matplotlib", "tqdm"}
OPTIONAL = {"onnx", "onnxruntime", "executorch", "spconv", "laspy", "lazrs", "gensim"}


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout.strip().splitlines()[-1])}


def test_import_edgeinfer_imports_no_dependency():
    loaded = _modules_after("import edgeinfer")
    assert not loaded & (HEAVY | OPTIONAL), sorted(loaded & (HEAVY | OPTIONAL))


@pytest.mark.parametrize(
    "package", ["bench", "common_sparse", "datasets", "nlp", "pointcloud", "video", "cli"]
)
def test_subpackages_import_no_optional_runtime(package):
    loaded = _modules_after(f"import edgeinfer.{package}")
    assert not loaded & OPTIONAL, sorted(loaded & OPTIONAL)


def test_subpackages_load_lazily_on_attribute_access():
    import edgeinfer

    assert edgeinfer.bench.__name__ == "edgeinfer.bench"
    assert "bench" in dir(edgeinfer)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = edgeinfer.nope
