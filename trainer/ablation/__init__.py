"""``stream-tagger-train ablate <engine>``: each mechanism on against off, several seeds, one budget (docs)."""
