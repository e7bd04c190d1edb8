"""The JSON Schema of config.toml agrees with the config loader: every shipped config passes,
an unknown key or a wrong type fails both, and docs/config.schema.json is the generated one."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from digest.config import load_config
from digest.demo import write
from digest.errors import ConfigError
from digest.schema import config_schema, schema_json

ROOT = Path(__file__).parent.parent
VALIDATOR = jsonschema.Draft202012Validator(config_schema())


def problems(text: str) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(tomllib.loads(text))]


def test_the_schema_is_itself_valid_and_the_shipped_copy_is_current():
    jsonschema.Draft202012Validator.check_schema(config_schema())
    assert (ROOT / "docs" / "config.schema.json").read_text() == schema_json(), (
        "docs/config.schema.json is stale; run `digest schema > docs/config.schema.json`")


def test_every_shipped_config_passes(project, tmp_path):
    assert problems((ROOT / "config.toml").read_text()) == []
    assert (ROOT / "config.toml").read_text().startswith("#:schema ./docs/config.schema.json\n")
    r = project.run("init", str(tmp_path / "new"))
    assert r.exit_code == 0, r.output
    written = (tmp_path / "new" / "config.toml").read_text()
    assert written.startswith("#:schema ./config.schema.json\n") and problems(written) == []
    assert json.loads((tmp_path / "new" / "config.schema.json").read_text()) == config_schema()
    demo = write(tmp_path / "demo", datetime(2026, 11, 22, 6, 0, tzinfo=UTC))
    assert problems(demo.read_text()) == []


BASE = ('[digest]\ntitle = "x"\n[feeds.a]\nurl = "https://example.org/feed"\n'
        '[users.ada]\nemail = "ada@example.org"\n')


@pytest.mark.parametrize("extra, words", [
    ('[web]\nport = "8750"\n', "'8750' is not of type 'integer'"),
    ('[web]\nprot = 8750\n', "'prot' was unexpected"),
    ('[users.bob]\nname = "Bob"\n', "is not valid under any of the given schemas"),
    ('[feeds.b]\nurl = "https://example.org/b"\npath = "b.xml"\n', "valid under each of"),
    ('[ranking]\nhalf_life = "soon"\n', "'soon' is not valid under any"),
    ('[users.cy]\nemail = "cy@example.org"\ninterests = 3\n', "3 is not valid under any"),
    ('[smtp]\nhost = "mail.example.org"\nfrom = "d@example.org"\npassword = "hunter2"\n',
     "'password' was unexpected"),
])
def test_an_unknown_key_or_a_wrong_type_fails_schema_and_loader_alike(tmp_path, extra, words):
    text = BASE + extra
    found = problems(text)
    assert any(words in p for p in found), found
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_a_config_the_loader_accepts_passes_the_schema(tmp_path):
    text = BASE + '[users.ada.interests]\n"style transfer" = 2\n[ranking]\nhalf_life = "3d"\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    load_config(path)
    assert problems(text) == []


def test_the_schema_command_prints_the_schema(project):
    r = project.run("schema")
    assert r.exit_code == 0 and json.loads(r.stdout) == config_schema()
