"""The autoscaler's rule, pure: the warm target follows demand.

Target = the arrivals expected during one boot time at a high quantile (Poisson, from the
recorded arrival rate) plus the jobs already waiting; bounded by min and max; scale-down is
gradual (at most `step_down` per decision) so a lull does not empty the pool.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from pool.core import constants
from pool.core.pool_policy import PoolPolicy


def poisson_quantile(mean: float, q: float) -> int:
    """Smallest k with P(X <= k) >= q for X ~ Poisson(mean)."""
    if mean <= 0:
        return 0
    k, term = 0, math.exp(-mean)
    cumulative = term
    while cumulative < q and k < 10_000:
        k += 1
        term *= mean / k
        cumulative += term
    return k


def autoscale_target(
    arrivals: Sequence[float], now: float, *, window_s: float, boot_s: float, quantile: float,
    waiting: int, policy: PoolPolicy, current: int, step_down: int = 1,
) -> tuple[int, str]:
    """The warm target and the reason for it (`demand`, `min`, `max`, `step_down`)."""
    recent = sum(1 for t in arrivals if now - window_s <= t <= now)
    rate = recent / window_s
    wanted = poisson_quantile(rate * boot_s, quantile) + waiting
    reason = "demand"
    if wanted < policy.min:
        wanted, reason = policy.min, "min"
    if wanted > policy.max:
        wanted, reason = policy.max, "max"
    if wanted < current - step_down:
        wanted, reason = current - step_down, "step_down"
    return wanted, reason


def boot_estimate(recent_boots: Sequence[float], boot_timeout_s: float) -> float:
    """Seconds one boot takes, as the autoscaler plans for it: the median of the recent boots
    (the last `constants.BOOT_HISTORY`), or a fraction of the boot timeout before any."""
    if recent_boots:
        return statistics.median(recent_boots)
    return boot_timeout_s * constants.BOOT_GUESS_FRACTION
