"""The run's execution order: every (cell, repetition) step, repetitions interleaved and shuffled (seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..spec import Cell, Settings


@dataclass
class Plan:
    """The run's execution order: (cell, repetition) pairs, repetitions interleaved and shuffled."""

    steps: list[tuple[Cell, int]]

    @classmethod
    def make(cls, cells: tuple[Cell, ...], settings: Settings) -> Plan:
        rng = random.Random(settings.seed)
        steps: list[tuple[Cell, int]] = []
        # Each round holds every cell once, shuffled: drift over the run spreads over all cells
        # instead of hitting whichever cell happened to run last.
        for rep in range(settings.repetitions):
            round_ = [(cell, rep) for cell in cells]
            rng.shuffle(round_)
            steps += round_
        return cls(steps)

    def to_json(self) -> list[dict]:
        return [{"cell": cell.to_dict(), "repetition": rep} for cell, rep in self.steps]

    @classmethod
    def from_json(cls, data: list[dict]) -> Plan:
        return cls([(Cell.from_dict(step["cell"]), int(step["repetition"])) for step in data])
