"""The catalogue pins what it downloads: no URL follows a branch, the headline v2_ssd has its
tagged URL, size and SHA-256, and figures nobody measured are not shown as if they were."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import run_edgecam  # noqa: E402

from edgecam.provision import catalog  # noqa: E402
from edgecam.errors import ModelError  # noqa: E402
from edgecam.provision.fetch import provision  # noqa: E402

BRANCH = re.compile(r"/(?:raw|blob|tree|resolve)/(?:master|main|HEAD|develop)/|/refs/heads/")


def every_url():
    for spec in catalog.catalogue().values():
        for url in (spec.url, spec.alt_url, spec.labels.url):
            if url:
                yield spec.name, url


def test_no_catalogue_url_follows_a_branch():
    urls = list(every_url())
    assert len(urls) > 40
    moving = sorted({u for _, u in urls if BRANCH.search(u)})
    assert moving == [], f"URLs that follow a branch: {moving}"
    coral = {u for _, u in urls if "github.com/google-coral/test_data" in u}
    assert coral and all("/raw/release-grouper/" in u for u in coral), coral


def test_v2_ssd_is_pinned_and_its_figures_are_not_the_ssdlite_ones(tmp_path):
    spec = catalog.get("v2_ssd")
    assert spec.url == ("https://github.com/google-coral/test_data/raw/release-grouper/"
                        "ssd_mobilenet_v2_coco_quant_postprocess.tflite")
    assert spec.bytes == 6_220_797
    assert spec.sha256 == "42fb3d70ffb7bb37dd518f730f7be784b831c2078f30c497d0019cc2e987fa26"
    assert spec.madds_m is None and spec.params_m is None       # not the paper's SSDLite 0.8B / 4.3M
    r = run_edgecam("models", "list", "--model-dir", tmp_path)
    row = next(line for line in r.stdout.splitlines() if line.startswith("v2_ssd "))
    assert r.returncode == 0 and "not measured" in row and "800" not in row and "4.3" not in row, row


def test_unmeasured_figures_come_from_the_graph_once_provisioned(models_dir):
    from edgecam.provision.commands import _figures
    spec = dataclasses.replace(catalog.get("v1_ssd"), madds_m=None, params_m=None)
    assert _figures(spec, models_dir) == ("728M (graph)", "4.10M (graph)")


def test_a_file_of_the_wrong_size_is_not_kept(mirror, tmp_path):
    """A mirror holding another model under v2_ssd's file name: refused by its size, nothing kept."""
    fake_mirror = tmp_path / "mirror"
    fake_mirror.mkdir()
    shutil.copy(mirror / "ssd_mobilenet_v1_1.0_300_coco_quant.tflite",
                fake_mirror / "ssd_mobilenet_v2_coco_quant_postprocess.tflite")
    shutil.copy(mirror / "coco_labels.txt", fake_mirror)
    out = tmp_path / "models"
    with pytest.raises(ModelError) as err:
        provision(catalog.get("v2_ssd"), out, mirror=fake_mirror, progress=False)
    assert str(err.value) == ("ssd_mobilenet_v2_coco_quant_postprocess.tflite is 4,183,312 bytes, not the "
                              "6,220,797 the catalogue pins; the mirror copy is corrupt or the file changed — not kept")
    assert sorted(p.name for p in out.iterdir()) == []


def test_readme_calls_the_models_uint8():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "int8 MobileNet" not in readme and "uint8-quantized MobileNet" in readme
