"""The ``quiet`` field of a rule document: how the rule judges a namespace too quiet for
it alone. Its own module so the rule model (``core.rules``) and the quiet judgement
(``core.quiet``) share it without importing each other."""

from __future__ import annotations

from enum import StrEnum


class QuietPolicy(StrEnum):
    """How a rule judges a namespace whose windows hold too little evidence for it."""

    POOL = "pool"
    INHERIT = "inherit"
    HOLD = "hold"


#: The policy of a rule that sets none: pooling, falling back on the revision's verdicts
#: on busier namespaces; it finishes a healthy night whatever the traffic mix.
DEFAULT_QUIET_POLICY = QuietPolicy.POOL
