"""Community reputation mirror and knowledge-gap mining (built in a later issue)."""
