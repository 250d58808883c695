"""Label Studio: read a project export as a dataset, send the review queue, take the decisions back.

- :func:`load_export_dataset` / :func:`parse_export`: a JSON export (tasks with annotations and
  predictions, any number of annotators) as a :class:`~labelaudit.dataset.Dataset` plus its
  annotations companion; :func:`parse_label_config` reads the text field and the class control.
- :func:`push_queue` / :func:`pull_decisions`: the round trip with a live server through the official
  ``label-studio-sdk`` (:class:`LabelStudioConnection`).
"""

from labelaudit.integrations.labelstudio.client import LabelStudioConnection, LabelStudioError
from labelaudit.integrations.labelstudio.config import (
    ClassificationConfig,
    classification_config_xml,
    parse_label_config,
)
from labelaudit.integrations.labelstudio.export import (
    load_export_dataset,
    looks_like_labelstudio_export,
    parse_export,
)
from labelaudit.integrations.labelstudio.sync import (
    PullHeld,
    PullResult,
    PushResult,
    pull_decisions,
    push_queue,
    sent_projects,
)

__all__ = [
    "ClassificationConfig",
    "LabelStudioConnection",
    "LabelStudioError",
    "PullHeld",
    "PullResult",
    "PushResult",
    "classification_config_xml",
    "load_export_dataset",
    "looks_like_labelstudio_export",
    "parse_export",
    "parse_label_config",
    "pull_decisions",
    "push_queue",
    "sent_projects",
]
