"""mtrec: multi-task, RL-ranked and distilled Transformer recommenders."""

from mtrec_helpers.core.profiling import start_from_environment as _start_profiling

_start_profiling()  # only when a profiled benchmark asks for it (MTREC_PROFILE)
