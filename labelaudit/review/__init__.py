"""Review and relabel: the decision store, the review queue and the export of the cleaned dataset."""

from labelaudit.review.store import ACTIONS, ConflictError, Decision, ReviewStore

__all__ = ["ACTIONS", "ConflictError", "Decision", "ReviewStore"]
