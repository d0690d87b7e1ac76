"""Shared checks of the example scripts' command lines."""

import re

import pytest


def _option_entries(help_text: str) -> dict[str, str]:
    """``--flag`` -> its whole entry (flag line plus wrapped description) in ``--help`` output."""
    entries: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        m = re.match(r"^  (-\S+)", line)
        if m:
            current = m.group(1).rstrip(",")
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


@pytest.fixture
def assert_help_shows_defaults(capsys):
    """Run ``parse(["--help"])`` and check that every option has help text and its default.

    ``ArgumentDefaultsHelpFormatter`` appends ``(default: ...)`` only to options that have help
    text, so a missing ``(default:`` means a missing description or formatter.
    """

    def check(parse, *expected: str) -> dict[str, str]:
        with pytest.raises(SystemExit) as exit_info:
            parse(["--help"])
        assert exit_info.value.code == 0
        entries = _option_entries(capsys.readouterr().out)
        entries.pop("-h", None)
        assert entries, "no options found in --help"
        undocumented = [k for k, v in entries.items() if "(default:" not in v]
        assert not undocumented, f"options without help text or default: {undocumented}"
        # argparse wraps lines at spaces and after hyphens: compare without whitespace
        text = "".join("".join(entries.values()).split())
        for item in expected:
            assert "".join(item.split()) in text, f"{item!r} not in --help"
        return entries

    return check
