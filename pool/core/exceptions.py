"""The project's exceptions: one base class, a few meaningful subclasses."""


class VweError(Exception):
    """Base class of every error vwe-pool raises on purpose."""


class ConfigError(VweError):
    """The settings are invalid; the message names the variable and what it expected."""


class RuntimeUnavailable(VweError):
    """The Docker engine cannot be reached."""


class StoreUnavailable(VweError):
    """Redis cannot be reached."""


class NotReplicated(StoreUnavailable):
    """Redis did not confirm that enough replicas hold a write within the WAIT timeout
    (`VWE_REDIS_MIN_REPLICAS`); the write may still survive, so retrying is safe only for
    idempotent calls such as a submit (same seed joins the same job)."""


class BootFailed(VweError):
    """A container did not become ready (crashed, timed out, or its agent never answered)."""


class HandoffFailed(VweError):
    """The agent did not accept a job (socket gone, refused, or timed out)."""


class ContainerFenced(HandoffFailed):
    """The agent refused a job for an old fencing token: another daemon owns the container."""


class GenerationFailed(VweError):
    """The agent accepted a job but reported an error or died before finishing it."""


class WorkerDied(GenerationFailed):
    """The worker's agent went away mid-job (its connection closed or reset)."""


class WorkerOutOfMemory(GenerationFailed):
    """The kernel killed the worker for exceeding its memory limit (docker's
    `State.OOMKilled`). Deterministic for the same request: the job fails without a retry."""


class QueueFull(VweError):
    """The queue is at its cap; the caller should retry later."""


class PoolClosed(VweError):
    """The pool is draining and leases no more containers."""
