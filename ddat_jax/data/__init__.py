"""Data layer: AVEC 2016 readers/writers, the embedded corpus, corpus model, preprocessing."""
