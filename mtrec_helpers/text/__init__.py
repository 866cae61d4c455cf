"""A pretrained language model as the item feature extractor (notebook 02b): item texts, the
encoder and its cache, the text-aware recommender, the content-only baseline and the cold-start
protocol."""
