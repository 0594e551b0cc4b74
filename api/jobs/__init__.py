"""Jobs: every solve is a row in the database; long ones run in a bounded pool or on Ray."""

from api.jobs.registry import TaskRegistry, TaskSpec
from api.jobs.service import JobService, QueueFull

__all__ = ["JobService", "QueueFull", "TaskRegistry", "TaskSpec"]
