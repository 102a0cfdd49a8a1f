"""The run's execution order: every (cell, repetition) step, repetitions interleaved and shuffled (seeded)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..spec import Cell, Settings


@dataclass
class Plan:
    """The run's execution order: (cell, repetition) pairs, repetitions interleaved and shuffled."""

    steps: list[tuple[Cell, int]]

    @classmethod
    def make(cls, cells: tuple[Cell, ...], settings: Settings) -> Plan:
        return cls.repetitions([(cell, 0, settings.repetitions) for cell in cells], settings.seed)

    @classmethod
    def repetitions(cls, wanted: Sequence[tuple[Cell, int, int]], seed: int) -> Plan:
        """Repetitions ``first`` .. ``stop - 1`` of each (cell, first, stop), interleaved and shuffled.

        Each pass holds every cell that still needs a repetition once, shuffled: drift over the run
        spreads over all cells instead of hitting whichever cell happened to run last. The adaptive
        gate (bench.gate.adaptive) plans its later rounds this way, from where each cell stands.
        """
        rng = random.Random(seed)
        steps: list[tuple[Cell, int]] = []
        for offset in range(max((stop - first for _, first, stop in wanted), default=0)):
            pass_ = [(cell, first + offset) for cell, first, stop in wanted if first + offset < stop]
            rng.shuffle(pass_)
            steps += pass_
        return cls(steps)

    def to_json(self) -> list[dict]:
        return [{"cell": cell.to_dict(), "repetition": rep} for cell, rep in self.steps]

    @classmethod
    def from_json(cls, data: list[dict]) -> Plan:
        return cls([(Cell.from_dict(step["cell"]), int(step["repetition"])) for step in data])
