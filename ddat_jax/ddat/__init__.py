"""DDAT: stage 1 (difficulty retrieval), difficulty signals, stage 2 (exploitation)."""
