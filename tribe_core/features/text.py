"""Text features: a causal language model's hidden states for each word, on the 2 Hz grid.

Semantics of neuralset 0.0.2's ``HuggingFaceText(contextualized=True)``:

- each Word row is encoded through its ``context`` string (the preceding
  words and the word itself, built by the events stage), tokenised without
  special tokens, truncated on the left to the tokenizer's maximum length;
- the word's tokens are the last ``n_tokens(context) - n_tokens(prefix)``
  positions (at least one), ``prefix = context[:-len(word)].rstrip()``;
  their hidden states (all layers) are averaged over tokens, then layers are
  selected/grouped (:mod:`tribe_core.features.layers`);
- word vectors are summed into the 2 Hz grid by start/duration
  (:func:`tribe_core.features.timing.add_static_events`), in windows of
  ``spec.segment_s`` like the reference's 100 s inference segments.

Words without a context are dropped, as the reference's ``RemoveMissing``
does. A stimulus without words gives ``None`` (the workflow then writes an
absent-modality store, which the encoder zero-fills).

Batches are right-padded with the EOS token as pad (the reference's
padding; the reference's pad removal assumes right padding).

Speed, same outputs: for decoder-only models, a word's hidden states depend
only on the tokens up to it, so consecutive words whose context token
sequences are prefixes of a later word's (every word of the first 1024, as
contexts grow until the 1024-word window slides) are read off one forward
over that later context instead of one forward each.

Speed, same maths: a ``LlamaModel`` / ``Qwen3Model`` runs through
:mod:`tribe_core.features.llama_fused` on CUDA devices (``features.fused``):
only the hidden states the layer groups use, reduced to word means on the
device, batches tokenised by a thread ahead of the GPU, layers compiled for
long stimuli (float16 vectors within float16 rounding of the ``transformers``
path's; float32 equal to 1e-5).

Faster, documented approximation (``spec.context_stride`` S > 1, off by
default): once the window slides, each forward serves up to S consecutive
words, every one read inside the context of the group's last word, so a word
sees between ``1024 - S + 1`` and 1024 preceding words instead of exactly 1024
(:func:`context_shift` finds and checks the word's tokens in that context; a
word whose tokens cannot be matched gets its own forward).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.features._hf import check_model_layout, load_model, load_preprocessor
from tribe_core.features.layers import aggregate_layers, subselected_indices
from tribe_core.features.llama_fused import FusedCausalLM, fused_text_model
from tribe_core.features.spec import FeatureSpec
from tribe_core.features.timing import WindowedEventGrid, assemble_blocks, n_feature_steps

if TYPE_CHECKING:
    import pandas as pd


def select_words(events: pd.DataFrame, contextualized: bool = True) -> pd.DataFrame:
    """The Word rows that get a vector: text, start time (and context), sorted by start.

    A missing duration counts as 0 (the word still marks its 2 Hz step).
    """
    import pandas as pd

    needed = {"start", "duration", "text"} | ({"context"} if contextualized else set())
    missing = needed - set(events.columns)
    if missing:
        raise TribeInputError(f"events table lacks column(s) {sorted(missing)}")
    words = events[events["type"] == "Word"] if "type" in events.columns else events
    text = words["text"].fillna("").astype(str)
    keep = (text.str.len() > 0) & pd.to_numeric(words["start"], errors="coerce").notna()
    if contextualized:
        keep &= words["context"].fillna("").astype(str).str.len() > 0
    words = words[keep].copy()
    words["start"] = words["start"].astype(float)
    words["duration"] = pd.to_numeric(words["duration"], errors="coerce").fillna(0.0).clip(lower=0)
    return words.sort_values("start", kind="stable")


def load_text_model(spec: FeatureSpec) -> tuple[torch.nn.Module, Any]:
    """Model and tokenizer (left truncation, right padding, EOS as pad)."""
    check_model_layout(spec)  # from the config, before loading any weight
    tokenizer = load_preprocessor(spec, "tokenizer", truncation_side="left")
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TribeConfigError(
                f"text model {spec.model!r}: its tokenizer has neither a pad nor an EOS token"
            )
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(spec)
    return model, tokenizer


# Decoder-only families: the hidden state at a position depends only on the
# tokens before it, so words whose contexts are token prefixes of one another
# can be read off a single forward (see ``plan_shared_contexts``).
CAUSAL_MODEL_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phi",
        "phi3",
        "gpt2",
        "gpt_neox",
        "gptj",
        "opt",
        "falcon",
        "olmo",
        "olmo2",
        "granite",
        "smollm3",
        "stablelm",
        "starcoder2",
        "cohere",
    }
)


def plan_shared_contexts(token_ids: Sequence[Sequence[int]]) -> list[list[int]]:
    """Group consecutive words whose token sequences are prefixes of the group's last.

    Returns lists of word indices; the last index of each group has the
    longest sequence, and one forward over it gives every member's states.
    """
    groups: list[list[int]] = []
    current: Sequence[int] = ()
    for i, ids in enumerate(token_ids):
        if groups and len(ids) >= len(current) and list(ids[: len(current)]) == list(current):
            groups[-1].append(i)
        else:
            groups.append([i])
        current = ids
    return groups


# Tokens at the start of a later context that may differ from the same words
# inside an earlier context (the first word loses its leading space, a
# sentence start is capitalised): never used to place a word.
_CONTEXT_HEAD_TOKENS = 8
# How far (in tokens) the measured shift may lie from the one expected from
# the words' own token counts.
_SHIFT_TOLERANCE = 2


def context_shift(
    earlier: Sequence[int], later: Sequence[int], expected: int, head: int = _CONTEXT_HEAD_TOKENS
) -> int | None:
    """Token shift ``d`` with ``earlier[t + d] == later[t]`` for every ``t >= head`` they share.

    ``earlier`` is a word's context, ``later`` the context of a later word,
    which starts some words further on; ``expected`` is the shift implied by
    token counts. The shift nearest ``expected`` (within a small tolerance)
    whose whole overlap matches is returned (the nearest, so that text that
    repeats itself cannot place a word at another occurrence), else ``None``.
    """
    for d in sorted(
        range(expected - _SHIFT_TOLERANCE, expected + _SHIFT_TOLERANCE + 1),
        key=lambda x: abs(x - expected),
    ):
        stop = len(earlier) - d  # end of the overlap in ``later``
        if d < 0 or stop <= head or stop > len(later):
            continue
        if list(earlier[head + d :]) == list(later[head:stop]):
            return d
    return None


def _merge_window(
    rows: list[tuple[list[int], list[tuple[int, int, int]]]],
) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
    """Read the members of ``rows`` off the last row's forward where their tokens match.

    Rows whose tokens cannot be placed keep their own forward. Member stops
    are moved into the last row's token positions.
    """
    head_ids, head_members = rows[-1]
    own: list[tuple[list[int], list[tuple[int, int, int]]]] = []
    moved: list[tuple[int, int, int]] = []
    counts = [sum(max(1, n) for _, _, n in members) for _, members in rows]
    for r, (ids, members) in enumerate(rows[:-1]):
        n_after = sum(counts[r + 1 :])  # tokens of the later words, at the head's end
        expected = len(ids) - (len(head_ids) - n_after)
        shift = context_shift(ids, head_ids, expected)
        placed = [(i, stop - shift, n) for i, stop, n in members] if shift is not None else []
        if placed and all(stop - max(1, n) >= _CONTEXT_HEAD_TOKENS for _, stop, n in placed):
            moved.extend(placed)
        else:
            own.append((ids, members))
    return [*own, (head_ids, moved + head_members)]


def _word_spans(
    tokenizer: Any, words: Sequence[str], contexts: Sequence[str], contextualized: bool
) -> tuple[list[list[int]], list[int]]:
    """Token ids of each context (left-truncated) and each word's token count."""
    ids = tokenizer(list(contexts), add_special_tokens=False, truncation=True)["input_ids"]
    if not contextualized:
        return ids, [len(x) for x in ids]
    prefixes = [c[: -len(w)].rstrip() for c, w in zip(contexts, words, strict=True)]
    non_empty = [p for p in prefixes if p]
    counts = (
        iter(len(x) for x in tokenizer(non_empty, add_special_tokens=False)["input_ids"])
        if non_empty
        else iter(())
    )
    n_prefix = [next(counts) if p else 0 for p in prefixes]
    return ids, [len(x) - n for x, n in zip(ids, n_prefix, strict=True)]


