"""A token vocabulary: ids by frequency, reserved tokens first, saved as a plain list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class Vocab:
    """Maps tokens to ids and back.

    The reserved tokens come first, in the order given; ``unk_token`` (which must be one of them)
    is the id of every token not in the vocabulary. The other tokens follow by falling frequency;
    ties keep the order in which ``counts`` lists them (a stable sort, as d2l's ``Vocab`` does), so
    callers choose the tie order: first occurrence for d2l's character vocabulary, alphabetical for
    IMDb.

    Args:
        counts: ``(token, frequency)`` pairs, one per distinct token.
        reserved_tokens: tokens that get the first ids, whatever their frequency.
        unk_token: the reserved token that unknown tokens map to.
        min_freq: tokens seen fewer times are left out.
        max_size: the largest vocabulary size, reserved tokens included; ``None`` for no limit.

    Example:
        >>> vocab = Vocab([("b", 1), ("a", 3), ("c", 1)], reserved_tokens=["<unk>"])
        >>> vocab.idx_to_token
        ['<unk>', 'a', 'b', 'c']
        >>> vocab["a"], vocab["zzz"], len(vocab)
        (1, 0, 4)
        >>> vocab.lookup(["c", "a", "?"]), vocab.to_tokens([3, 1])
        ([3, 1, 0], ['c', 'a'])
    """

    def __init__(
        self,
        counts: Iterable[tuple[str, int]] = (),
        reserved_tokens: Sequence[str] = ("<unk>",),
        unk_token: str = "<unk>",
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> None:
        if unk_token not in reserved_tokens:
            raise ValueError(f"unk_token {unk_token!r} must be one of {list(reserved_tokens)}")
        if len(set(reserved_tokens)) != len(reserved_tokens):
            raise ValueError(f"reserved_tokens repeat a token: {list(reserved_tokens)}")
        if max_size is not None and max_size < len(reserved_tokens):
            raise ValueError(f"max_size={max_size} leaves no room for {list(reserved_tokens)}")
        reserved = set(reserved_tokens)
        by_freq = sorted(counts, key=lambda pair: -pair[1])  # stable: ties keep the given order
        tokens = list(reserved_tokens)
        for token, freq in by_freq:
            if freq < min_freq or (max_size is not None and len(tokens) >= max_size):
                break
            if token not in reserved:
                tokens.append(token)
        self._set_tokens(tokens, unk_token)

    def _set_tokens(self, tokens: list[str], unk_token: str) -> None:
        self.idx_to_token: list[str] = tokens
        self.token_to_idx: dict[str, int] = {token: i for i, token in enumerate(tokens)}
        if len(self.token_to_idx) != len(tokens):
            raise ValueError("a vocabulary cannot list a token twice")
        self.unk_token = unk_token
        self.unk = self.token_to_idx[unk_token]

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, token: str) -> int:
        return self.token_to_idx.get(token, self.unk)

    def __contains__(self, token: object) -> bool:
        return token in self.token_to_idx

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocab)
            and self.idx_to_token == other.idx_to_token
            and self.unk_token == other.unk_token
        )

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:6])
        return f"Vocab(size={len(self)}, tokens=[{head}{', ...' if len(self) > 6 else ''}])"

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        """The ids of ``tokens``; unknown tokens get the id of ``unk_token``."""
        get, unk = self.token_to_idx.get, self.unk
        return [get(token, unk) for token in tokens]

    def to_tokens(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids``."""
        return [self.idx_to_token[int(i)] for i in ids]

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and strings, safe for ``torch.load(weights_only=True)``."""
        return {"idx_to_token": list(self.idx_to_token), "unk_token": self.unk_token}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocab:
        """The vocabulary that :meth:`state_dict` saved."""
        vocab = cls.__new__(cls)
        vocab._set_tokens(list(state["idx_to_token"]), state["unk_token"])
        return vocab
