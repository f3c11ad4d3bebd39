"""``RareEventDetector``: the :class:`~rareevent.detector.Detector` as a scikit-learn estimator.

All the behaviour lives in ``Detector``, which imports no scikit-learn, so
that scoring with a saved detector (``score``, ``--follow``, the fleet
workers) runs on numpy alone. This class adds what makes it a scikit-learn
outlier detector: ``set_params``, ``clone``, the estimator ``repr`` and
tags, and a fitted ``StandardScaler`` as ``scaler_`` when it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import ClassifierTags, Tags

from rareevent import scaling
from rareevent.detector import Detector


class RareEventDetector(Detector, OutlierMixin, BaseEstimator):
    # Detector first: its fit_predict (with y) and get_params come before the mixins'
    __doc__ = Detector.__doc__
    __module__ = "rareevent.detector"  # where the API names it (and pickle finds it)

    def __sklearn_tags__(self) -> Tags:
        """An outlier detector whose ``y``, when given, is binary: a 0/1 event label per row.

        Declaring ``y`` binary (``multi_class=False``) makes scikit-learn's
        own checks pass 0/1 labels rather than classes 0, 1, 2, which
        ``fit`` refuses.
        """
        tags = super().__sklearn_tags__()
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    @classmethod
    def read_config(cls, folder: str | Path) -> Self:
        """:meth:`Detector.read_config`, with scikit-learn's ``StandardScaler`` as ``scaler_``."""
        detector = super().read_config(folder)
        saved = detector.scaler_
        detector.scaler_ = scaling.scaler_from_arrays(saved.mean_, saved.scale_)
        return detector