def _exact_rows(
    tokenizer: Any,
    words: Sequence[str],
    contexts: Sequence[str],
    spec: FeatureSpec,
    share: bool,
    block: int = 256,
) -> Iterator[tuple[list[int], list[tuple[int, int, int]]]]:
    """Yield forward rows: ``(token ids, [(word index, stop, n_target), ...])``, exact.

    Contexts are tokenised ``block`` words at a time and a row is yielded as
    soon as its group closes, so only the open group's ids are held.
    """
    row_ids: list[int] | None = None
    members: list[tuple[int, int, int]] = []
    for first in range(0, len(words), block):
        ids, n_target = _word_spans(
            tokenizer, words[first : first + block], contexts[first : first + block],
            spec.contextualized,
        )  # fmt: skip
        for offset, (seq, n) in enumerate(zip(ids, n_target, strict=True)):
            extends = (
                share
                and row_ids is not None
                and len(seq) >= len(row_ids)
                and seq[: len(row_ids)] == row_ids
            )
            if row_ids is not None and not extends:
                yield row_ids, members
                members = []
            row_ids = list(seq)
            members.append((first + offset, len(seq), n))
    if row_ids is not None:
        yield row_ids, members


def _planned_rows(
    tokenizer: Any,
    words: Sequence[str],
    contexts: Sequence[str],
    spec: FeatureSpec,
    share: bool,
    block: int = 256,
) -> Iterator[tuple[list[int], list[tuple[int, int, int]]]]:
    """The forward rows: exact ones, merged ``spec.context_stride`` words at a time if > 1.

    Merged windows may yield a row of earlier words after the row that reads
    later ones (a word whose tokens could not be placed keeps its own row).
    """
    rows = _exact_rows(tokenizer, words, contexts, spec, share, block)
    stride = spec.context_stride if share else 1
    if stride <= 1:
        yield from rows
        return
    window: list[tuple[list[int], list[tuple[int, int, int]]]] = []
    for row in rows:
        if window and row[1][-1][0] - window[0][1][-1][0] >= stride:
            yield from _merge_window(window)
            window = []
        window.append(row)
    if window:
        yield from _merge_window(window)


