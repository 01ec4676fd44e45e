"""Every `openimds ...` command the README and docs/*.md show is checked against the CLI's
real commands and options, so a renamed flag or a command that does not exist fails here.

Commands in shell code blocks (`$ openimds ...`, `sudo openimds ...`, `docker exec
CONTAINER openimds ...`) are parsed by click exactly as a run would parse them: the
subcommands, every option and its value's type, the arguments' count (a file a command
reads is the reader's, so only "does not exist" is let through). Inline spans in the prose
(`openimds vm import FILE`) and synopses in `text` blocks are usage, with placeholders, so
for them the command path must exist and every `--flag` they name must be one of its
options. What is checked is
counted, so the check cannot pass by finding nothing. Running them is left to the tests of
each feature (a command here needs a server, root or Azure); this is the parse.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from openimds.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
INLINE = re.compile(r"`(openimds [^`]+)`")
# What may stand just before `openimds` for it to be the command run (not a path or a tag).
RUNNERS = {"sudo", "time", "env", "exec", "CONTAINER", "--", "-it"}
SHELL_STOPS = {"|", "||", "&&", ";", ">", ">>", "<", "2>&1", "&", "2>", ")"}
# Shells' prompts before a command: `$ `, `lab$ `, `azureuser@host:~$ `.
PROMPT = re.compile(r"^\s*(?:[\w@.:~/-]*\$\s+)?")


@dataclass(frozen=True)
class Shown:
    page: str
    line: int
    argv: tuple[str, ...]  # after `openimds`

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: openimds {' '.join(self.argv)}"


def _argv(text: str) -> tuple[str, ...] | None:
    """The arguments after `openimds` in one shell line, or None when it runs no openimds."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    for at, word in enumerate(words):
        before = words[at - 1] if at else ""
        runs = at == 0 or before in RUNNERS or "=" in before
        if runs and (word == "openimds" or word.endswith("/bin/openimds")):
            rest = words[at + 1 :]
            for end, token in enumerate(rest):
                if token in SHELL_STOPS or token.startswith((">", "2>")):
                    rest = rest[:end]
                    break
            return tuple(rest)
    return None


def _blocks(path: Path, synopses: list[Shown] | None = None) -> list[Shown]:
    """The commands of the page's shell blocks; its `text` blocks' openimds lines go to
    `synopses`."""
    shown: list[Shown] = []
    fence: str | None = None
    pending = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(raw.strip())
        if match:
            fence = None if fence is not None else match.group(1)
            continue
        if fence == "text" and synopses is not None and raw.startswith("openimds "):
            synopses.append(Shown(path.name, number, tuple(raw.split("#")[0].split()[1:])))
        if fence not in ("sh", "console", "bash", "shell"):
            continue
        line = pending + PROMPT.sub("", raw, count=1)
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        argv = _argv(line)
        if argv:
            shown.append(Shown(path.name, number, argv))
    return shown


def _inline(path: Path) -> list[Shown]:
    shown = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        for span in INLINE.findall(raw):
            words = tuple(span.split()[1:])
            if words and not words[0][0].isupper():  # "openimds Attested Data Root CA": a name
                shown.append(Shown(path.name, number, words))
    return shown


SYNOPSES: list[Shown] = []
BLOCKS = [s for page in PAGES for s in _blocks(page, SYNOPSES)]
INLINES = [s for page in PAGES for s in _inline(page)] + SYNOPSES


def _command(argv: tuple[str, ...]) -> tuple[click.Command, list[str], tuple[str, ...]]:
    """The (sub)command argv names, the names leading to it, and the rest of argv."""
    command: click.Command = main
    path = ["openimds"]
    rest = argv
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        with click.Context(command) as ctx:
            found = command.get_command(ctx, rest[0])
        if found is None:
            break
        command, path, rest = found, [*path, rest[0]], rest[1:]
    return command, path, rest


def test_the_pages_show_commands() -> None:
    # The check is not vacuous: the pages show many commands of both kinds.
    assert len(BLOCKS) >= 30, [str(s) for s in BLOCKS]
    assert len(INLINES) >= 50, len(INLINES)
    assert SYNOPSES, "the synopsis of `openimds events` in docs/scheduled-events.md"


@pytest.mark.parametrize("shown", BLOCKS, ids=str)
def test_a_command_in_a_code_block_parses_as_the_cli_would(shown: Shown) -> None:
    command, path, rest = _command(shown.argv)
    assert not isinstance(command, click.Group) or "--help" in rest, f"{shown}: no such command"
    try:
        command.make_context(" ".join(path), list(rest), resilient_parsing=False)
    except click.exceptions.Exit:
        pass  # --help, --version
    except click.BadParameter as exc:
        if "does not exist" not in exc.format_message():
            raise AssertionError(f"{shown}: {exc.format_message()}") from None
    except click.UsageError as exc:
        raise AssertionError(f"{shown}: {exc.format_message()}") from None


def _options(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


@pytest.mark.parametrize("shown", INLINES, ids=str)
def test_an_inline_command_names_a_real_command_and_real_flags(shown: Shown) -> None:
    command, path, rest = _command(shown.argv)
    first = rest[0] if rest else ""
    if isinstance(command, click.Group):
        # `openimds vm ...`, `openimds keys list/rotate`: a group, or its commands by name.
        words = [w for w in re.split(r"[/,]", first) if w and w not in ("...", "…")]
        assert all(w in command.commands for w in words) or not words, f"{shown}: no such command"
        return
    known = _options(command)
    for token in rest:
        for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", token.split("=")[0]):
            assert flag in known, f"{shown}: {' '.join(path)} has no option {flag}"


def test_no_page_installs_into_the_system_python() -> None:
    # Debian 12 (PEP 668) refuses it: "externally-managed-environment".
    lines = _shell_lines()
    assert any("/opt/openimds/bin/pip install" in line for line in lines)
    for line in lines:
        text = line.split(": ", 1)[1]
        assert not re.match(r"(sudo )?pip3? install", text), f"{line}: use a venv or pipx"


def _shell_lines() -> list[str]:
    """Every line of every shell block, as `page:line: text`."""
    lines = []
    for page in PAGES:
        fence: str | None = None
        for number, raw in enumerate(page.read_text().splitlines(), 1):
            match = FENCE.match(raw.strip())
            if match:
                fence = None if fence is not None else match.group(1)
            elif fence in ("sh", "console", "bash", "shell"):
                lines.append(f"{page.name}:{number}: {PROMPT.sub('', raw, count=1)}")
    return lines
