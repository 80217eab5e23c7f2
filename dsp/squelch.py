"""Noise gate of one channel: which stretches of samples hold more than noise.

Signal picture (one channel, blocks of 0.25 ms)::

    power p_k = mean |z|^2 of block k
    level_k   = mean of p_{k-3} .. p_k                          (1 ms of averaging)
    floor_k   = min of level over the last second               (minimum statistics)
    open_k    = level_k > 1.45 * floor_k

The sync search (``dsp.sync``) runs only on blocks near an open one: from
``LOOKAHEAD_BLOCKS`` before to ``HANG_BLOCKS`` after, so it starts before the burst
whose energy opened the gate.  At the weakest useful signals the gate still opens
clearly: mode S at Eb/N0 = 10 dB raises the channel's power by about 50 % over 1 ms,
where noise alone varies by about 5 % (1 sigma).  Empty spectrum then costs only the
power measurement.  The floor also gives each frame's SNR.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dsp.kernels import kernel

__all__ = ["NoiseGate", "gate_reference", "LOOKAHEAD_BLOCKS", "HANG_BLOCKS"]

#: Blocks scanned before the first open block, and after the last.
LOOKAHEAD_BLOCKS = 6
HANG_BLOCKS = 4
# Block length, s; blocks averaged into a level; gate threshold over the floor.
_BLOCK_S = 0.25e-3
_LEVEL_BLOCKS = 4
_OPEN_RATIO = 1.45
# The floor is the minimum over this many blocks (1 s), kept as minima of groups
# (the kernel has the group length 64 written in; numba freezes globals).
_FLOOR_GROUP = 64
_FLOOR_GROUPS = 62
# Power below which a channel counts as silent (an all-zero stream), full scale 1.
_MIN_FLOOR = 1e-20


@kernel("void(f4[::1], i8, f8, f8, f8[::1], f8[::1], f8[::1], b1[::1], f8[::1])")
def _gate_kernel(
    z, block_len, open_ratio, min_floor, recent, groups, state, out_open, out_floor
):
    """Measure len(z) // (2 block_len) blocks of ``z``, interleaved float32 I/Q (a
    float32 view of complex64 samples).  ``recent`` (float64, _LEVEL_BLOCKS) and
    ``groups`` (float64, _FLOOR_GROUPS) are rings; ``state`` (float64) = [blocks
    measured, minimum of the current group, minimum of the finished groups]."""
    n_level = recent.shape[0]
    n_groups = groups.shape[0]
    group_len = 64  # _FLOOR_GROUP
    width = 2 * block_len
    for b in range(z.shape[0] // width):
        # four partial sums in a fixed order: a shorter dependency chain than one
        # running sum, the same result whatever the blocks
        blk = z[b * width : (b + 1) * width]
        a0 = a1 = a2 = a3 = 0.0
        for k in range(0, width - 3, 4):
            a0 += np.float64(blk[k] * blk[k])
            a1 += np.float64(blk[k + 1] * blk[k + 1])
            a2 += np.float64(blk[k + 2] * blk[k + 2])
            a3 += np.float64(blk[k + 3] * blk[k + 3])
        for k in range(width - width % 4, width):
            a0 += np.float64(blk[k] * blk[k])
        acc = (a0 + a1) + (a2 + a3)
        count = np.int64(state[0])
        recent[count % n_level] = acc / block_len
        level = 0.0
        used = min(count + 1, n_level)
        for k in range(used):
            level += recent[k]
        level /= used
        state[1] = min(state[1], level)
        floor = max(min(state[1], state[2]), min_floor)
        out_open[b] = level > open_ratio * floor
        out_floor[b] = floor
        count += 1
        state[0] = count
        if count % group_len == 0:
            groups[(count // group_len - 1) % n_groups] = state[1]
            state[1] = np.inf
            finished = min(count // group_len, n_groups)
            state[2] = np.inf
            for k in range(finished):
                state[2] = min(state[2], groups[k])


def gate_reference(
    z: npt.NDArray[np.complex64], block_len: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Plain-numpy twin of the gate over a whole stream: (open, floor) per block."""
    n_blocks = z.size // block_len
    power = (
        np.abs(
            z[: n_blocks * block_len].astype(np.complex128).reshape(n_blocks, block_len)
        )
        ** 2
    ).mean(axis=1)
    level = np.array(
        [power[max(0, b - _LEVEL_BLOCKS + 1) : b + 1].mean() for b in range(n_blocks)]
    )
    floors = np.empty(n_blocks)
    for b in range(n_blocks):
        group = b // _FLOOR_GROUP
        # whole groups finished before this block (the last _FLOOR_GROUPS of them),
        # and this block's group so far
        first = max(0, group - _FLOOR_GROUPS) * _FLOOR_GROUP
        floors[b] = max(level[first : b + 1].min(), _MIN_FLOOR)
    return level > _OPEN_RATIO * floors, floors


