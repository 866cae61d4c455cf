"""Ensembles of the course's recommenders: batched scores, normalisation, fusion and the final report.

- :mod:`.scores` — every member's catalogue scores for all users on one split, and the per-user
  z-score normalisation that puts them on one scale;
- :mod:`.fusion` — softmax-weighted fusion with weights fitted on validation, uniform averaging
  and reciprocal-rank fusion;
- :mod:`.members` — loading each stage's saved model from the artifacts folder as a member;
- :mod:`.beyond_accuracy` — intra-list diversity and catalogue coverage with bootstrap intervals;
- :mod:`.report` — one record per model for metrics.json and the final table.
"""
