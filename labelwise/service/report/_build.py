"""``build_report``: every ROI and monitoring figure of a project, as one dict.

The dict is the JSON of ``labelwise report --json`` and of
``GET /api/v1/projects/{project}/report``; docs/report.md lists every key.
It reads the store in one session (the caller's, read-only is enough) and
trains small models in memory; it writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelwise._validation import check_in_options, check_int
from labelwise.service.loop.failures import failure_summary
from labelwise.service.loop.training import default_model_name
from labelwise.service.report._activity import (
    agreement_trend,
    gold_error,
    labels_per_week,
    model_curve,
    queue_answers,
    time_per_item,
)
from labelwise.service.report._control import (
    CONFIDENCE,
    METRICS,
    MIN_CONTROL_LABELS,
    MIN_VALIDATION,
    curve_sizes,
    learning_curves,
    paired_bootstrap,
    verdict,
)
from labelwise.service.report._evaluation import (
    Trainer,
    count_pool,
    coverage,
    drift,
    load_labeled,
    load_validation,
    round_errors,
    stop_set,
)
from labelwise.service.store.schema import Item, ModelVersion, Project, Round

__all__ = ["REPORT_VERSION", "Progress", "build_report"]

#: Version of the report's JSON layout (docs/report.md).
REPORT_VERSION = 1

#: ``progress(done, total)``, called as the model fits go by.
Progress = Callable[[int, int], None]


class _Steps:
    """Counts finished steps against a total that grows as work is discovered."""

    def __init__(self, progress: Progress | None) -> None:
        self.done = 0
        self.total = 0
        self.progress = progress

    def add(self, n: int) -> None:
        self.total += n
        self._report()

    def tick(self) -> None:
        self.done += 1
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def _role_counts(session: Session, project: Project) -> dict[str, int]:
    rows = session.execute(
        select(Item.role, func.count())
        .where(Item.project_id == project.id)
        .group_by(Item.role)
    ).all()
    counts = dict.fromkeys(("pool", "validation", "gold", "failure"), 0)
    counts.update({str(role): int(n) for role, n in rows})
    return counts


def _weighted_error(rows: list[dict[str, Any]], arm: str) -> tuple[float | None, int]:
    n = sum(r[f"n_{arm}"] for r in rows if r[f"{arm}_error"] is not None)
    if not n:
        return None, 0
    wrong = sum(
        r[f"{arm}_error"] * r[f"n_{arm}"] for r in rows if r[f"{arm}_error"] is not None
    )
    return round(wrong / n, 4), n


def _stop(
    project: Project,
    rounds: list[dict[str, Any]],
    final: dict[str, Any] | None,
) -> dict[str, Any]:
    """Replay the stopping rules over the per-round models and the current one."""
    from labelwise.stopping import (
        LabelBudget,
        MetricPlateau,
        StabilizingPredictions,
        StopDecision,
        StoppingRule,
    )

    history = [*rounds, *([final] if final is not None else [])]
    rules: list[StoppingRule] = []
    if history and all(h["validation_macro_f1"] is not None for h in history):
        rules.append(MetricPlateau())
    if history and all(h["stop_set_predictions"] is not None for h in history):
        rules.append(StabilizingPredictions())
    budget = (project.settings or {}).get("label_budget")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1:
        rules.append(LabelBudget(budget))
    if not history or not rules:
        return {
            "stop": False,
            "recommendation": "continue",
            "rule": None,
            "reason": "No trained model yet: keep labelling until a round trains one.",
            "rules": [],
        }
    last: dict[str, StopDecision] = {}
    for step in history:
        for rule in rules:
            last[rule.name] = rule.update(
                n_labels=step["n_training"],
                stop_set_predictions=step["stop_set_predictions"],
                validation_score=step["validation_macro_f1"],
            )
    fired = [d for d in last.values() if d.stop]
    chosen = fired[0] if fired else None
    return {
        "stop": chosen is not None,
        "recommendation": "stop" if chosen is not None else "continue",
        "rule": None if chosen is None else chosen.rule,
        "reason": (
            chosen.reason
            if chosen is not None
            else "No stopping rule fires yet: keep labelling."
        ),
        "rules": [
            {"rule": d.rule, "stop": d.stop, "reason": d.reason} for d in last.values()
        ],
    }


def build_report(
    *,
    session: Session,
    project: Project,
    repeats: int = 5,
    n_points: int = 5,
    seed: int = 0,
    now: datetime | None = None,
    metric: str = "macro_f1",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every figure of the ROI and monitoring report of ``project`` (docs/report.md).

    ``repeats`` pairs of draws are trained at each of up to ``n_points`` label
    counts of the control-slice learning curves; ``seed`` fixes every draw,
    so the same store and seed give the same report. ``metric`` is what the
    control-slice verdict compares ("macro_f1", or "accuracy").
    """
    repeats = check_int(repeats, param="repeats", owner="build_report", low=1)
    n_points = check_int(n_points, param="n_points", owner="build_report", low=1)
    seed = check_int(seed, param="seed", owner="build_report", low=0)
    metric = check_in_options(
        metric, param="metric", owner="build_report", options=METRICS
    )
    rng = np.random.default_rng(seed)
    steps = _Steps(progress)
    model_name = default_model_name(project)
    trainer = Trainer(project, model_name)

    answers = queue_answers(session=session, project=project)
    roles = _role_counts(session, project)
    items = load_labeled(session=session, project=project)
    validation = load_validation(session=session, project=project)
    n_control = int(items.is_control.sum())
    multi = bool(project.multi_label)

    sizes = (
        []
        if multi or len(validation) < MIN_VALIDATION
        else curve_sizes(n_control, n_points=n_points)
    )
    n_rounds = int(
        session.scalar(
            select(func.count())
            .select_from(Round)
            .where(Round.project_id == project.id, Round.mode == "model")
        )
        or 0
    )
    steps.add(len(sizes) * repeats + min(n_rounds, 12) + 1)

    stops = None if multi else stop_set(session=session, project=project, rng=rng)
    rounds = (
        []
        if multi
        else round_errors(
            session=session,
            project=project,
            items=items,
            trainer=trainer,
            validation=validation,
            stop_features=stops,
            seed=seed,
            tick=steps.tick,
        )
    )
    current = None
    final: dict[str, Any] | None = None
    if not multi and len(set(items.labeled.labels)) >= 2:
        current = trainer(items.labeled, seed)
        final = {
            "n_training": len(items.labeled),
            "validation_macro_f1": None,
            "stop_set_predictions": None
            if stops is None
            else np.asarray(current.predict(stops), dtype=object),
        }
        if len(validation):
            from labelwise.metrics import score_predictions

            final["validation_macro_f1"] = float(
                score_predictions(
                    np.asarray(validation.labels, dtype=object),
                    np.asarray(current.predict(validation.features), dtype=object),
                    metric="macro_f1",
                )
            )
    steps.tick()

    curve_points: list[dict[str, Any]] = []
    gain = None
    if sizes and n_control >= MIN_CONTROL_LABELS:
        result = learning_curves(
            fit=trainer,
            classes=[str(c) for c in project.labels],
            control=items.rows(items.is_control),
            everything=items.labeled,
            validation=validation,
            sizes=sizes,
            repeats=repeats,
            rng=rng,
            tick=steps.tick,
        )
        curve_points = result.points()
        gain = paired_bootstrap(result, metric=metric, rng=rng)
    code, text = verdict(
        n_control=n_control, n_validation=len(validation), gain=gain, metric=metric
    )
    if multi:
        code, text = (
            "inconclusive",
            ("The control-slice comparison covers single-label projects only."),
        )
    control_error, n_control_err = _weighted_error(rounds, "control")
    selected_error, n_selected_err = _weighted_error(rounds, "selected")

    drift_figures = drift(session=session, project=project, model=current, rng=rng)
    n_versions = int(
        session.scalar(
            select(func.count())
            .select_from(ModelVersion)
            .where(ModelVersion.project_id == project.id)
        )
        or 0
    )
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "project": project.name,
        "generated_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
        "model": model_name,
        "seed": seed,
        "totals": {
            "pool_items": count_pool(session, project),
            "validation_items": roles["validation"],
            "gold_items": roles["gold"],
            "failure_items": roles["failure"],
            "labeled_items": len(items.labeled),
            "labeled_validation_items": len(validation),
            "answers": len(answers),
            "control_labels": n_control,
            "rounds": int(
                session.scalar(
                    select(func.count())
                    .select_from(Round)
                    .where(Round.project_id == project.id)
                )
                or 0
            ),
            "model_versions": n_versions,
        },
        "labels_per_week": labels_per_week(answers),
        "time_per_item": time_per_item(answers),
        "gold": gold_error(answers),
        "model_versions": model_curve(session=session, project=project),
        "control_slice": {
            "verdict": code,
            "verdict_text": text,
            "metric": metric,
            "gain_points": None if gain is None else round(gain[0], 2),
            "interval_low": None if gain is None else round(gain[1], 2),
            "interval_high": None if gain is None else round(gain[2], 2),
            "confidence": CONFIDENCE,
            "n_control": n_control,
            "n_labels": len(items.labeled),
            "n_validation": len(validation),
            "min_control": MIN_CONTROL_LABELS,
            "repeats": repeats,
            "learning_curve": curve_points,
            "model_error": {
                "control": control_error,
                "selected": selected_error,
                "n_control": n_control_err,
                "n_selected": n_selected_err,
            },
        },
        "coverage": []
        if multi
        else coverage(
            session=session,
            project=project,
            items=items,
            model=current,
            rng=rng,
            min_control=MIN_CONTROL_LABELS,
        ),
        "agreement": agreement_trend(answers),
        "drift": {
            "score_shift": drift_figures,
            "control_error_by_round": [
                {
                    key: value
                    for key, value in row.items()
                    if key != "stop_set_predictions"
                }
                for row in rounds
            ],
        },
        "stop": _stop(project, rounds, final),
        "failures": _failures(session=session, project=project),
    }
    return report


def _failures(*, session: Session, project: Project) -> dict[str, Any]:
    """The loop's failure summary (docs/loop.md), plus the report's own names
    for three of its counts: ``items``, ``labeled``, ``selected_near_failures``."""
    summary = failure_summary(session=session, project=project)
    return {
        "items": summary["failures"],
        "labeled": summary["with_right_label"],
        "selected_near_failures": summary["error_driven_picks"],
        **summary,
    }
