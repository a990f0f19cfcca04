"""The change feed's resume point in commit order.

Sequence numbers are drawn inside transactions, so two concurrent transactions can commit in
the other order than their numbers: a client that saw change 11 may not yet have seen 10,
still uncommitted. Delivery is never held back for that; instead each message carries a
*cursor*, the highest sequence number up to which every change is settled (arrived, or known
never to commit). A client resuming from a cursor misses nothing (it may get a change it
already had again; the ``seq`` in each message tells them apart).

A gap is settled once every transaction that was running when it was seen has ended
(PostgreSQL's snapshot ``xmin`` has passed the ``xmax`` taken then): the change log is then
read for what did not arrive by notification. A transaction writes its change rows after its
other writes, so it holds a transaction id when it draws a number.
"""

from __future__ import annotations


class CommitOrder:
    def __init__(self, cursor: int = 0) -> None:
        self.cursor = cursor
        self.ahead: set[int] = set()  # arrived, above a gap

    def arrive(self, seq: int) -> bool:
        """Note a change's arrival; False for one already delivered (or settled before)."""
        if seq <= self.cursor or seq in self.ahead:
            return False
        if seq == self.cursor + 1:
            self.cursor = seq
            self._advance()
        else:
            self.ahead.add(seq)
        return True

    @property
    def has_gap(self) -> bool:
        return bool(self.ahead)

    @property
    def horizon(self) -> int:
        """The highest number arrived (the top of the gaps to settle)."""
        return max(self.ahead, default=self.cursor)

    def settle(self, upto: int) -> None:
        """Every number up to ``upto`` has arrived or never will."""
        if upto > self.cursor:
            self.cursor = upto
            self.ahead = {s for s in self.ahead if s > upto}
            self._advance()

    def _advance(self) -> None:
        while self.cursor + 1 in self.ahead:
            self.ahead.remove(self.cursor + 1)
            self.cursor += 1
