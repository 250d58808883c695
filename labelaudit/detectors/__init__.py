"""Label-error detectors. Every detector returns a :class:`DetectorResult` (see ``base``)."""

from labelaudit.detectors.base import DetectionContext, DetectorResult

__all__ = ["DetectionContext", "DetectorResult"]
