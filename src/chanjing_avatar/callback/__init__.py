"""Receive the vendor's task callbacks safely: confirm each by fetching the detail."""

from .receiver import CallbackReceiver, ReceiverStats, extract_task_id
from .server import ListenError, ReceiverServer, is_loopback
from .wait import wait_with_callbacks

__all__ = [
    "CallbackReceiver",
    "ListenError",
    "ReceiverServer",
    "ReceiverStats",
    "extract_task_id",
    "is_loopback",
    "wait_with_callbacks",
]
