"""Provision catalogue models: download (or copy from a local mirror), verify SHA-256, write atomically.

Every file is written to a ``.tmp-*`` file in the destination folder, verified, then moved into
place with ``os.replace``: an interrupted or failed fetch leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, IO, Dict, Iterator, List, NamedTuple, Optional, Tuple

from tqdm import tqdm

from edgecam.errors import ModelError
from edgecam.provision import catalog
from edgecam.provision.catalog import ModelSpec, model_path

TIMEOUT_S = 30
CHUNK = 1 << 16
MIRROR_ENV = "EDGECAM_MODEL_MIRROR"


class _Item(NamedTuple):
    """One file to provision (the model or its labels), however it is published."""
    file: str
    urls: Tuple[str, ...]
    member: Optional[str]
    sha256: Optional[str]
    archive_sha256: Optional[str]
    size: Optional[int] = None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def mirror_from_env() -> Optional[Path]:
    """The folder named by $EDGECAM_MODEL_MIRROR, or None when unset or empty."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def provision(spec: ModelSpec, directory: Path, mirror: Optional[Path] = None,
              progress: Optional[bool] = None, force: bool = False) -> Path:
    """Make spec's .tflite and its label file present and verified in `directory`; return the model path.

    Already present and (where sha256 known) matching -> nothing to do (unless force).
    mirror given -> copy from that folder only (no network), else download from official URLs.
    """
    if mirror is not None and not Path(mirror).is_dir():
        raise ModelError(f"the model mirror {mirror} is not a folder")
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create the model folder {directory} ({e.strerror}): "
                         "choose another one with model.dir or EDGECAM_MODEL_DIR") from None
    items = _items(spec)
    with contextlib.ExitStack() as temps:          # downloads, removed when done
        downloads: Dict[str, Tuple[Path, str]] = {}
        for item in items:
            dest = directory / item.file
            if not force and dest.is_file() and (item.sha256 is None or sha256_of(dest) == item.sha256):
                continue
            if mirror is not None:
                _from_mirror(spec, item, Path(mirror), dest)
            else:
                _from_network(spec, item, dest, downloads, temps, progress)
    return model_path(spec, directory)


def _items(spec: ModelSpec) -> List[_Item]:
    lab = spec.labels
    return [_Item(spec.file, tuple(u for u in (spec.alt_url, spec.url) if u), spec.member,
                  spec.sha256, spec.archive_sha256, spec.bytes),
            _Item(lab.file, (lab.url,), lab.member, lab.sha256, lab.archive_sha256)]


def _mirror_names(item: _Item) -> List[str]:
    """The file names under which a mirror may hold item: its own, its archive member's, its URLs'."""
    names = [item.file] + [urllib.parse.unquote(os.path.basename(n)) for n in (item.member, *item.urls) if n]
    return list(dict.fromkeys(names))


def _in_mirror(item: _Item, mirror: Path) -> Optional[Path]:
    return next((mirror / n for n in _mirror_names(item) if (mirror / n).is_file()), None)


def _from_mirror(spec: ModelSpec, item: _Item, mirror: Path, dest: Path) -> None:
    src = _in_mirror(item, mirror)
    if src is not None:
        return _install(src, None, item, dest, src.name, "the mirror copy is corrupt or the file changed")
    what = f"model '{spec.name}'" if item.file == spec.file else f"label file of model '{spec.name}'"
    raise ModelError(f"the {what} is not in the model mirror {mirror} (no {' or '.join(_mirror_names(item))})")


