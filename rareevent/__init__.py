"""rareevent: find rare events in multivariate sensor time series.

The package is organised by stage of the data flow:
``load`` (CSV -> validated arrays) -> ``windows`` (sliding windows and labels)
-> ``scaling`` -> ``model`` (Keras builders) -> ``threshold`` -> ``detector``
(the estimator tying them together) -> ``runs`` (run folders on disk)
-> ``scoring`` (new data, alarms) -> ``metrics`` -> ``report``.

Importing the package does not import TensorFlow; only ``model`` and the
modules that train or load models do.
"""

__version__ = "0.2.0"
