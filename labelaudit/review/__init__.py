"""Review and relabel: the decision store, the review queue and the export of the cleaned dataset."""

from labelaudit.review.export import cleaned_dataset, export_review, neutralise_formulas
from labelaudit.review.queue import apply_bulk, build_queue, item_evidence, review_progress
from labelaudit.review.store import ACTIONS, ConflictError, Decision, ReviewStore

__all__ = [
    "ACTIONS",
    "ConflictError",
    "Decision",
    "ReviewStore",
    "apply_bulk",
    "build_queue",
    "cleaned_dataset",
    "export_review",
    "item_evidence",
    "neutralise_formulas",
    "review_progress",
]
