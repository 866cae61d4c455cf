"""Each item as a sentence a language model can read: title, year, genres, tags, genome tags.

MovieLens titles put a leading article last ("Usual Suspects, The (1995)"); the text puts it back
in front, where a language model trained on ordinary prose expects it. What a release has decides
what the text says: ML-100k and ML-1M give title, year and genres; ml-latest-small adds the tags
users applied; ML-20M and ML-25M add the tag genome's most relevant tags too.
"""

from __future__ import annotations

import re

import pandas as pd

from mtrec_helpers.core.stages import STAGES, ArtifactError
from mtrec_helpers.data.store import ProcessedData

_ARTICLE_LAST = re.compile(
    r"^(?P<name>.+), (?P<article>The|A|An|Les|La|Le|L'|Il|El|Das|Der|Die)(?P<rest> \(.*)?$"
)
_YEAR_AT_END = re.compile(r"\(\d{4}\)\s*$")


def natural_title(title: str) -> str:
    """'Usual Suspects, The (1995)' → 'The Usual Suspects (1995)'; other titles unchanged."""
    match = _ARTICLE_LAST.match(title.strip())
    if not match:
        return title.strip()
    article = match["article"]
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match['name']}{match['rest'] or ''}"


def item_text(title: str, year: int | None, genres: list[str], tags: list[str], genome: list[str]) -> str:
    """One item's text, e.g. 'Toy Story (1995). Genres: Animation, Children's, Comedy. Tags: pixar.'"""
    name = natural_title(title)
    if year is not None and not _YEAR_AT_END.search(name):
        name = f"{name} ({year})"
    parts = [name]
    for label, values in (("Genres", genres), ("Tags", tags), ("Themes", genome)):
        if len(values):
            parts.append(f"{label}: {', '.join(values)}")
    return ". ".join(parts) + "."


def item_texts(data: ProcessedData, genome: bool = False) -> list[str]:
    """The text of every vocabulary index (PAD and MASK get ''), in item-index order; the tag
    genome's themes only with ``genome`` (GroupLens computed them from ratings and reviews over the
    whole release: interaction data, not what a new film has)."""
    items = data.items
    if "tags" not in items or "genome" not in items:
        raise ArtifactError(
            f"{data.folder}: the processed items have no tags columns (written before tags were read). "
            f"Delete it and re-run notebooks/{STAGES[0].notebook}."
        )
    texts = [""] * (data.n_items + 2)
    columns = ("item_idx", "title", "year", "genres", "tags", "genome")
    for index, title, year, genres, tag_list, genome_list in zip(*(items[c] for c in columns), strict=True):
        texts[int(index)] = item_text(
            str(title),
            None if pd.isna(year) else int(year),
            list(genres),
            list(tag_list),
            list(genome_list) if genome else [],
        )
    return texts
