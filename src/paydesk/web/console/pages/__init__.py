"""Console pages: one router per page group, each importable (and testable) alone."""
