"""The stream journal: every generation's events, kept for replay (/history/replay)."""
