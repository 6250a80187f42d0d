"""The end-to-end benchmark runs and its estimate is built from what it measured (no timing is asserted)."""

import pytest

from bench.end_to_end import end_to_end_table


def test_end_to_end_rows_for_each_size_with_consistent_estimate():
    rows = end_to_end_table([None], repeats=1, sizes=((96, 64), (300, 200)))
    assert [row["photo"] for row in rows] == ["96x64", "300x200"]
    for row in rows:
        assert row["model"] == "balanced"
        assert row["network_input"] == "384x256"  # the working size: 256 on the short side, 3:2 kept
        assert row["eccv16_total_ms"] == pytest.approx(row["total_ms"] - row["forward_ms"] + row["eccv16_forward_ms"])
        assert row["speedup_end_to_end"] == pytest.approx(row["eccv16_total_ms"] / row["total_ms"])
        assert row["forward_ms"] > 0 and row["eccv16_forward_ms"] > 0


def test_rerunning_the_benchmarks_keeps_the_hand_written_part(tmp_path):
    from bench.__main__ import HAND_WRITTEN, main

    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Benchmark results\n\nold generated table\n\n{HAND_WRITTEN}\n\n## Targets\n\nwritten by hand\n")
    assert main(["--sections", "gpu", "--out", str(tmp_path)]) == 0
    text = results.read_text()
    assert "old generated table" not in text and "## GPU path" in text
    assert text.endswith(f"{HAND_WRITTEN}\n\n## Targets\n\nwritten by hand\n")
    assert text.index("## GPU path") < text.index(HAND_WRITTEN)


def test_shipped_models_are_timed_as_users_load_them(weights_dir):
    from bench.shipped import shipped_times

    rows = shipped_times(repeats=2, photo=(64, 48), weights_dir=weights_dir)
    assert {row["model"] for row in rows} == {"balanced", "vivid"}
    assert all(row["median_ms"] > 0 and row["photo"] == "64x48" and row["parameters_m"] > 0 for row in rows)
    chosen = shipped_times(repeats=1, photo=(64, 48), weights_dir=weights_dir, names=["vivid"])
    assert [row["model"] for row in chosen] == ["vivid"]
