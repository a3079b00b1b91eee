"""Conditions and covariates of the stimuli (sample sheet) and the contrasts between them.

The TSV sample sheet (``stimulus``, ``path``, optional ``language``) may carry a
``condition`` column (a label per stimulus; empty = no condition) and covariate
columns (every other column; numbers, e.g. ``duration_s`` or ``luminance``).
Contrasts come from the config::

    contrasts:
      faces_vs_places: {plus: [faces], minus: [places]}
      faces_vs_rest: {plus: faces, minus: rest}      # every other labelled stimulus
      speech: {plus: [speech]}                       # against zero (sign flips)
      faces_vs_places_lum: {plus: [faces], minus: [places], covariates: [luminance]}

``plus`` and ``minus`` take one condition or a list (the group is every stimulus of
those conditions, each stimulus weighted alike).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tribe_core.errors import TribeConfigError, TribeInputError

#: Sample-sheet columns that are neither the condition nor a covariate.
SHEET_COLUMNS = ("stimulus", "path", "language")
CONDITION_COLUMN = "condition"
#: ``minus: rest`` means every labelled stimulus whose condition is not in ``plus``.
REST = "rest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class SampleConditions:
    """Condition and covariates of each stimulus of a sample sheet.

    Attributes
    ----------
    conditions
        Stimulus -> condition label, or ``None`` when the cell is empty.
    covariates
        Numeric frame indexed by stimulus, one column per covariate (NaN = missing).
    source
        The sample sheet it was read from.
    """

    conditions: dict[str, str | None]
    covariates: pd.DataFrame
    source: str

    @property
    def labels(self) -> list[str]:
        """The distinct condition labels, sorted."""
        return sorted({c for c in self.conditions.values() if c is not None})


@dataclass(frozen=True)
class Contrast:
    """One contrast: ``plus`` conditions minus ``minus`` conditions (empty: against 0)."""

    name: str
    plus: tuple[str, ...]
    minus: tuple[str, ...]
    rest: bool = False
    covariates: tuple[str, ...] = ()

    def describe(self) -> str:
        """``faces - places``, ``faces - rest``, ``speech - 0``."""
        minus = REST if self.rest else (" + ".join(self.minus) if self.minus else "0")
        return f"{' + '.join(self.plus)} - {minus}"


def read_sample_conditions(
    sample_sheet: str | Path, stimuli: Collection[str] | None = None
) -> SampleConditions:
    """Read the ``condition`` and covariate columns of a TSV sample sheet.

    Parameters
    ----------
    sample_sheet
        TSV with columns ``stimulus``, ``path``, optional ``language``, ``condition``
        and numeric covariate columns (any other column).
    stimuli
        Keep (and check) only the rows of these stimuli, e.g. the ones the workflow runs
        when it skips unusable rows; ``None``: every row.

    Returns
    -------
    SampleConditions
        Without a ``condition`` column every stimulus has condition ``None``.

    Raises
    ------
    TribeInputError
        Missing ``stimulus`` column, duplicate stimulus, a condition named ``rest`` or
        not a plain name, or a covariate cell that is not a number (the message names
        the file, the column and the stimulus).
    """
    path = Path(sample_sheet)
    try:
        # Cells stay text here: numbers are parsed per covariate, NA words are not NaN.
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TribeInputError(f"unreadable sample sheet: {exc}", path=path) from exc
    if "stimulus" not in table.columns:
        raise TribeInputError(
            f"sample sheet has no 'stimulus' column (columns: {list(table.columns)})", path=path
        )
    table["stimulus"] = table["stimulus"].str.strip()
    if stimuli is not None:
        table = table[table["stimulus"].isin(set(stimuli))].reset_index(drop=True)
    names = table["stimulus"]
    duplicated = sorted(set(names[names.duplicated()]))
    if duplicated:
        raise TribeInputError(f"stimuli listed twice: {duplicated}", path=path)
    conditions: dict[str, str | None] = {}
    raw = table[CONDITION_COLUMN] if CONDITION_COLUMN in table.columns else None
    for i, name in enumerate(names):
        label = raw.iloc[i].strip() if raw is not None else ""
        if label and (label == REST or not _NAME.match(label)):
            raise TribeInputError(
                f"condition {label!r} of stimulus {name!r} is not allowed: use letters, "
                f"digits, '_', '.', '+', '-' (and not {REST!r}, which contrasts reserve "
                "for every other condition)",
                path=path,
            )
        conditions[name] = label or None
    covariate_columns = [
        c for c in table.columns if c not in SHEET_COLUMNS and c != CONDITION_COLUMN
    ]
    covariates = pd.DataFrame(index=pd.Index(list(names), name="stimulus"))
    for column in covariate_columns:
        cells = table[column].str.strip()
        values = pd.to_numeric(cells.replace("", np.nan), errors="coerce")
        bad = cells[(cells != "") & values.isna()]
        if len(bad):
            i = bad.index[0]
            raise TribeInputError(
                f"covariate column {column!r} holds {bad.iloc[0]!r} for stimulus "
                f"{names.iloc[i]!r}; covariates must be numbers (leave the cell empty "
                "when unknown)",
                path=path,
            )
        covariates[column] = values.to_numpy(dtype=np.float64)
    return SampleConditions(conditions=conditions, covariates=covariates, source=str(path))


def _as_list(value: Any, what: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise TribeConfigError(
            f"contrast {name!r}: {what} must be a condition or a list of conditions, got {value!r}"
        )
    return tuple(dict.fromkeys(v.strip() for v in items))


def parse_contrasts(
    spec: Mapping[str, Any], labels: Iterable[str], covariates: Iterable[str] = ()
) -> dict[str, Contrast]:
    """Check the config's contrasts against the sample sheet's conditions.

    Parameters
    ----------
    spec
        ``{name: {plus: cond | [conds], minus: cond | [conds] | "rest" (optional),
        covariates: [columns] (optional)}}``.
    labels
        The condition labels of the sample sheet.
    covariates
        Its covariate columns.

    Returns
    -------
    dict
        Name -> :class:`Contrast` (``minus: rest`` expanded to the other labels).

    Raises
    ------
    TribeConfigError
        Unknown condition or covariate, empty ``plus``, a condition on both sides,
        ``rest`` with no other condition, or a name unusable as a folder.
    """
    known, known_cov = sorted(set(labels)), list(covariates)
    contrasts = {}
    for name, body in spec.items():
        if not _NAME.match(str(name)):
            raise TribeConfigError(
                f"contrast name {name!r} must be a plain name (letters, digits, '_', '.', "
                "'+', '-'): it names the output folder"
            )
        if not isinstance(body, Mapping):
            raise TribeConfigError(
                f"contrast {name!r} must be a mapping with 'plus' (and 'minus', "
                f"'covariates'), got {body!r}"
            )
        extra = sorted(set(body) - {"plus", "minus", "covariates"})
        if extra:
            raise TribeConfigError(
                f"contrast {name!r} has unknown keys {extra}; allowed: plus, minus, covariates"
            )
        plus = _as_list(body.get("plus"), "plus", name)
        rest = body.get("minus") == REST
        minus = () if rest else _as_list(body.get("minus"), "minus", name)
        if not plus:
            raise TribeConfigError(f"contrast {name!r} needs at least one 'plus' condition")
        unknown = [c for c in plus + minus if c not in known]
        if unknown:
            raise TribeConfigError(
                f"contrast {name!r} names conditions {unknown} that no stimulus has; the "
                f"sample sheet's conditions are {known}"
            )
        both = sorted(set(plus) & set(minus))
        if both:
            raise TribeConfigError(f"contrast {name!r} has {both} on both sides")
        if rest:
            minus = tuple(c for c in known if c not in plus)
            if not minus:
                raise TribeConfigError(
                    f"contrast {name!r}: 'minus: rest' but every condition is in 'plus'"
                )
        cov = _as_list(body.get("covariates"), "covariates", name)
        missing = [c for c in cov if c not in known_cov]
        if missing:
            raise TribeConfigError(
                f"contrast {name!r} names covariates {missing} that are not columns of the "
                f"sample sheet (covariate columns: {known_cov})"
            )
        contrasts[str(name)] = Contrast(str(name), plus, minus, rest, cov)
    return contrasts


def contrast_design(
    contrast: Contrast, samples: SampleConditions
) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """The stimuli of a contrast, their group and covariate values.

    Returns
    -------
    groups
        Stimulus -> ``+1`` (plus) or ``-1`` (minus), sorted by stimulus; stimuli in
        neither group (or without a condition) are left out.
    covariates
        Covariate -> {stimulus: value} for the stimuli of ``groups``.

    Raises
    ------
    TribeConfigError
        A group has fewer than 2 stimuli, or a stimulus of the contrast lacks a value of
        one of its covariates.
    """
    groups = {}
    for stimulus, label in sorted(samples.conditions.items()):
        if label in contrast.plus:
            groups[stimulus] = 1
        elif label in contrast.minus:
            groups[stimulus] = -1
    n_plus = sum(g > 0 for g in groups.values())
    n_minus = len(groups) - n_plus
    if n_plus < 2 or (contrast.minus and n_minus < 2):
        sides = f"{n_plus} in plus {list(contrast.plus)}"
        if contrast.minus:
            sides += f" and {n_minus} in minus {list(contrast.minus)}"
        raise TribeConfigError(
            f"contrast {contrast.name!r} has {sides}; each side needs at least 2 stimuli "
            f"for a t statistic ({samples.source})"
        )
    values: dict[str, dict[str, float]] = {}
    for column in contrast.covariates:
        cells = samples.covariates.loc[list(groups), column]
        missing = list(cells.index[cells.isna()])
        if missing:
            raise TribeConfigError(
                f"contrast {contrast.name!r} uses covariate {column!r}, which is empty for "
                f"stimuli {missing} in {samples.source}"
            )
        values[column] = {s: float(v) for s, v in cells.items()}
    return groups, values
