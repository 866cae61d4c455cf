"""mtrec: multi-task, RL-ranked and distilled Transformer recommenders."""

from mtrec_helpers.memory import fix_mmap_threshold

fix_mmap_threshold()  # see mtrec_helpers/memory.py: large freed blocks go back to the system
