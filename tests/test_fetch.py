"""edgecam.fetch against a real loopback HTTP server and the real model mirror (nothing mocked)."""

import collections
import csv
import dataclasses
import http.server
import shutil
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from edgecam.provision import catalog
from edgecam.errors import ModelError
from edgecam.provision.fetch import mirror_from_env, provision, sha256_of

V1 = "mobilenet_v1_0.25_128_quant.tflite"
SSD = "ssd_mobilenet_v1_1.0_300_coco_quant.tflite"


@pytest.fixture(scope="module")
def manifest(mirror):
    with open(mirror / "manifest.tsv", newline="") as f:
        return {row["file"]: row["sha256"] for row in csv.DictReader(f, delimiter="\t")}


class Server:
    def __init__(self, root: Path):
        self.root = root
        self.hits = collections.Counter()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def server(tmp_path_factory):
    """Serves tmp_path/www; /short/NAME sends NAME's Content-Length but only half its bytes."""
    srv = Server(tmp_path_factory.mktemp("www"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            srv.hits[self.path] += 1
            name = self.path.lstrip("/")
            short = name.startswith("short/")
            f = srv.root / (name[len("short/"):] if short else name)
            if not f.is_file():
                self.send_error(404)
                return
            data = f.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if short else data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    httpd.shutdown()
    httpd.server_close()


def at(spec, url, labels_url, **changes):
    """spec pointed at the test server (no alt_url, no archive hashes unless given)."""
    label_changes = {k[len("labels_"):]: changes.pop(k) for k in list(changes) if k.startswith("labels_")}
    labels = dataclasses.replace(spec.labels, url=labels_url, **{"archive_sha256": None, **label_changes})
    return dataclasses.replace(spec, url=url, labels=labels, **{"alt_url": None, "archive_sha256": None, **changes})


def leftovers(directory: Path):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_raw_download(server, mirror, manifest, tmp_path):
    shutil.copy(mirror / V1, server.root)
    shutil.copy(mirror / "imagenet_labels.txt", server.root)
    spec = at(catalog.get("v1_0.25_128"), server.url(V1), server.url("imagenet_labels.txt"))
    out = tmp_path / "models"                       # created by provision
    path = provision(spec, out, progress=False)
    assert path == out / V1
    assert sha256_of(path) == manifest[V1]
    assert sha256_of(out / "imagenet_labels.txt") == manifest["imagenet_labels.txt"]
    assert leftovers(out) == ["imagenet_labels.txt", V1]


def test_tgz_member_in_subfolder_after_alt_url_404(server, mirror, manifest, tmp_path):
    archive = server.root / "mobilenet_v1_0.25_128_quant.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(mirror / "LICENSE-Apache-2.0.txt", arcname="./LICENSE")
        tf.add(mirror / V1, arcname=f"./nested/{V1}")
    shutil.copy(mirror / "imagenet_labels.txt", server.root)
    spec = at(catalog.get("v1_0.25_128"), server.url(archive.name), server.url("imagenet_labels.txt"),
              alt_url=server.url("missing.tflite"), archive_sha256=sha256_of(archive), sha256=manifest[V1])
    path = provision(spec, tmp_path / "m", progress=False)
    assert sha256_of(path) == manifest[V1]
    assert server.hits["/missing.tflite"] == 1 and server.hits["/" + archive.name] == 1
    assert leftovers(tmp_path / "m") == ["imagenet_labels.txt", V1]


def _ssd_zip(mirror, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(mirror / SSD, "coco_ssd/detect.tflite")
        zf.write(mirror / "coco_ssd_labelmap.txt", "coco_ssd/labelmap.txt")
    return dest


def test_zip_model_and_labels_downloaded_once(server, mirror, manifest, tmp_path):
    archive = _ssd_zip(mirror, server.root / "ssd.zip")
    url, digest = server.url("ssd.zip"), sha256_of(archive)
    spec = at(catalog.get("v1_ssd"), url, url, archive_sha256=digest, labels_archive_sha256=digest)
    provision(spec, tmp_path, progress=False)
    assert server.hits["/ssd.zip"] == 1
    assert sha256_of(tmp_path / SSD) == manifest[SSD]
    assert sha256_of(tmp_path / "coco_ssd_labelmap.txt") == manifest["coco_ssd_labelmap.txt"]
    assert not [n for n in leftovers(tmp_path) if n.startswith(".tmp-")]


def test_checksum_mismatch_keeps_nothing(server, mirror, manifest, tmp_path):
    data = bytearray((mirror / V1).read_bytes())
    data[1000] ^= 0xFF
    (server.root / V1).write_bytes(bytes(data))
    spec = at(catalog.get("v1_0.25_128"), server.url(V1), server.url("imagenet_labels.txt"),
              sha256=manifest[V1])
    with pytest.raises(ModelError, match=r"SHA-256 mismatch: expected cb273c23…, got .*not kept"):
        provision(spec, tmp_path / "m", progress=False)
    assert leftovers(tmp_path / "m") == []


def test_archive_checksum_mismatch(server, mirror, tmp_path):
    _ssd_zip(mirror, server.root / "ssd.zip")
    spec = catalog.get("v1_ssd")                    # keeps the official archive_sha256
    spec = dataclasses.replace(spec, url=server.url("ssd.zip"))
    with pytest.raises(ModelError, match=r"ssd\.zip SHA-256 mismatch: expected a809cd29…"):
        provision(spec, tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_cut_off_download_keeps_nothing(server, mirror, tmp_path):
    shutil.copy(mirror / V1, server.root)
    spec = at(catalog.get("v1_0.25_128"), server.url("short/" + V1), server.url("imagenet_labels.txt"))
    with pytest.raises(ModelError, match=r"cut off after 262799 of 525598 bytes"):
        provision(spec, tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_http_404(server, tmp_path):
    spec = at(catalog.get("v2"), server.url("nope.tflite"), server.url("imagenet_labels.txt"))
    with pytest.raises(ModelError, match=r"HTTP 404") as err:
        provision(spec, tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path) == []


def test_archive_without_member(server, mirror, tmp_path):
    with tarfile.open(server.root / "other.tgz", "w:gz") as tf:
        tf.add(mirror / "coco_labels.txt", arcname="coco_labels.txt")
    spec = at(catalog.get("v1_0.25_128"), server.url("other.tgz"), server.url("imagenet_labels.txt"))
    with pytest.raises(ModelError, match=rf"other\.tgz has no member named {V1}"):
        provision(spec, tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_no_network_points_to_mirror(tmp_path):
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{V1}"
    spec = at(catalog.get("v1_0.25_128"), url, url)
    with pytest.raises(ModelError, match=r"from 127\.0\.0\.1 .*no network\?.*--from DIR") as err:
        provision(spec, tmp_path, progress=False)
    assert "edgecam models fetch v1_0.25_128 --from DIR" in str(err.value)
    assert leftovers(tmp_path) == []


def test_unknown_hash_warns_with_digest_and_keeps_file(server, mirror, manifest, tmp_path, capsys):
    shutil.copy(mirror / V1, server.root)
    shutil.copy(mirror / "imagenet_labels.txt", server.root)
    spec = at(catalog.get("v1_0.25_128"), server.url(V1), server.url("imagenet_labels.txt"), sha256=None)
    path = provision(spec, tmp_path, progress=False)
    warnings = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning:")]
    assert len(warnings) == 1 and manifest[V1] in warnings[0]
    assert sha256_of(path) == manifest[V1]


def test_unwritable_directory(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ModelError, match=r"cannot create the model folder") as err:
        provision(catalog.get("v2"), tmp_path / "file" / "models", progress=False)
    assert "\n" not in str(err.value)


def test_mirror_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGECAM_MODEL_MIRROR", "")
    assert mirror_from_env() is None
    monkeypatch.delenv("EDGECAM_MODEL_MIRROR")
    assert mirror_from_env() is None
    monkeypatch.setenv("EDGECAM_MODEL_MIRROR", str(tmp_path))
    assert mirror_from_env() == tmp_path


@pytest.mark.parametrize("name", ["v1_0.25_128", "v2", "v1_ssd"])
def test_mirror_provision_and_noop(mirror, manifest, tmp_path, name):
    spec = catalog.get(name)
    path = provision(spec, tmp_path, mirror=mirror, progress=False)
    labels = catalog.labels_path(spec, tmp_path)
    assert sha256_of(path) == manifest[spec.file]
    assert sha256_of(labels) == manifest[spec.labels.file]
    if name == "v1_ssd":
        assert labels.name == "coco_ssd_labelmap.txt"
    before = (path.stat().st_mtime_ns, labels.stat().st_mtime_ns)
    assert provision(spec, tmp_path, mirror=mirror, progress=False) == path
    assert (path.stat().st_mtime_ns, labels.stat().st_mtime_ns) == before
    assert catalog.is_provisioned(spec, tmp_path)
    assert leftovers(tmp_path) == sorted([spec.file, spec.labels.file])


def test_mirror_replaces_corrupt_local_copy(mirror, manifest, tmp_path):
    (tmp_path / V1).write_bytes(b"truncated")
    spec = dataclasses.replace(catalog.get("v1_0.25_128"), sha256=manifest[V1])
    path = provision(spec, tmp_path, mirror=mirror, progress=False)
    assert sha256_of(path) == manifest[V1]


def test_mirror_holding_the_archive(mirror, manifest, tmp_path):
    local = tmp_path / "mirror"
    local.mkdir()
    _ssd_zip(mirror, local / "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip")
    spec = dataclasses.replace(catalog.get("v1_ssd"), archive_sha256=None)
    spec = dataclasses.replace(spec, labels=dataclasses.replace(spec.labels, archive_sha256=None))
    path = provision(spec, tmp_path / "out", mirror=local, progress=False)
    assert sha256_of(path) == manifest[SSD]
    assert sha256_of(tmp_path / "out" / "coco_ssd_labelmap.txt") == manifest["coco_ssd_labelmap.txt"]


def test_model_missing_from_mirror(mirror, tmp_path):
    with pytest.raises(ModelError) as err:
        provision(catalog.get("v2_ssd"), tmp_path, mirror=mirror, progress=False)
    msg = str(err.value)
    assert "'v2_ssd'" in msg and str(mirror) in msg and "\n" not in msg
    assert leftovers(tmp_path) == []


def test_a_mirror_without_the_configured_model_says_what_it_has(mirror, tmp_path):
    """`./scripts/run` with the default v2_ssd and a mirror that lacks it: one sentence naming
    the models the mirror has and the --model to use."""
    from helpers import run_edgecam
    r = run_edgecam("--model", "v2_ssd", "--fetch", "--model-dir", tmp_path, "--display", "none",
                    "--source", mirror.parent / "media" / "parrot.jpg",
                    env={"EDGECAM_MODEL_MIRROR": str(mirror)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"the model mirror {mirror} lacks v2_ssd; it has " in r.stderr
    assert "v1_ssd" in r.stderr and "run with --model v1_ssd" in r.stderr
    assert not list(tmp_path.glob("*.tflite"))
