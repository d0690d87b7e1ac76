"""examples/laplace_bridge.py runs end to end with tiny settings and writes its figures and table."""

import importlib.util
import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "laplace_bridge.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load():
    spec = importlib.util.spec_from_file_location("laplace_bridge_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_shows_defaults(assert_help_shows_defaults):
    assert_help_shows_defaults(
        _load().main, "(default: 2000)", "(default: 1000)", "(default: outputs/laplace_bridge)"
    )


def test_tiny_run_writes_png_and_table(tmp_path, capsys):
    module = _load()
    out = module.main(
        [
            "--steps",
            "200",
            "--mc-samples",
            "64",
            "--grid",
            "30",
            "--timing-repeats",
            "1",
            "--out-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    for key in ("png", "reliability_png"):
        data = Path(out[key]).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    assert out["round_trip_error"] < 1e-5  # Dirichlet -> bridge -> bridge is exact
    table = Path(out["table_path"]).read_text()
    printed = capsys.readouterr().out
    assert table == out["table"] and table in printed
    assert "How to read this" in printed
    rows = {}
    for line in table.splitlines():
        m = re.match(r"\|\s*([a-z\- ]+?)\s*\|" + r"\s*([0-9.]+)\s*\|" * 5, line)
        if m:
            rows[m.group(1)] = [float(v) for v in m.groups()[1:]]
    assert set(rows) == set(module.METHODS)
    for accuracy, ece, nll, tv, ms in rows.values():
        assert 0.6 < accuracy <= 1.0  # 200 steps already beat chance (0.1) by far
        assert 0.0 <= ece <= 1.0 and nll > 0 and 0.0 <= tv <= 1.0 and ms > 0
    assert rows["monte carlo"][3] == 0.0
    # the uncertainty scores: AUROCs, one row per score, also in the saved table
    assert [r["score"] for r in out["scores"]] == [
        "plug-in confidence",
        "monte carlo confidence",
        "bridge mean confidence",
        "bridge precision alpha_0",
    ]
    for r in out["scores"]:
        assert 0.0 <= r["ood"] <= 1.0 and (r["errors"] != r["errors"] or 0.0 <= r["errors"] <= 1.0)
        assert f"| {r['score']:<26} | " in table
