"""The synthetic video world: a deterministic generator of labelled, really encoded clips."""
