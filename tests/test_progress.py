"""Plain progress (not a terminal): lines in the order things happen, few per model."""

from __future__ import annotations

import io

from wxops.progress import PlainReporter


def test_plain_reporter_writes_in_order_with_each_models_last_epoch() -> None:
    out = io.StringIO()
    with PlainReporter(out) as report:
        with report.stage("split"):
            pass
        boosting = report.epochs("gbm", 1)  # boosting: stages reported past the announced 1
        for stage in range(10):
            boosting(stage, 1.0 / (stage + 1), None)
        mlp = report.epochs("mlp", 8)
        for epoch in range(8):
            mlp(epoch, 0.5, 0.4)
        report.info("version 1 is champion (1.0.0, initial)")
        report.skip("features", "cached")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("split (") and lines[0].endswith(" s)")
    assert [line.split(":")[0].strip() for line in lines[1:6]] == ["train gbm"] * 5
    assert lines[5] == "  train gbm: 10 train 0.100"  # its last stage, before the next model
    assert lines[6:10] == [f"  train mlp: {n}/8 train 0.500 val 0.400" for n in (2, 4, 6, 8)]
    assert lines[10:] == ["version 1 is champion (1.0.0, initial)", "features: cached"]
