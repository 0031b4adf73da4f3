"""Every config and CLI value is bounded (issue 11): YAML bombs and nesting refused before
objects are built, bad values shown short, special files and over-long names refused in
one sentence, label files bounded, control characters escaped, image folders explained."""

import os
import subprocess
import sys
import time

import pytest

from helpers import run_edgecam
from edgecam.config import load_config
from edgecam.errors import ConfigError, ModelError
from edgecam.model.labels import load_file

BILLION_LAUGHS = "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BILLION_LAUGHS


def one_sentence(r):
    err = [l for l in r.stderr.splitlines() if not l.startswith(("INFO", "WARNING"))]
    assert "Traceback" not in r.stderr
    assert len(err) == 1 and err[0].startswith("edgecam: error: "), r.stderr
    return err[0]


def peak_rss_mb(code: str) -> tuple:
    """(seconds, peak MB, output) of ``code`` run in a fresh interpreter. The peak is VmHWM, the
    interpreter's own address space: getrusage's ru_maxrss also keeps the forked parent's (pytest,
    200 MB and more late in the suite), which exec does not reset."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code + "\nprint(next(int(line.split()[1]) for line in "
                        "open('/proc/self/status') if line.startswith('VmHWM:')) // 1024)"],
                       capture_output=True, text=True, timeout=60)
    return time.monotonic() - t0, int(r.stdout.split()[-1]), r.stdout


@pytest.mark.parametrize("text,message", [
    (BILLION_LAUGHS + "model:\n  name: *i\n", "expands to more than 20000 values"),
    ("model:\n  name: " + "[" * 100000 + "]" * 100000 + "\n", "nests deeper than 20 levels"),
    ("model:\n  name: &x [*x]\n", "refers to itself through an alias"),
    ("model:\n  name: v1\nmodel:\n  name: v2\n", "gives key 'model' twice (line 3)"),
    ("model:\n  name: [" + "x, " * 30000 + "]\n", "expands to more than 20000 values"),
    ("postprocess:\n  top_k: " + "9" * 5000 + "\n", "cannot be loaded"),
    ("model:\n  name: " + "n" * 5000 + "\n", "longer than 4096 characters"),
    ("postprocess:\n  threshold: .nan\n", "must be between 0.0 and 1.0, not nan"),
    ("output:\n  web: '99999'\n", "bad --web address '99999'"),
])
def test_hostile_yaml_is_one_short_sentence(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert message in str(err.value)
    assert len(str(err.value)) < 300, str(err.value)


def test_billion_laughs_is_refused_in_milliseconds_and_megabytes(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(BILLION_LAUGHS + "model:\n  name: *i\n")
    took, mb, out = peak_rss_mb(f"from edgecam.config import load_config\ntry:\n  load_config({str(p)!r})\n"
                                f"except Exception as e: print(type(e).__name__)")
    print(f"billion laughs ({p.stat().st_size} bytes): refused in {took:.2f} s (with interpreter start), peak {mb} MB")
    assert "ConfigError" in out and mb < 200


def test_any_failure_to_load_is_a_config_error(tmp_path):
    cases = {"binary.yaml": os.urandom(2000) + b"\xff\xfe",
             "latin1.yaml": "model:\n  name: caf\xe9\n".encode("latin-1"),
             "huge.yaml": b"# " + b"y" * 400_000}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError):
            load_config(tmp_path / name)
    os.mkfifo(tmp_path / "fifo.yaml")
    for path in ("/dev/zero", tmp_path / "fifo.yaml", tmp_path):
        with pytest.raises(ConfigError, match="cannot be read: it is"):
            load_config(path)


def test_label_files_are_bounded(tmp_path):
    (tmp_path / "ids.txt").write_text("0 person\n4000000000 toaster\n")
    with pytest.raises(ModelError, match=r"ids.txt line 2: class id 4000000000 is above the model's 91 classes"):
        load_file(tmp_path / "ids.txt", 91)
    with pytest.raises(ModelError, match="line 2: class id 4000000000 is above 100000"):
        load_file(tmp_path / "ids.txt")
    (tmp_path / "big.txt").write_bytes(b"label\n" * 300_000)
    with pytest.raises(ModelError, match="larger than 1024 KB"):
        load_file(tmp_path / "big.txt")
    with pytest.raises(ModelError, match="it is a device"):
        load_file("/dev/zero")


def test_the_28_byte_label_file_in_milliseconds(models_dir, media, tmp_path):
    labels = tmp_path / "l.txt"
    labels.write_text("0 person\n4000000000 toaster\n")
    t0 = time.monotonic()
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--labels", labels,
                    "--source", media / "parrot.jpg", "--display", "none")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert "line 2: class id 4000000000 is above" in one_sentence(r)
    print(f"28-byte label file refused in {took:.2f} s (whole run)")


@pytest.mark.parametrize("args,code,message", [
    (["--json", "/dev/full"], 1, "cannot write JSON lines to /dev/full: it is a device, not a regular file"),
    (["--json", "{t}/fifo"], 1, "it is a FIFO, not a regular file"),
    (["--labels", "/dev/zero"], 1, "label file /dev/zero cannot be read: it is a device"),
    (["--source", "/dev/zero"], 1, "video file /dev/zero cannot be read: it is a device"),
    (["--model", "x" * 300], 2, "longer than the file system allows (255 bytes)"),
    (["--source", "/tmp/" + "s" * 300 + ".mp4"], 2, "longer than the file system allows"),
    (["--json", "{t}/" + "j" * 300], 2, "longer than the file system allows"),
    (["--web", "99999"], 2, "bad --web address '99999'"),
    (["--web", "abc"], 2, "bad --web address 'abc'"),
    (["--source", "{t}/none_readable"], 1, "has no image OpenCV can decode (2 file(s) tried, the first being a.jpg)"),
    (["--model", "v9\nERROR forged line"], 2, "unknown model 'v9\\nERROR forged line'"),
])
def test_bad_values_in_one_sentence(models_dir, media, tmp_path, args, code, message):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "none_readable").mkdir()
    for name in ("a.jpg", "b.png"):
        (tmp_path / "none_readable" / name).write_bytes(b"not an image")
    args = [a.format(t=tmp_path) for a in args]
    base = {"--model": "v1_ssd", "--source": str(media / "parrot.jpg")}
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    r = run_edgecam("--model-dir", models_dir, "--display", "none", *args, timeout=60)
    assert r.returncode == code, r.stderr
    assert message in one_sentence(r)


def test_a_corrupt_first_image_is_named_and_skipped(models_dir, media, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a_corrupt.jpg").write_bytes((media / "parrot.jpg").read_bytes()[:600])
    (folder / "b.jpg").write_bytes((media / "parrot.jpg").read_bytes())
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", folder, "--display", "none",
                    "--output", tmp_path / "o.mp4")
    assert r.returncode == 0, r.stderr
    assert "skipping" in r.stderr and "a_corrupt.jpg" in r.stderr and "1 frames" in r.stdout
