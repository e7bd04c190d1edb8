"""The README documents every command and every setting; the config reference is generated."""

import re
from pathlib import Path

import click

from digest.cli import cli
from digest.settings import SECTIONS, settings_markdown

README = (Path(__file__).parent.parent / "README.md").read_text()


def block(name: str) -> str:
    m = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.S)
    assert m, f"README.md lacks the <!-- {name}:start/end --> markers"
    return m.group(1)


def test_config_reference_matches_the_settings_tables():
    assert block("settings") == settings_markdown(), (
        "README config reference is stale; replace the settings block with "
        "`python -c 'from digest.settings import settings_markdown; print(settings_markdown())'`")


def test_every_setting_is_in_the_readme():
    reference = block("settings")
    for section, settings in SECTIONS.items():
        for s in settings:
            assert f"| `{s.name}` |" in reference, f"[{section}] {s.name} is undocumented"


def commands(group: click.Group, prefix: str = "digest"):
    for name, cmd in group.commands.items():
        yield f"{prefix} {name}", cmd
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix} {name}")


def test_every_command_and_option_is_in_the_readme():
    for path, cmd in commands(cli):
        assert f"`{path}" in README, f"{path} is undocumented in README.md"
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in README, f"{path} {opt} is undocumented in README.md"


def test_every_module_is_on_the_readme_map():
    """The architecture map names each module (a package by its folder) and nothing that is
    gone."""
    table = block("modules")
    root = Path(__file__).parent.parent / "digest"
    named = set(re.findall(r"^\| `([a-z_]+(?:\.py|/))`", table, re.M))
    present = {p.name + "/" for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.name for p in root.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert named == present, f"missing: {present - named}; gone: {named - present}"
    for package in ("store", "cli"):
        row = next(line for line in table.splitlines() if line.startswith(f"| `{package}/`"))
        modules = {p.stem for p in (root / package).glob("*.py") if p.stem != "__init__"}
        assert all(f"`{m}`" in row for m in modules), f"{package}/ lists not all of {modules}"


def slug(heading: str) -> str:
    """A Markdown heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readmes_links_to_the_projects_files_lead_somewhere():
    """A relative link names a file that exists and, with #anchor, one of its headings: moving a
    section out of the README must not leave a link to nowhere."""
    root = Path(__file__).parent.parent
    links = re.findall(r"\]\(([^)#:\s]+)(?:#([^)\s]+))?\)", README)
    assert links, "the README links to none of the project's files"
    for path, anchor in links:
        target = root / path
        assert target.exists(), f"README.md links to {path}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{path} has no heading #{anchor}"
