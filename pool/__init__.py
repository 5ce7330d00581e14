"""vwe-pool: keeps world-generator containers warm and hands each seed to one."""

__version__ = "0.1.0"
