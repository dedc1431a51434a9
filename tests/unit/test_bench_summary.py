"""The bench's last line names its figures in the words issue 18 fixes (tools read it)."""

from __future__ import annotations

import re

from bench.report import summary_line

LINE = re.compile(
    r"bench: \d+ events/s enforced, \d+ events/s via HTTP, \d+ events/s via HTTP batches, "
    r"pass-through \d+ events/s, ratio \d+\.\d\d, p99 publish-to-feed \d+ ms at \d+/s via HTTP, "
    r"policy p99 \d+\.\d\d ms, max RSS \d+ MB"
)


def test_the_summary_line_has_every_figure_in_order() -> None:
    line = summary_line(
        {
            "events_per_s": 2104.4,
            "http_per_s": 512.0,
            "http_batch_per_s": 2230.7,
            "passthrough_per_s": 8000.0,
            "ratio": 0.263,
            "p99_ms": 87.2,
            "rate": 500.0,
            "policy_p99_ms": 0.912,
            "max_rss_mb": 211.4,
        }
    )
    assert LINE.fullmatch(line), line
    assert "2104 events/s enforced, 512 events/s via HTTP, 2231 events/s via HTTP batches" in line
