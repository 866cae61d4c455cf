"""mtrec: multi-task, RL-ranked and distilled Transformer recommenders."""
