"""mtrec: multi-task, RL-ranked and distilled Transformer recommenders."""

from mtrec_helpers.core.profiling import record_memory_from_environment as _record_memory
from mtrec_helpers.core.profiling import start_from_environment as _start_profiling

_start_profiling()  # only when a profiled benchmark asks for it (MTREC_PROFILE)
_record_memory()  # only when a benchmark asks for each cell's peak memory (MTREC_CELL_MEMORY)
