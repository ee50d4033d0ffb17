"""Knowledge index: sync, HTML to text, passages, Whoosh index, ranking, visibility."""