class NoiseGate:
    """Block powers, noise floor and open/closed decisions of one channel.

    Parameters
    ----------
    sample_rate_hz : float
        Channel sample rate, Hz.

    Attributes
    ----------
    block_len : int
        Samples per block.
    n_blocks : int
        Blocks measured so far.
    """

    def __init__(self, sample_rate_hz: float) -> None:
        self.block_len = max(16, int(round(sample_rate_hz * _BLOCK_S)))
        self.n_blocks = 0
        self._recent = np.zeros(_LEVEL_BLOCKS)
        self._groups = np.zeros(_FLOOR_GROUPS)
        self._state = np.array([0.0, np.inf, np.inf])
        self._open = np.zeros(0, dtype=np.bool_)
        self._floors = np.zeros(0)
        self._first_kept = 0  # block index of _open[0]

    def measure(self, z: npt.NDArray[np.complex64]) -> None:
        """Measure whole blocks; ``z`` holds exactly the next k * block_len samples.

        Raises
        ------
        ValueError
            If ``z`` is not a whole number of blocks.
        """
        if z.size % self.block_len:
            raise ValueError("measure() takes whole blocks")
        n_new = z.size // self.block_len
        if n_new == 0:
            return
        opened = np.zeros(n_new, dtype=np.bool_)
        floors = np.zeros(n_new)
        _gate_kernel(
            np.ascontiguousarray(z, dtype=np.complex64).view(np.float32),
            self.block_len,
            _OPEN_RATIO,
            _MIN_FLOOR,
            self._recent,
            self._groups,
            self._state,
            opened,
            floors,
        )
        self._open = np.concatenate([self._open, opened])
        self._floors = np.concatenate([self._floors, floors])
        self.n_blocks += n_new

    def floor(self, block: int) -> float:
        """Noise floor (mean |z|^2, full scale 1) at block ``block``."""
        return float(self._floors[block - self._first_kept])

    def wants_scan(self, first: int, stop: int) -> npt.NDArray[np.bool_]:
        """For blocks first .. stop - 1: should the sync search cover it?  True when
        an open block lies within HANG_BLOCKS before or LOOKAHEAD_BLOCKS after it.
        Blocks not yet measured count as closed (callers wait for the lookahead)."""
        lo = first - HANG_BLOCKS
        flags = np.zeros(stop - first + HANG_BLOCKS + LOOKAHEAD_BLOCKS, dtype=np.int64)
        src_lo = max(lo, self._first_kept)
        src_hi = min(stop + LOOKAHEAD_BLOCKS, self.n_blocks)
        if src_hi > src_lo:
            flags[src_lo - lo : src_hi - lo] = self._open[
                src_lo - self._first_kept : src_hi - self._first_kept
            ]
        window = np.ones(HANG_BLOCKS + LOOKAHEAD_BLOCKS + 1, dtype=np.int64)
        return np.convolve(flags, window, mode="valid")[: stop - first] > 0

    def forget(self, before_block: int) -> None:
        """Drop decisions older than ``before_block`` (keeps memory flat)."""
        drop = min(max(before_block - self._first_kept, 0), self._open.size)
        if drop:
            self._open = self._open[drop:]
            self._floors = self._floors[drop:]
            self._first_kept += drop