def available(specs: List[ModelSpec], mirror: Optional[Path]) -> Tuple[List[str], str]:
    """Which of specs can be provisioned: from the mirror (every file present) or, without one,
    from the network (one HEAD request per download host). Returns the names and a note on why
    others cannot be (unreachable hosts), empty when all can."""
    if mirror is not None:
        return [s.name for s in specs if all(_in_mirror(i, Path(mirror)) for i in _items(s))], ""
    hosts: Dict[str, Optional[str]] = {}           # host -> None when reachable, else the reason
    for s in specs:
        for url in (u for i in _items(s) for u in i.urls[:1]):
            host = urllib.parse.urlsplit(url).hostname or url
            if host not in hosts:
                hosts[host] = _unreachable(url)
    names = [s.name for s in specs
             if all(hosts[urllib.parse.urlsplit(i.urls[0]).hostname or i.urls[0]] is None for i in _items(s))]
    down = [f"{h}: {why}" for h, why in hosts.items() if why]
    return names, ("cannot reach " + "; ".join(down)) if down else ""


def _unreachable(url: str) -> Optional[str]:
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "edgecam"})
    try:
        urllib.request.urlopen(req, timeout=10).close()
        return None
    except urllib.error.HTTPError as e:
        e.close()
        return None if e.code in (403, 405) else f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        return _reason(e)


def _from_network(spec: ModelSpec, item: _Item, dest: Path, downloads: Dict[str, Tuple[Path, str]],
                  temps: contextlib.ExitStack, progress: Optional[bool]) -> None:
    error: Optional[ModelError] = None
    for url in item.urls:                          # alt_url (uncompressed) first, then url
        try:
            if url not in downloads:               # one archive serves model and labels
                tmp = temps.enter_context(temp_in(dest.parent))
                downloads[url] = (tmp, _download(spec, url, item.file, tmp, progress))
            src, digest = downloads[url]
            name = os.path.basename(urllib.parse.urlsplit(url).path) or url
            return _install(src, digest, item, dest, name, "the download is corrupt or the file changed")
        except ModelError as e:
            error = e
    raise error or ModelError(f"model '{spec.name}' has no download URL in the catalogue")


def _download(spec: ModelSpec, url: str, label: str, tmp: Path, progress: Optional[bool]) -> str:
    """Stream url into tmp; return its SHA-256."""
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "edgecam"}),
                                      timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        raise ModelError(f"cannot download {label} from {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise ModelError(f"cannot download {label} from {host} ({_reason(e)}; no network?): provision it "
                         f"from a local mirror with `edgecam models fetch {spec.name} --from DIR`") from None
    total = int(resp.headers.get("Content-Length") or 0) or None
    h, got = hashlib.sha256(), 0
    bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1000, file=sys.stderr,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    try:
        with resp, open(tmp, "wb") as out:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                h.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as e:
        raise ModelError(f"the download of {label} from {host} failed ({_reason(e)}); "
                         "nothing was kept, run the command again") from None
    finally:
        bar.close()
    if total is not None and got != total:
        raise ModelError(f"the download of {label} from {host} was cut off after {got} of {total} bytes; "
                         "nothing was kept, run the command again")
    return h.hexdigest()


def _install(src: Path, src_digest: Optional[str], item: _Item, dest: Path, src_name: str, blame: str) -> None:
    """Copy src (or extract item's member when src is the archive src_name) to dest, verified and atomic."""
    kind = _archive_kind(src)
    if kind and item.archive_sha256:
        _verify(item.archive_sha256, src_digest or sha256_of(src), src_name, blame)
    with temp_in(dest.parent) as tmp:
        h = hashlib.sha256()
        with contextlib.ExitStack() as stack:
            reader = _open_member(src, src_name, kind, item.member or item.file, stack) if kind else \
                stack.enter_context(open(src, "rb"))
            out = stack.enter_context(open(tmp, "wb"))
            while chunk := reader.read(1 << 20):
                out.write(chunk)
                h.update(chunk)
        digest = h.hexdigest()
        size = os.path.getsize(tmp)
        if item.size is not None and size != item.size:
            raise ModelError(f"{item.file} is {size:,} bytes, not the {item.size:,} the catalogue pins; "
                             f"{blame} — not kept")
        if item.sha256:
            _verify(item.sha256, digest, item.file, blame)
        else:
            print(f"warning: the catalogue has no SHA-256 for {item.file}; it is {digest} "
                  "(pin it in models/catalog.yaml)", file=sys.stderr)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)


