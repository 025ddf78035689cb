"""The video demo streams a short generated input and writes the annotated video."""

import torch

from edgeinfer.datasets import read_video


def test_demo_runs_on_generated_clips(tmp_path, capsys):
    from edgeinfer.demos.video import main

    assert main(["--clips", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fps" in out and "skipped" in out and "class " in out
    frames = read_video(tmp_path / "annotated.mp4")
    assert frames.shape[0] == 2 * (8 + 4) and frames.shape[3] == 3


def test_demo_reads_an_input_file(tmp_path, capsys):
    from edgeinfer.demos.video import generated_stream, main

    from edgeinfer.datasets import write_video

    frames, _ = generated_stream(1, 3, 48)
    source = write_video(tmp_path / "in.mp4", frames)
    assert main(["--input", str(source), "--quiet", "--out", str(tmp_path / "o")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_video(tmp_path / "o" / "annotated.mp4").shape[0] == len(frames)


def test_demo_streams_an_official_tsm_checkpoint(tmp_path, capsys):
    from edgeinfer.demos.video import main

    from tests.video.test_video_import import official_mobilenet_v2

    checkpoint = tmp_path / "mobilenetv2_jester_online.pth.tar"
    torch.save(official_mobilenet_v2(27, shifted=False), checkpoint)
    out = tmp_path / "o"
    argv = ["--checkpoint", str(checkpoint), "--clips", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "model tsm_mobilenetv2" in printed
    assert "(tsm-online), 27 classes, frames 224x224 RGB" in printed
    assert (out / "annotated.mp4").is_file()
