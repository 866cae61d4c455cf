"""The course tooling around the chapters: the notebook runner (`make run`), parameters and presets,
the launcher for several processes, the book, benchmarks and the results page. It imports the
chapters; no chapter imports it."""
