"""labelwise: active learning as an operation.

The library core: scoring strategies, batch policies with a random control
slice, calibrated default models, stopping rules, learning-curve metrics and
the simulator. It imports NumPy, SciPy, pandas and scikit-learn only; the
service (store, queue, API, UI) lives in ``labelwise.service`` and the command
line in ``labelwise.cli``, and neither is imported here.
"""

from __future__ import annotations

from labelwise.calibration import (
    CalibratedModel,
    ReliabilityBins,
    expected_calibration_error,
    reliability_bins,
)
from labelwise.data import Dataset, load_dataset
from labelwise.exceptions import (
    CapReached,
    ConfigError,
    ConflictError,
    ImportRejected,
    InvalidInputError,
    LabelwiseError,
    LeaseExpired,
    NotFoundError,
    PermissionDenied,
    PoolExhausted,
    RecordError,
    UnknownNameError,
)
from labelwise.metrics import aulc, labels_to_target, paired_gain
from labelwise.models import (
    fit_committee,
    get_model,
    get_model_names,
    make_featurizer,
    make_model,
)
from labelwise.policy import (
    Batch,
    BatchPolicy,
    CapRule,
    MixComponent,
    build_batch,
    get_policy,
    get_policy_names,
    load_policy,
)
from labelwise.simulation import (
    SimulationConfig,
    compare_policies,
    run_simulation,
)
from labelwise.stopping import (
    LabelBudget,
    MetricPlateau,
    StabilizingPredictions,
    StopDecision,
    StoppingCriteria,
    get_stopping_rule,
    get_stopping_rule_names,
)
from labelwise.strategies import (
    ScoringContext,
    Strategy,
    get_strategy,
    get_strategy_names,
)

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "BatchPolicy",
    "CalibratedModel",
    "CapReached",
    "CapRule",
    "ConfigError",
    "ConflictError",
    "Dataset",
    "ImportRejected",
    "InvalidInputError",
    "LabelBudget",
    "LabelwiseError",
    "LeaseExpired",
    "MetricPlateau",
    "MixComponent",
    "NotFoundError",
    "PermissionDenied",
    "PoolExhausted",
    "RecordError",
    "ReliabilityBins",
    "ScoringContext",
    "SimulationConfig",
    "StabilizingPredictions",
    "StopDecision",
    "StoppingCriteria",
    "Strategy",
    "UnknownNameError",
    "__version__",
    "aulc",
    "build_batch",
    "compare_policies",
    "expected_calibration_error",
    "fit_committee",
    "get_model",
    "get_model_names",
    "get_policy",
    "get_policy_names",
    "get_stopping_rule",
    "get_stopping_rule_names",
    "get_strategy",
    "get_strategy_names",
    "labels_to_target",
    "load_dataset",
    "load_policy",
    "make_featurizer",
    "make_model",
    "paired_gain",
    "reliability_bins",
    "run_simulation",
]
