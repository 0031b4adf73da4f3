"""Bad input: one sentence naming the problem, exit 2 (usage, config) or 1 (runtime), no traceback."""

import pytest

from helpers import one_sentence, run_edgecam


@pytest.fixture
def files(tmp_path, models_dir):
    good = (models_dir / "ssd_mobilenet_v1_1.0_300_coco_quant.tflite").read_bytes()
    (tmp_path / "truncated.tflite").write_bytes(good[:len(good) // 3])
    (tmp_path / "text.tflite").write_text("this is not a model\n")
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000)
    (tmp_path / "badkey.yaml").write_text("model:\n  nmae: v1_ssd\n")
    (tmp_path / "badtype.yaml").write_text("postprocess:\n  top_k: three\n")
    return tmp_path


CASES = [
    (["--model", "{t}/truncated.tflite"], 1, "is corrupt or truncated"),
    (["--model", "{t}/text.tflite"], 1, "is not a TFLite model"),
    (["--model", "{t}/empty.tflite"], 1, "is not a TFLite model"),
    (["--model", "{t}/missing.tflite"], 1, "does not exist"),
    (["--model", "v9_ssd"], 2, "unknown model 'v9_ssd'"),
    (["--model", "v2_ssd"], 1, "run `edgecam models fetch v2_ssd`"),
    (["--source", "{t}/missing.mp4"], 1, "video file {t}/missing.mp4 does not exist"),
    (["--source", "{t}/broken.mp4"], 1, "not a video OpenCV can decode, or it is corrupt"),
    (["--source", "{t}/missing.jpg"], 1, "image file {t}/missing.jpg does not exist"),
    (["--config", "{t}/badkey.yaml"], 2, "unknown config key 'model.nmae'"),
    (["--config", "{t}/badtype.yaml"], 2, "config key 'postprocess.top_k' must be a whole number"),
    (["--config", "{t}/none.yaml"], 2, "config file {t}/none.yaml does not exist"),
    (["--output", "{t}/no/such/folder/out.mp4"], 1, "folder {t}/no/such/folder does not exist"),
    (["--output", "{t}/out.xyz"], 1, "use a .mp4, .mov, .mkv or .avi file name"),
    (["--json", "{t}"], 1, "it is a folder"),
    (["--threshold", "1.5"], 2, "must be between 0.0 and 1.0"),
    (["--resize", "squash"], 2, "invalid choice"),
    (["--top-k", "x"], 2, "invalid int value"),
]


@pytest.mark.parametrize("args,code,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(files, models_dir, media, args, code, message):
    base = {"--model": "v1_ssd", "--source": str(media / "parrot.jpg")}
    args = [a.format(t=files) for a in args]
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    r = run_edgecam("--model-dir", models_dir, "--display", "none", *args)
    assert r.returncode == code
    assert message.format(t=files) in one_sentence(r)


def test_unwritable_output(files, models_dir, media):
    import os
    if os.geteuid() == 0:
        out = "/proc/edgecam.mp4"  # root may write anywhere else
    else:
        ro = files / "ro"
        ro.mkdir(mode=0o500)
        out = str(ro / "out.mp4")
    r = run_edgecam("--model-dir", models_dir, "--display", "none", "--model", "v1_ssd",
                    "--source", media / "parrot.jpg", "--output", out)
    assert r.returncode == 1
    assert "cannot write" in one_sentence(r)
    assert not (files / "out.mp4").exists()


def test_an_output_that_fails_leaves_no_other_output_behind(files, models_dir, media):
    """A good --output with an unwritable --json: one sentence, and no empty video left over."""
    r = run_edgecam("--model-dir", models_dir, "--display", "none", "--model", "v1_ssd",
                    "--source", media / "parrot.jpg", "--output", files / "kept.mp4",
                    "--json", files / "no" / "such" / "folder" / "out.jsonl")
    assert r.returncode == 1
    assert "cannot write JSON lines" in one_sentence(r)
    assert not (files / "kept.mp4").exists()