def _estimate_forwards(contexts: Sequence[str], share: bool) -> int:
    """Forwards a stimulus needs, from its context strings (a string prefix shares a forward).

    An estimate for :meth:`FusedCausalLM.plan` (token prefixes decide in the end).
    """
    if not share:
        return len(contexts)
    return sum(
        1 for i in range(len(contexts)) if i == 0 or not contexts[i].startswith(contexts[i - 1])
    )


def _states_used(n_states: int, spec: FeatureSpec) -> tuple[list[int], list[int]]:
    """``(keep, used)``: the states ``cache_n_layers`` keeps and those the layer groups use.

    ``used`` (hidden-state indices) are the states with a non-zero weight in
    :func:`aggregate_layers` of the kept ones; the others need no computing.
    """
    keep = subselected_indices(n_states, spec.layer_subselection)
    probe = aggregate_layers(np.eye(len(keep)), spec.layers, spec.layer_aggregation)
    used = [keep[j] for j in np.flatnonzero(np.abs(probe).sum(axis=0))]
    return keep, sorted(set(used))


def _iter_batches_hf(
    model: torch.nn.Module,
    rows: Iterator[tuple[list[int], list[tuple[int, int, int]]]],
    pad_id: int,
    spec: FeatureSpec,
) -> Iterator[tuple[list[tuple[int, int, int]], np.ndarray]]:
    """``(members, vectors [members, L, D])`` per row: ``transformers``' forward, every state."""
    device = torch.device(spec.device)
    while batch := list(itertools.islice(rows, spec.batch_size)):
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (ids, _) in enumerate(batch):
            input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[r, : len(ids)] = 1
        states = model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            output_hidden_states=True,
        ).hidden_states
        keep = subselected_indices(len(states), spec.layer_subselection)
        hidden = torch.stack([states[i] for i in keep])  # [L', B, tokens, D]
        for r, (_, members) in enumerate(batch):
            vectors = (
                torch.stack(
                    [
                        aggregate_layers(
                            hidden[:, r, stop - max(1, n) : stop].float().mean(dim=1),
                            spec.layers,
                            spec.layer_aggregation,
                        )
                        for _, stop, n in members
                    ]
                )
                .cpu()
                .numpy()
            )  # one transfer per row: [members, L, D]
            yield members, vectors


