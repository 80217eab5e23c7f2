"""A sliding window of one channel's samples, addressed by absolute sample index.

Samples arrive in blocks of any size and are read back by absolute index
(``get(start, stop)``) for as long as a consumer still needs them; ``trim`` releases
what nobody needs.  Storage grows to about twice the largest window in use and is
then reused (one copy per shift, amortised), so memory stays flat on long streams.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SampleBuffer"]


class SampleBuffer:
    """Absolute-indexed window over a complex64 stream.

    Attributes
    ----------
    start : int
        Absolute index of the oldest sample held.
    end : int
        Absolute index one past the newest sample.
    """

    def __init__(self, capacity: int = 1 << 15) -> None:
        self._data = np.zeros(max(16, int(capacity)), dtype=np.complex64)
        self._lo = 0  # position of sample `start` in _data
        self.start = 0
        self.end = 0

    def append(self, z: npt.NDArray[np.complex64]) -> None:
        """Add the next samples (complex64, 1-D)."""
        n_held = self.end - self.start
        if self._lo + n_held + z.size > self._data.size:
            size = self._data.size
            while n_held + z.size > size // 2:
                size *= 2
            fresh = (
                np.zeros(size, dtype=np.complex64)
                if size != self._data.size
                else self._data
            )
            fresh[:n_held] = self._data[self._lo : self._lo + n_held]
            self._data, self._lo = fresh, 0
        pos = self._lo + n_held
        self._data[pos : pos + z.size] = z
        self.end += z.size

    def get(self, start: int, stop: int) -> npt.NDArray[np.complex64]:
        """Samples start .. stop - 1 (absolute); a view, valid until the next append.

        Raises
        ------
        ValueError
            If the range is not held (trimmed already, or not yet received).
        """
        if not self.start <= start <= stop <= self.end:
            raise ValueError(
                f"samples {start}..{stop} not held "
                f"(buffer holds {self.start}..{self.end})"
            )
        lo = self._lo + start - self.start
        return self._data[lo : lo + stop - start]

    def trim(self, keep_from: int) -> None:
        """Forget samples before absolute index ``keep_from``."""
        keep_from = min(max(keep_from, self.start), self.end)
        self._lo += keep_from - self.start
        self.start = keep_from
