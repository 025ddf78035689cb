"""Small benchmarks with known behaviour, for testing the harness itself."""

import torch

from edgeinfer.bench import Benchmark, Case, PlotSpec, max_abs_error


def matmul_state(size: int = 192):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(size, size, generator=generator)


def matmuls(times: int):
    def run(matrix):
        out = matrix
        for _ in range(times):
            out = matrix @ matrix
        return out
    return run


def quality(base_out, cand_out, _state):
    return {"max abs err": max_abs_error(base_out, cand_out)}


def slower_case(name: str = "4x the work") -> Case:
    """Candidate does four times the baseline's matmuls: speed-up must come out below 1."""
    return Case(name, matmul_state, matmuls(1), matmuls(4), quality, params={"work": 4})


def faster_case(name: str = "quarter the work") -> Case:
    return Case(name, matmul_state, matmuls(4), matmuls(1), quality, params={"work": 0.25})


def toy_benchmark(name: str = "toy") -> Benchmark:
    return Benchmark(
        name=name,
        title="Toy matmuls",
        baseline="k matmuls",
        cases=lambda: [slower_case(), faster_case(),
                       Case("slow only", matmul_state, matmuls(1), matmuls(1), quick=False)],
        plot=PlotSpec(x="work", xlabel="relative work"),
    )
