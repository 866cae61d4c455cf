"""What every chapter uses: the training engine, full-ranking evaluation and paired comparisons, the
artifact-flow table (which notebook writes which folder), atomic and safe persistence, devices,
paths, the results contract and progress display. Nothing here imports a chapter."""
