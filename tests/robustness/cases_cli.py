"""Bad input to every ``edgeinfer`` command, demos included: one line on stderr, exit 2."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from tests.robustness.hostile import Case, Unclear, random_bytes, write


class CliRefusedError(ValueError):
    """The command exited 2 with one line on stderr: that line is the message."""


def _cli(*argv: str, files: dict[str, bytes] | None = None):
    def run(tmp: Path):
        from edgeinfer.cli import main

        for name, data in (files or {}).items():
            write(tmp, name, data)
        args = [arg.replace("{tmp}", str(tmp)) for arg in argv]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(args)
        except SystemExit as exc:  # argparse inside a demo, say
            code = exc.code
        except Exception as exc:
            raise Unclear(f"the command raised {type(exc).__name__}: {exc}") from exc
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        if code == 2 and len(lines) == 1 and "Traceback" not in err.getvalue():
            raise CliRefusedError(lines[0])
        if code == 0:
            return code
        raise Unclear(f"exit {code} with {len(lines)} stderr lines: {err.getvalue()[-300:]}")

    return run


def cases() -> list[Case]:
    junk_bin = {"junk.bin": random_bytes(21, 1600)}
    junk_mp4 = {"junk.mp4": random_bytes(22, 5000)}
    return [
        Case("cli", "no command", _cli(), r"edgeinfer"),
        Case("cli", "unknown command", _cli("benchmark"), r"benchmark"),
        Case("cli", "demo unknown engine", _cli("demo", "pointclod"), r"pointcloud"),
        Case("cli", "demo all with options", _cli("demo", "all", "--docs", "3"), r"demo all"),
        Case("cli", "demo pointcloud missing --input", _cli(
            "demo", "pointcloud", "--input", "{tmp}/missing.bin"), r"missing\.bin"),
        Case("cli", "demo pointcloud corrupt --input", _cli(
            "demo", "pointcloud", "--input", "{tmp}/junk.bin", "--out", "{tmp}/o", files=junk_bin),
             r"junk\.bin"),
        Case("cli", "demo pointcloud --input of another suffix", _cli(
            "demo", "pointcloud", "--input", "{tmp}/scan.txt", files={"scan.txt": b"1 2 3"}),
             r"scan\.txt"),
        Case("cli", "demo pointcloud --runs not a number", _cli(
            "demo", "pointcloud", "--runs", "many"), r"--runs"),
        Case("cli", "demo pointcloud --out under a file", _cli(
            "demo", "pointcloud", "--out", "{tmp}/file/out", files={"file": b"x"}), r"--out"),
        Case("cli", "demo video corrupt --input", _cli(
            "demo", "video", "--input", "{tmp}/junk.mp4", "--out", "{tmp}/o", files=junk_mp4),
             r"junk\.mp4"),
        Case("cli", "demo video --clips 0", _cli("demo", "video", "--clips", "0"), r"--clips"),
        Case("cli", "demo video --max-frames 0", _cli(
            "demo", "video", "--max-frames", "0", "--out", "{tmp}/o"), r"--max-frames"),
        Case("cli", "demo nlp --docs 0", _cli("demo", "nlp", "--docs", "0"), r"--docs"),
        Case("cli", "demo nlp --docs x", _cli("demo", "nlp", "--docs", "x"), r"--docs"),
        Case("cli", "demo nlp-hat --samples 5", _cli("demo", "nlp-hat", "--samples", "5"),
             r"--samples"),
        Case("cli", "bench unknown target", _cli("bench", "pointclouds"), r"pointcloud"),
        Case("cli", "bench --threads 0", _cli("bench", "video", "--threads", "0"), r"--threads"),
        Case("cli", "bench --json of another suffix", _cli(
            "bench", "video", "--quick", "--json", "{tmp}/r.txt"), r"--json"),
        Case("cli", "bench --markdown under a file", _cli(
            "bench", "video", "--quick", "--markdown", "{tmp}/file/b.md", files={"file": b"x"}),
             r"--markdown"),
        Case("cli", "bench --only unknown", _cli("bench", "video", "--only", "nope"), r"nope"),
        Case("cli", "info", _cli("info"), check=lambda code: code == 0),
    ]
