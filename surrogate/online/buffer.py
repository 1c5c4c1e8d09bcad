"""Bounded training buffers for streamed samples, with a capacity in bytes.

    FIFOBuffer       each sample used once, in arrival order
    FIROBuffer       first-in random-out: a random sample, removed when drawn
    ReservoirBuffer  Algorithm R over the whole stream (every sample seen so far has the same
                     chance k/n of being held); draws are random and may repeat
    MelissaBuffer    Melissa's reservoir (Meyer et al. 2023): draws are random and may repeat,
                     and no sample is discarded before it has been drawn at least once: when
                     full, a new sample replaces a random one already drawn; when every held
                     sample is still undrawn, the new one is refused (backpressure)

`put` returns False when the buffer refuses the sample (the caller stops reading its socket,
so ZeroMQ's high-water mark pushes back on the solvers); Algorithm R always accepts. Every
buffer holds at most its capacity in bytes, whatever the sizes of the samples. Each buffer
counts how often every held sample was used and how old (in arrivals) drawn samples are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from surrogate.errors import InputError


@dataclass
class _Entry:
    item: Any
    nbytes: int
    arrival: int
    uses: int = 0


class AbstractBuffer(ABC):
    """Common accounting; subclasses decide what `put` keeps and what `get` returns."""

    def __init__(self, capacity_bytes: int, seed: int = 0) -> None:
        if capacity_bytes <= 0:
            raise InputError(f"buffer capacity must be positive, got {capacity_bytes} bytes")
        self.capacity_bytes = capacity_bytes
        self.rng = np.random.default_rng(seed)
        self.arrivals = 0
        self.draws = 0
        self.staleness_sum = 0

    @property
    @abstractmethod
    def entries(self) -> list[_Entry] | deque[_Entry]: ...

    @abstractmethod
    def put(self, item: Any, nbytes: int) -> bool:
        """Offer a sample of `nbytes`; False when it was refused (buffer full)."""

    @abstractmethod
    def _take(self) -> _Entry:
        """The entry a draw returns (and removes, where the policy says so)."""

    def get(self) -> Any:
        """Draw one sample; raises IndexError when empty."""
        if len(self) == 0:
            raise IndexError("buffer is empty")
        e = self._take()
        e.uses += 1
        self.draws += 1
        self.staleness_sum += self.arrivals - 1 - e.arrival
        return e.item

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def fill_bytes(self) -> int:
        return sum(e.nbytes for e in self.entries)

    def ready(self, watermark: int) -> bool:
        """Training may start (or go on) once this many samples are held."""
        return len(self) >= watermark

    def metrics(self) -> dict[str, float]:
        uses = [e.uses for e in self.entries]
        return {
            "samples": float(len(self)),
            "fill_fraction": self.fill_bytes / self.capacity_bytes,
            "arrivals": float(self.arrivals),
            "draws": float(self.draws),
            "mean_uses_of_held": float(np.mean(uses)) if uses else 0.0,
            "mean_staleness": self.staleness_sum / self.draws if self.draws else 0.0,
        }

    def state_dict(self, pack: Callable[[Any], Any]) -> dict[str, Any]:
        """Contents and counters, the items turned into checkpoint-safe values by `pack`."""
        return {
            "entries": [{"item": pack(e.item), "nbytes": e.nbytes, "arrival": e.arrival, "uses": e.uses} for e in self.entries],
            "arrivals": self.arrivals,
            "draws": self.draws,
            "staleness_sum": self.staleness_sum,
            "rng": self.rng.bit_generator.state,
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any], unpack: Callable[[Any], Any]) -> None:
        entries = [_Entry(unpack(e["item"]), int(e["nbytes"]), int(e["arrival"]), int(e["uses"])) for e in state["entries"]]
        if sum(e.nbytes for e in entries) > self.capacity_bytes:
            raise InputError(f"buffer state holds {sum(e.nbytes for e in entries)} bytes; this buffer's capacity is {self.capacity_bytes}")
        self.arrivals, self.draws, self.staleness_sum = int(state["arrivals"]), int(state["draws"]), int(state["staleness_sum"])
        self.rng.bit_generator.state = state["rng"]
        self._restore(entries, state["extra"])

    def _extra_state(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def _restore(self, entries: list[_Entry], extra: dict[str, Any]) -> None:
        """Put back the entries of a saved state."""

    def _check(self, nbytes: int) -> None:
        if nbytes > self.capacity_bytes:
            raise InputError(f"a sample of {nbytes} bytes cannot fit a buffer of {self.capacity_bytes} bytes")


class _BoundedBuffer(AbstractBuffer):
    """Holds samples up to the byte capacity and refuses the next one (backpressure)."""

    def __init__(self, capacity_bytes: int, seed: int = 0) -> None:
        super().__init__(capacity_bytes, seed)
        self._items: deque[_Entry] | list[_Entry] = self._container([])
        self._bytes = 0

    _container: Callable[[list[_Entry]], deque[_Entry] | list[_Entry]]  # deque (FIFO) or list (FIRO)

    @property
    def entries(self) -> deque[_Entry] | list[_Entry]:
        return self._items

    def put(self, item: Any, nbytes: int) -> bool:
        self._check(nbytes)
        if self._bytes + nbytes > self.capacity_bytes:
            return False
        self._items.append(_Entry(item, nbytes, self.arrivals))
        self.arrivals += 1
        self._bytes += nbytes
        return True

    def _restore(self, entries: list[_Entry], extra: dict[str, Any]) -> None:
        self._items, self._bytes = self._container(entries), sum(e.nbytes for e in entries)


class FIFOBuffer(_BoundedBuffer):
    """Each sample drawn once, in arrival order."""

    _container = staticmethod(deque)

    def _take(self) -> _Entry:
        e = self._items.popleft()  # type: ignore[union-attr]
        self._bytes -= e.nbytes
        return e


class FIROBuffer(_BoundedBuffer):
    """Each sample drawn once, in random order."""

    _container = staticmethod(list)

    def _take(self) -> _Entry:
        items = self._items
        i = int(self.rng.integers(len(items)))
        items[i], items[-1] = items[-1], items[i]  # swap-pop: O(1)
        e = items.pop()
        self._bytes -= e.nbytes
        return e


class _RandomDraws(AbstractBuffer):
    """A list of samples within the byte capacity, drawn at random with repetition."""

    def __init__(self, capacity_bytes: int, seed: int = 0) -> None:
        super().__init__(capacity_bytes, seed)
        self._items: list[_Entry] = []
        self._bytes = 0

    @property
    def entries(self) -> list[_Entry]:
        return self._items

    def _take(self) -> _Entry:
        return self._items[int(self.rng.integers(len(self._items)))]

    def _restore(self, entries: list[_Entry], extra: dict[str, Any]) -> None:
        self._items, self._bytes = entries, sum(e.nbytes for e in entries)


class ReservoirBuffer(_RandomDraws):
    """Algorithm R (Vitter 1985) with k = as many samples as the byte capacity holds (samples of
    one size, as a stream's schema makes them; a larger one evicts random others to fit)."""

    def put(self, item: Any, nbytes: int) -> bool:
        self._check(nbytes)
        entry = _Entry(item, nbytes, self.arrivals)
        n = self.arrivals  # samples seen before this one
        self.arrivals += 1
        if self._bytes + nbytes <= self.capacity_bytes:
            self._items.append(entry)
            self._bytes += nbytes
            return True
        j = int(self.rng.integers(n + 1))
        if j < len(self._items):
            self._bytes += nbytes - self._items[j].nbytes
            self._items[j] = entry
            while self._bytes > self.capacity_bytes:  # a larger sample: random others make room
                i = int(self.rng.integers(len(self._items)))
                if self._items[i] is not entry:
                    self._bytes -= self._items[i].nbytes
                    self._items[i] = self._items[-1]
                    self._items.pop()
        return True


class MelissaBuffer(_RandomDraws):
    """Melissa's reservoir: random draws with repetition; a new sample replaces a random
    sample that has already been drawn, and is refused while none has (backpressure)."""

    def __init__(self, capacity_bytes: int, seed: int = 0) -> None:
        super().__init__(capacity_bytes, seed)
        self._drawn: list[int] = []  # indices into _items of entries drawn at least once
        self._where: dict[int, int] = {}  # index into _items -> its position in _drawn

    def put(self, item: Any, nbytes: int) -> bool:
        self._check(nbytes)
        entry = _Entry(item, nbytes, self.arrivals)
        if self._bytes + nbytes <= self.capacity_bytes:
            self._items.append(entry)
        else:
            if not self._drawn:
                return False  # every held sample is still to be trained on
            i = self._drawn[int(self.rng.integers(len(self._drawn)))]
            if self._bytes - self._items[i].nbytes + nbytes > self.capacity_bytes:
                return False  # (samples of one size always fit in a drawn one's place)
            self._forget(i)
            self._bytes -= self._items[i].nbytes
            self._items[i] = entry
        self._bytes += nbytes
        self.arrivals += 1
        return True

    def _forget(self, i: int) -> None:
        """Take index i out of the drawn list (swap with the last)."""
        pos = self._where.pop(i)
        last = self._drawn.pop()
        if last != i:
            self._drawn[pos] = last
            self._where[last] = pos

    def _take(self) -> _Entry:
        i = int(self.rng.integers(len(self._items)))
        if i not in self._where:
            self._where[i] = len(self._drawn)
            self._drawn.append(i)
        return self._items[i]

    def _restore(self, entries: list[_Entry], extra: dict[str, Any]) -> None:
        super()._restore(entries, extra)
        self._drawn = [i for i, e in enumerate(entries) if e.uses > 0]
        self._where = {i: k for k, i in enumerate(self._drawn)}
