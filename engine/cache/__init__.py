"""Caches: byte-budget memory LRU (frames, embeddings, masks), disk spill, cache keys."""
