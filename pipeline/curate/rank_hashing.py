"""The words of many texts at once, and their hashes, in numpy: the words rank_features'
text_words finds and the hashes scikit-learn's murmurhash3_32 gives them (seed 0, positive),
without cutting a day's abstracts into a quarter of a million Python strings first.

A text is lower-cased and encoded as UTF-8; a word is a run of bytes [a-z0-9_] from its first
letter or "_" on, at least two long (every other byte, non-ASCII ones included, separates
words, as the regex [a-z_][a-z0-9_]+ does on the text), unless it is one of scikit-learn's
English stop words. The hash is MurmurHash3_x86_32 of the word's bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Hashes = npt.NDArray[np.uint32]
Index = npt.NDArray[np.int64]

_C1 = np.uint32(0xCC9E2D51)
_C2 = np.uint32(0x1B873593)
_N = np.uint32(0xE6546B64)
_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)
_LOW_BYTES = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF], dtype=np.uint32)  # by count
_PAD = b"\0\0\0\0"  # after the last text: a 4-byte read from any byte stays inside the buffer


def _words_at(buffer: bytes) -> Hashes:
    """The buffer read as a little-endian uint32 starting at each byte (one view, no copy);
    the buffer ends in _PAD."""
    view: Hashes = np.ndarray((len(buffer) - 3,), dtype="<u4", buffer=buffer, strides=(1,))
    return view


def _rotl(x: Hashes, r: int) -> Hashes:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def murmurhash3(at: Hashes, starts: Index, lengths: Index) -> Hashes:
    """MurmurHash3_x86_32 (seed 0) of each byte string starts[i] .. starts[i] + lengths[i] of the
    buffer `at` views (see _words_at), as scikit-learn's murmurhash3_32(positive=True)."""
    h = np.zeros(len(starts), dtype=np.uint32)
    blocks = lengths >> 2
    live = np.flatnonzero(blocks)
    k = 0
    while len(live):  # the k-th 4-byte block of each string that has one
        k1 = at[starts[live] + 4 * k]
        k1 *= _C1
        k1 = _rotl(k1, 15)
        k1 *= _C2
        x = _rotl(h[live] ^ k1, 13)
        x *= np.uint32(5)
        x += _N
        h[live] = x
        k += 1
        live = live[blocks[live] > k]
    # The last 1-3 bytes; for none the masked block is 0 and so is what it mixes in.
    k1 = at[starts + (blocks << 2)] & _LOW_BYTES[lengths & 3]
    k1 *= _C1
    k1 = _rotl(k1, 15)
    k1 *= _C2
    h ^= k1
    h ^= lengths.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= _F1
    h ^= h >> np.uint32(13)
    h *= _F2
    h ^= h >> np.uint32(16)
    return h


class _StopWords:
    """The stop words' hashes in a table indexed by their low bits, with the words' bytes to
    confirm a match (a word whose hash is a stop word's is not necessarily one)."""

    def __init__(self, words: Sequence[str]) -> None:
        encoded = sorted({w.encode() for w in words})
        lengths = np.array([len(w) for w in encoded], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        hashes = murmurhash3(_words_at(b"".join(encoded) + _PAD), starts, lengths)
        bits = 12
        while len(np.unique(hashes & np.uint32(2**bits - 1))) < len(hashes):
            bits += 1  # the fewest low bits that tell the stop words apart
        self.mask = np.uint32(2**bits - 1)
        self.slot = np.full(2**bits, -1, dtype=np.int64)
        self.slot[hashes & self.mask] = np.arange(len(hashes))
        self.hashes = hashes
        self.lengths = lengths
        self.blocks = (int(lengths.max()) + 3) // 4
        padded = np.zeros((len(encoded), 4 * self.blocks), dtype=np.uint8)
        for i, w in enumerate(encoded):
            padded[i, :len(w)] = np.frombuffer(w, dtype=np.uint8)
        self.words = padded.view("<u4")  # each stop word as `blocks` uint32, zero padded

    def find(self, at: Hashes, starts: Index, lengths: Index, hashes: Hashes) -> Index:
        """Positions of the words that are stop words."""
        slot = self.slot[hashes & self.mask]
        found = np.flatnonzero(slot >= 0)
        slot = slot[found]
        same = (self.hashes[slot] == hashes[found]) & (self.lengths[slot] == lengths[found])
        found, slot = found[same], slot[same]
        same = np.ones(len(found), dtype=bool)
        last = len(at) - 1
        for j in range(self.blocks):  # beyond a word's end the mask is 0: any read will do
            mask = _LOW_BYTES[np.clip(lengths[found] - 4 * j, 0, 4)]
            block = at[np.minimum(starts[found] + 4 * j, last)]
            same &= (block & mask) == self.words[slot, j]
        stop: Index = found[same]
        return stop


@functools.cache
def _stop_words() -> _StopWords:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return _StopWords(sorted(ENGLISH_STOP_WORDS))


def term_hashes(terms: Sequence[str]) -> Hashes:
    """The hash of each term (a word, an author key) as it is."""
    encoded = [t.encode("utf-8", "replace") for t in terms]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return murmurhash3(_words_at(b"".join(encoded) + _PAD), np.cumsum(lengths) - lengths, lengths)


def word_hashes(texts: Sequence[str]) -> tuple[Index, Hashes]:
    """Every word of every text, in order, stop words dropped: the index of its text and its
    hash."""
    parts = [t.lower().encode("utf-8", "replace") for t in texts]  # "?" for a lone surrogate
    sizes = np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts))
    text_starts = np.cumsum(sizes) - sizes
    buffer = b"\n".join(parts) + _PAD
    raw = np.frombuffer(buffer, dtype=np.uint8)
    word = (raw >= ord("a")) & (raw <= ord("z"))
    word |= (raw >= ord("0")) & (raw <= ord("9"))
    word |= raw == ord("_")
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1  # the padding ends the last run
    if word[0]:
        edges = np.concatenate(([0], edges))
    starts, ends = edges[0::2], edges[1::2]
    lead = np.flatnonzero(raw[starts] <= ord("9"))  # in a run, only a digit is <= "9"
    while len(lead):  # a word starts at its run's first letter or "_"
        starts[lead] += 1
        lead = lead[(starts[lead] < ends[lead]) & (raw[starts[lead]] <= ord("9"))]
    lengths = ends - starts
    long_enough = lengths > 1
    starts, lengths = starts[long_enough], lengths[long_enough]
    at = _words_at(buffer)
    hashes = murmurhash3(at, starts, lengths)
    keep = np.ones(len(hashes), dtype=bool)
    keep[_stop_words().find(at, starts, lengths, hashes)] = False
    starts, hashes = starts[keep], hashes[keep]
    per_text = np.diff(np.append(np.searchsorted(starts, text_starts), len(starts)))
    return np.repeat(np.arange(len(texts), dtype=np.int64), per_text), hashes