_Members = list[tuple[int, int, int]]
# The fused path's tokenizer calls (words each) and batches prepared ahead: the
# first forward waits for one small call (a word's 1,024-word context and its
# prefix took 2.5 ms of one core to tokenise on a 2-core development machine), and
# the later calls, made by the thread, are hidden behind the GPU's work on the
# batches already prepared.
_FUSED_BLOCK = 32
_READ_AHEAD = 4


def _host_batches(
    rows: Iterator[tuple[list[int], list[tuple[int, int, int]]]],
    batch_size: int,
    pad_id: int,
    pin: bool,
) -> Iterator[tuple[_Members, list[torch.Tensor]]]:
    """Per batch: its members and ``[input_ids, positions, owners, counts]`` on the host.

    ``positions`` are the flat positions ``row * width + token`` of every
    member's tokens, ``owners`` the member each belongs to, ``counts`` the
    tokens per member (see :meth:`FusedCausalLM.word_means`).
    """
    while batch := list(itertools.islice(rows, batch_size)):
        width = max(len(ids) for ids, _ in batch)
        input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
        members: _Members = []
        starts, lengths = [], []
        for r, (ids, row_members) in enumerate(batch):
            input_ids[r, : len(ids)] = ids
            for member in row_members:
                _, stop, n = member
                members.append(member)
                starts.append(r * width + stop - max(1, n))
                lengths.append(max(1, n))
        n_tokens = np.asarray(lengths, dtype=np.int64)
        owners = np.repeat(np.arange(len(members), dtype=np.int64), n_tokens)
        first = np.repeat(np.cumsum(n_tokens) - n_tokens, n_tokens)
        offsets = np.arange(int(n_tokens.sum()), dtype=np.int64) - first
        positions = np.repeat(np.asarray(starts, dtype=np.int64), n_tokens) + offsets
        host = [torch.from_numpy(a) for a in (input_ids, positions, owners)]
        host.append(torch.from_numpy(n_tokens.astype(np.float32)))
        yield members, [t.pin_memory() for t in host] if pin else host


_T = TypeVar("_T")


