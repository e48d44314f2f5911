"""The README states what the code declares: its settings table is mmoe_core.settings' table, and the commands it
gives are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

from mmoe_core import settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_lists_every_setting_as_settings_declares_it():
    table = settings.markdown_table()
    assert table.count("\n| `MMOE_") == len(settings.SETTINGS)
    assert table in README, (
        "regenerate the README's table: python -c 'from mmoe_core import settings; print(settings.markdown_table())'"
    )


def test_ci_runs_the_readme_test_command_and_nothing_else():
    assert "bash tests/run.sh" in README
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert commands == ['exec bash "$(dirname "$0")/../tests/run.sh"']
