"""The README's Python quick start runs as written."""

import os
import re

from harness import python_blocks

README = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"
)


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert blocks, "README has no Python block"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    accuracy = float(re.search(r"linear probe: ([\d.]+)%", printed).group(1))
    assert 0 <= accuracy <= 100
    assert (tmp_path / "simclr.keras").exists()


def test_readme_first_commands_match_ci():
    with open(README) as readme:
        commands = re.search(
            r"```bash\n(.*?)```", readme.read(), flags=re.DOTALL
        ).group(1)
    test_command = commands.strip().splitlines()[1]
    with open(os.path.join(os.path.dirname(README), ".ci", "run")) as ci:
        assert test_command in ci.read()