def _read_ahead(items: Iterator[_T], depth: int) -> Iterator[_T]:
    """``items``, produced by a thread up to ``depth`` ahead.

    The fast tokenizers release the GIL, so tokenising and padding the next
    batches overlap the GPU's work on this one. An error in the thread is
    raised here; closing this generator stops the thread.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as exc:  # re-raised in the consumer
            put("error", exc)

    thread = threading.Thread(target=pump, name="text-batches", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _iter_batches_fused(
    fused: FusedCausalLM,
    rows: Iterator[tuple[list[int], list[tuple[int, int, int]]]],
    pad_id: int,
    spec: FeatureSpec,
) -> Iterator[tuple[_Members, np.ndarray]]:
    """``(members, vectors [members, L, D])`` per batch, through the fused decoder.

    Only the states the layer groups use are computed, reduced to word means
    on the device. Batches are tokenised and padded by a thread ahead of the
    GPU, and each batch's vectors come back in one copy, read once the next
    batch is queued: no per-word host work waits for the GPU, nor the GPU for it.
    """
    device = fused.device
    cuda = device.type == "cuda"
    keep, used = _states_used(fused.n_states, spec)
    slots = {s: k for k, s in enumerate(used)}
    pending: tuple[_Members, torch.Tensor, Any] | None = None
    host_batches = _host_batches(rows, spec.batch_size, pad_id, cuda)
    for members, host in _read_ahead(host_batches, _READ_AHEAD):
        ids, positions, owners, counts = (t.to(device, non_blocking=cuda) for t in host)
        means = fused.word_means(ids, positions, owners, counts, used)  # [used, M, D]
        zero = means.new_zeros(means.shape[1:])
        kept = torch.stack([means[slots[s]] if s in slots else zero for s in keep])
        vectors = aggregate_layers(kept, spec.layers, spec.layer_aggregation)  # [L, M, D]
        out = vectors.transpose(0, 1).contiguous().to("cpu", non_blocking=cuda)  # pinned
        done = None
        if cuda:
            done = torch.cuda.Event()
            done.record()
        if pending is not None:
            yield _finish(pending)
        pending = (members, out, done)
    if pending is not None:
        yield _finish(pending)


def _finish(
    pending: tuple[_Members, torch.Tensor, Any],
) -> tuple[_Members, np.ndarray]:
    members, out, done = pending
    if done is not None:
        done.synchronize()
    return members, out.numpy()


@torch.no_grad()
def iter_word_vectors(
    model: torch.nn.Module,
    tokenizer: Any,
    words: Sequence[str],
    contexts: Sequence[str],
    spec: FeatureSpec,
    share_contexts: bool | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(word index, vector [L, D] float32)`` for ``N`` words.

    Parameters
    ----------
    contexts
        The strings the model reads (the words themselves when
        ``spec.contextualized`` is false).
    share_contexts
        Read words whose contexts are token prefixes of a later word's
        context off that word's forward (causal models only; default: on
        for the families in ``CAUSAL_MODEL_TYPES``). ``False`` runs one
        context per word, as the reference.

    A ``LlamaModel`` / ``Qwen3Model`` runs through
    :mod:`tribe_core.features.llama_fused` (same maths, fused kernels, only
    the states used) unless ``features.fused`` (``spec.fused``) says ``off``
    or, with ``auto``, the model is not on a CUDA device.
    """
    if share_contexts is None:
        share_contexts = getattr(model.config, "model_type", "") in CAUSAL_MODEL_TYPES
    pad_id = tokenizer.pad_token_id
    fused = fused_text_model(model, spec.fused)
    if fused is not None:
        fused.plan(_estimate_forwards(contexts, share_contexts))
        # small tokenizer calls: the first batch starts after a few contexts, not 256
        rows = _planned_rows(tokenizer, words, contexts, spec, share_contexts, _FUSED_BLOCK)
        batches = _iter_batches_fused(fused, rows, pad_id, spec)
    else:
        rows = _planned_rows(tokenizer, words, contexts, spec, share_contexts)
        batches = _iter_batches_hf(model, rows, pad_id, spec)
    pending: dict[int, np.ndarray] = {}  # merged windows may finish a later word first
    next_word = 0
    for members, vectors in batches:
        for (i, _, _), vector in zip(members, vectors, strict=True):
            if np.isnan(vector).any():
                raise TribeInputError(
                    f"text model {spec.model!r} produced NaN for word {words[i]!r}"
                )
            pending[i] = vector
        while next_word in pending:
            yield next_word, pending.pop(next_word)
            next_word += 1
    if pending:
        raise RuntimeError(f"words {sorted(pending)[:5]}... were encoded but not released")


def word_vectors(
    model: torch.nn.Module,
    tokenizer: Any,
    words: Sequence[str],
    contexts: Sequence[str],
    spec: FeatureSpec,
    share_contexts: bool | None = None,
) -> np.ndarray:
    """Vectors ``[N, L, D]`` (float32) of ``N`` words (see :func:`iter_word_vectors`)."""
    out: list[np.ndarray | None] = [None] * len(words)
    for i, vector in iter_word_vectors(model, tokenizer, words, contexts, spec, share_contexts):
        out[i] = vector
    return np.stack(out).astype(np.float32, copy=False)  # type: ignore[arg-type]


