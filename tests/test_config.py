"""Config: one commented config.yaml with every setting; bad keys and values named."""

from pathlib import Path

import pytest
import yaml

from edgecam.cli import _overrides, _run_parser
from edgecam.config import Config, load_config, to_dict
from edgecam.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def keys(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from keys(v, prefix + k + ".")
        else:
            yield prefix + k


def test_config_yaml_holds_every_setting_with_its_default():
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert set(keys(data)) == set(keys(to_dict(Config())))
    assert to_dict(load_config(ROOT / "config.yaml")) == to_dict(Config())
    text = (ROOT / "config.yaml").read_text()
    for key in keys(data):  # each setting has a comment line above it or beside it
        leaf = key.split(".")[-1]
        line = next(i for i, l in enumerate(text.splitlines()) if l.strip().startswith(leaf + ":"))
        lines = text.splitlines()
        assert any("#" in l for l in lines[max(0, line - 3):line + 1]), key


@pytest.mark.parametrize("text,message", [
    ("model:\n  nmae: v1\n", "unknown config key 'model.nmae'"),
    ("colour: red\n", "unknown config key 'colour'"),
    ("postprocess:\n  threshold: high\n", "config key 'postprocess.threshold' must be a number"),
    ("model:\n  threads: 2.5\n", "config key 'model.threads' must be a whole number"),
    ("output:\n  display: tv\n", "config key 'output.display' must be one of window, fullscreen, none"),
    ("preprocess: stretch\n", "config key 'preprocess' must be a section"),
    ("model: [\n", "is not valid YAML at line"),
    ("- a\n- b\n", "must be a mapping of keys"),
])
def test_bad_config_names_the_key(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(p)


def test_flags_override_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  name: v1\n  threads: 4\npostprocess:\n  threshold: 0.3\nsource:\n  uri: 0\n")
    args = _run_parser().parse_args(["--model", "v1_ssd", "--threshold", "0.6", "--resize", "crop",
                                     "--rho", "0.857", "--top-k", "5", "--display", "none"])
    cfg = load_config(p, _overrides(args))
    assert (cfg.model.name, cfg.model.threads, cfg.postprocess.threshold) == ("v1_ssd", 4, 0.6)
    assert (cfg.preprocess.resize, cfg.preprocess.rho, cfg.postprocess.top_k) == ("crop", 0.857, 5)
    assert cfg.source.uri == "0" and cfg.output.display == "none"


def test_every_issue_flag_exists():
    help_text = _run_parser().format_help()
    for flag in ["--model", "--labels", "--source", "--output", "--json", "--display", "--rho",
                 "--resize", "--threshold", "--top-k", "--threads", "--config"]:
        assert flag in help_text


DOCS = ROOT / "docs"


def test_docs_document_every_config_key():
    page = (DOCS / "configuration.md").read_text()
    for key in keys(to_dict(Config())):
        assert f"`{key}`" in page, f"docs/configuration.md's table lacks {key}"


def test_docs_name_every_live_control_where_mqtt_and_the_browser_list_them():
    """The live controls are the schema's (CONTROLS): the MQTT and browser pages' lists follow it."""
    from edgecam.config import CONTROLS
    mqtt_page, live_page = (DOCS / "mqtt.md").read_text(), (DOCS / "live.md").read_text()
    mqtt = mqtt_page[mqtt_page.index("**Live settings**"):mqtt_page.index("**Home Assistant**")]
    browser = live_page[live_page.index("`POST /set` with"):live_page.index("For example:\n`curl")]
    for c in CONTROLS:
        assert f"`{c.alias}`" in mqtt and (c.key == "paused" or f"`{c.key}`" in mqtt), c.key
        assert f"`{c.alias}`" in browser, c.key


def _shown(value) -> str:
    """A default as docs/configuration.md's table writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_docs_table_matches_the_schema():
    """Each row of docs/configuration.md's table: the key's default and flag as the schema has them."""
    from edgecam.config import SETTINGS
    rows = {}
    for line in (DOCS / "configuration.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and "." in cells[0] or cells[0] == "`log_level`":
            keys = [k.strip(" `") for k in cells[0].split(",")]
            defaults = [d.strip(" `") for d in cells[1].split(",")]
            for k, d in zip(keys, defaults if len(defaults) == len(keys) else defaults * len(keys)):
                rows[k] = (d, {f.strip(" `") for f in cells[2].split(",") if f.strip(" `")})
    assert set(rows) == set(SETTINGS), set(rows) ^ set(SETTINGS)
    for key, s in SETTINGS.items():
        assert rows[key] == (_shown(s.default), {f for f in (s.flag, s.short) if f}), key


def test_config_yaml_names_each_flag_of_the_schema():
    """config.yaml's comments give each setting's flag in brackets, [--model], as the schema has it."""
    import re
    from edgecam.config import SETTINGS
    flags, pending, section = {}, [], ""
    for line in (ROOT / "config.yaml").read_text().splitlines():
        text = line.strip()
        if text.startswith("#"):
            pending += re.findall(r"\[(--[a-z0-9-]+)(?:, -[a-z])?\]", text)
            continue
        m = re.match(r"^(\s*)([a-z_][a-z_0-9]*):(.*)$", line)
        if not m:
            continue
        indent, name, rest = m.groups()
        if not indent and not rest.strip():
            section, pending = name + ".", []
            continue
        key = (section if indent else "") + name
        pending += re.findall(r"\[(--[a-z0-9-]+)(?:, -[a-z])?\]", rest)
        flags[key], pending = (pending[-1] if pending else None), []
    assert {k: f for k, f in flags.items()} == {k: s.flag for k, s in SETTINGS.items()}


def test_links_in_readme_and_docs_lead_somewhere():
    """Every relative link of README.md and docs/*.md names a file of the checkout and, with an
    anchor, a heading of that file (GitHub's anchors: lower case, punctuation dropped, - for spaces)."""
    import re

    def anchors(path):
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#{1,4} (.*)$", path.read_text(), flags=re.M)}

    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    assert len(pages) >= 10
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            name, _, anchor = target.partition("#")
            dest = (page.parent / name).resolve() if name else page
            assert dest.exists(), f"{page.name}: {target}"
            if anchor:
                assert anchor in anchors(dest), f"{page.name}: {target}"