def _verify(expected: str, got: str, name: str, blame: str) -> None:
    if got.lower() != expected.lower():
        raise ModelError(f"{name} SHA-256 mismatch: expected {expected[:8]}…, got {got[:8]}…; "
                         f"{blame} — not kept")


def _archive_kind(path: Path) -> Optional[str]:
    with open(path, "rb") as f:
        head = f.read(262)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[257:262] == b"ustar":
        return "tar"
    return None


def _open_member(archive: Path, name: str, kind: str, member: str, stack: contextlib.ExitStack) -> IO[bytes]:
    """The archive entry whose basename is `member` (anywhere in the archive), opened for reading."""
    want = os.path.basename(member)
    try:
        if kind == "zip":
            zf = stack.enter_context(zipfile.ZipFile(archive))
            names: List[str] = [n for n in zf.namelist() if not n.endswith("/") and os.path.basename(n) == want]
            if names:
                return stack.enter_context(zf.open(names[0]))
        else:
            tf = stack.enter_context(tarfile.open(archive, "r:*"))
            for m in tf:
                f = tf.extractfile(m) if m.isfile() and os.path.basename(m.name) == want else None
                if f is not None:
                    return stack.enter_context(f)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise ModelError(f"the archive {name} is unreadable ({_reason(e)}); nothing was kept") from None
    raise ModelError(f"the archive {name} has no member named {want}; the catalogue entry may be out of date")


def _unwritable(directory: Path, e: OSError) -> Exception:
    return ModelError(f"cannot write to the model folder {directory} ({e.strerror}): "
                      "choose another one with model.dir or EDGECAM_MODEL_DIR")


def write_synced(path: Path, data: bytes) -> None:
    """``data`` into ``path``, on the disk before it returns (then moved into place), mode 644."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


@contextlib.contextmanager
def temp_in(directory: Path, suffix: str = "",
            refused: Callable[[Path, OSError], Exception] = _unwritable) -> Iterator[Path]:
    """A fresh .tmp-* file in directory, removed on exit unless it was moved into place;
    ``refused`` makes the error for a folder it cannot be made in."""
    try:
        fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    except OSError as e:
        raise refused(directory, e) from None
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None) or e
    return str(getattr(r, "strerror", None) or r).strip() or type(e).__name__


def provision_configured(cfg) -> None:
    """Provision the configured model (and the ρ variant it resolves to) if it is missing:
    from model.mirror or $EDGECAM_MODEL_MIRROR when set, else from the official URL."""
    where = catalog.locate(cfg.model.name, cfg.preprocess.rho, cfg.model.dir)
    spec, directory = where.spec, where.directory
    if where.provisioned or spec is None:     # (a .tflite path: provisioned when it exists)
        return
    mirror = Path(cfg.model.mirror).expanduser() if cfg.model.mirror else mirror_from_env()
    print(f"edgecam: provisioning {spec.name} into {directory}"
          + (f" from {mirror}" if mirror else f" from {spec.alt_url or spec.url}"), file=sys.stderr)
    if mirror is not None and mirror.is_dir() and not all(_in_mirror(i, mirror) for i in _items(spec)):
        raise ModelError(_not_in_mirror(spec, mirror))
    provision(spec, directory, mirror=mirror)


def _not_in_mirror(spec: ModelSpec, mirror: Path) -> str:
    """The configured model is not in the mirror: which models it has, and the flag to use."""
    have, _ = available(sorted(catalog.catalogue().values(), key=lambda m: m.name), mirror)
    same = [n for n in have if catalog.get(n).task == spec.task] or have
    if not same:
        return f"the model mirror {mirror} has no catalogue model (it lacks {spec.name})"
    return (f"the model mirror {mirror} lacks {spec.name}; it has {', '.join(have)}: "
            f"run with --model {same[0]} (or set model.name)")