def iter_text_blocks_from_words(
    words: Sequence[str],
    contexts: Sequence[str],
    starts: np.ndarray,
    durations: np.ndarray,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any],
    share_contexts: bool | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks ``(first_step, [L, D, n])`` of the text features of ``N`` words in start order.

    Each word vector is summed into its window of ``spec.segment_s`` as it
    comes, and a window is yielded once no later word can reach it, so
    memory is a few windows, not the grid nor ``N`` vectors.
    """
    net, tokenizer = model
    n_steps = n_feature_steps(duration_s, spec.frequency_hz)
    if np.any(np.diff(np.asarray(starts, float)) < 0):
        raise ValueError("words must be in start order")
    grid: WindowedEventGrid | None = None
    segment_s = spec.segment_s or n_steps / spec.frequency_hz  # None: one window
    for i, vector in iter_word_vectors(net, tokenizer, words, contexts, spec, share_contexts):
        if grid is None:
            grid = WindowedEventGrid(n_steps, spec.frequency_hz, segment_s, vector.shape)
        yield from grid.add(starts[i], durations[i], vector)
    if grid is not None:
        yield from grid.finish()


def text_features_from_words(
    words: Sequence[str],
    contexts: Sequence[str],
    starts: np.ndarray,
    durations: np.ndarray,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any],
    share_contexts: bool | None = None,
) -> np.ndarray:
    """Features ``[L, D, T]`` of ``N`` words (text, context, start, duration in seconds)."""
    blocks = iter_text_blocks_from_words(
        words, contexts, starts, durations, spec, duration_s, model, share_contexts
    )
    grid = assemble_blocks(blocks, n_feature_steps(duration_s, spec.frequency_hz))
    assert grid is not None
    return grid


def _usable_words(
    events: pd.DataFrame, spec: FeatureSpec, word_slice: slice | None
) -> pd.DataFrame:
    words = select_words(events, spec.contextualized)
    return words.iloc[word_slice] if word_slice is not None else words


def iter_text_feature_blocks(
    events: pd.DataFrame,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any] | None = None,
    word_slice: slice | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """The text features of :func:`extract_text_features` as ``(first_step, [L, D, n])`` blocks.

    Yields nothing when the stimulus (or shard) has no usable word.
    """
    words = _usable_words(events, spec, word_slice)
    if words.empty:
        return
    texts = words["text"].astype(str).tolist()
    contexts = words["context"].astype(str).tolist() if spec.contextualized else texts
    yield from iter_text_blocks_from_words(
        texts,
        contexts,
        words["start"].to_numpy(float),
        words["duration"].to_numpy(float),
        spec,
        duration_s,
        model if model is not None else load_text_model(spec),
    )


def extract_text_features(
    events: pd.DataFrame,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any] | None = None,
    word_slice: slice | None = None,
) -> np.ndarray | None:
    """Text features ``[L, D, T]`` (float32, ``T = n_feature_steps(duration_s)``).

    Parameters
    ----------
    events
        The stimulus' events (``events.tsv``); Word rows with ``start``,
        ``duration``, ``text`` and ``context`` are used.
    spec
        Text feature settings (see :func:`feature_specs_from_config`).
    duration_s
        Stimulus duration, which sets the number of 2 Hz steps.
    model
        Optional preloaded ``(model, tokenizer)`` from :func:`load_text_model`.
    word_slice
        Only these words (positions among the usable words, in time order):
        a shard. Each word's vector depends only on its own context, so the
        sum of the shards' outputs is the unsharded output.

    Returns
    -------
    ``[L, D, T]`` array, or ``None`` when the stimulus (or shard) has no usable word.
    """
    blocks = iter_text_feature_blocks(events, spec, duration_s, model, word_slice)
    return assemble_blocks(blocks, n_feature_steps(duration_s, spec.frequency_hz))
