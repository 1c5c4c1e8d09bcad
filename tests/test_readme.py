"""The README stays short and its commands stay real: every `surrogate ...` command it shows
names a command that exists and only options that command takes; every config key its
example YAML shows loads; every file it points to exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from surrogate.config import load_config
from surrogate.tasks.grid import GridConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[list[str]]:
    """The `surrogate` commands of the fenced blocks and the inline code spans, as tokens; an
    alternative `a|b` is split into one command per alternative."""
    lines = [ln for block in re.findall(r"```bash\n(.*?)```", README, re.S) for ln in block.splitlines()]
    lines += re.findall(r"`(surrogate [^`]+)`", README)
    commands = []
    for line in lines:
        line = line.split("#")[0].replace("\\|", "|").strip()
        if not line.startswith("surrogate "):
            continue
        tokens = line.split()
        head = tokens[1]
        for sub in head.split("|"):
            rest = tokens[2:]
            if rest and "|" in rest[0] and not rest[0].startswith("-"):  # `convert cfdbench|channel|mesh SRC`
                commands += [[sub, alt, *rest[1:]] for alt in rest[0].split("|")]
            else:
                commands.append([sub, *rest])
    return commands


COMMANDS = readme_commands()


def test_readme_is_short_and_has_no_internal_references():
    assert len(README.splitlines()) <= 300
    for internal in (r"\bcommit\b", r"\bCI run", r"\bissues?\b", r"\.\./shared"):
        assert not re.search(internal, README), internal
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:3]) for c in COMMANDS])
def test_readme_commands_exist_with_their_options(command):
    words = [w for w in command[:2] if re.fullmatch(r"[a-z][a-z0-9]*", w)]
    groups = ("generate", "convert")
    path = words[:2] if words and words[0] in groups else words[:1]
    res = subprocess.run([sys.executable, "-m", "surrogate", *path, "--help"], capture_output=True, text=True)
    assert res.returncode == 0, f"surrogate {' '.join(path)}: {res.stdout}{res.stderr}"
    options = {t.strip("[]").split("=")[0] for t in command if t.strip("[]").startswith("--")}
    missing = [o for o in options if o not in res.stdout]
    assert not missing, f"surrogate {' '.join(path)} has no {missing}"


def test_readme_paths_and_config_exist():
    for path in set(re.findall(r"`(examples/[\w./]+)`", README)) | {"benchmarks/README.md", "constraints.txt"}:
        assert (ROOT / path).exists(), path
    yaml_block = re.search(r"```yaml\n(.*?)```", README, re.S).group(1)
    cfg_file = ROOT / "examples" / "ns2d_fno.yaml"
    shown = load_config(GridConfig, None, [f"{k.strip()}={v.strip()}" for k, v in (ln.split(":", 1) for ln in yaml_block.splitlines())])
    assert shown == load_config(GridConfig, cfg_file)  # the README shows the demo's config as it is
