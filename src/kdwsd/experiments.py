"""The student experiments: one registry read by the rules, the training stage, the summary and the plots.

The Snakefile derives its ``model`` wildcard pattern from :data:`EXPERIMENTS`, and a test keeps the config
schema's ``student.experiments`` enum equal to it. Adding an experiment means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXPERIMENTS", "TEACHER_LABEL", "Experiment", "experiment", "model_name", "parse_model_name"]


@dataclass(frozen=True)
class Experiment:
    """One student recipe.

    Attributes:
        name: the key in ``student.experiments`` and the model file stem (``models/<name>.pt``).
        stage1: starts stage 2 from the stage-1 (RoI-feature KD, paper Eq. 3) student.
        prediction_kd: adds the prediction-KD loss ``L_p′`` (paper Eq. 10) to the label loss in stage 2.
        equal_compute: a baseline trained for the stage-2 schedule plus as many optimiser steps as stage 1
            takes (the same total number of steps as the students that run stage 1): the control that
            separates "distillation" from "more training".
        label: the row label in tables and figures.
    """

    name: str
    stage1: bool
    prediction_kd: bool
    label: str
    equal_compute: bool = False


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment("baseline", stage1=False, prediction_kd=False, label="S-Cls w/o KD (baseline)"),
        Experiment("baseline_long", stage1=False, prediction_kd=False, equal_compute=True,
                   label="S-Cls w/o KD, equal compute (baseline + stage-1 steps)"),
        Experiment("kd_full", stage1=True, prediction_kd=True, label="S-Cls w/ KD (stage 1 + 2, the paper)"),
        Experiment("kd_feature", stage1=True, prediction_kd=False, label="S-Cls, feature KD only (stage 1)"),
        Experiment("kd_prediction", stage1=False, prediction_kd=True, label="S-Cls, prediction KD only (stage 2)"),
    )
}
TEACHER_LABEL = "T-WDet (WSDDN teacher)"


def experiment(name: str) -> Experiment:
    """The registry entry of ``name``, with an error listing the known experiments."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown student experiment '{name}' (known: {', '.join(EXPERIMENTS)})") from None


def model_name(experiment_name: str, seed: int, first_seed: int) -> str:
    """The first seed keeps the plain experiment name (``kd_full``); further seeds get ``_seed<k>``."""
    return experiment_name if seed == first_seed else f"{experiment_name}_seed{seed}"


def parse_model_name(name: str, first_seed: int) -> tuple[Experiment, int]:
    """``'kd_full_seed2'`` -> (kd_full, 2); ``'kd_full'`` -> (kd_full, ``first_seed``)."""
    stem, _, seed = name.partition("_seed")
    return experiment(stem), int(seed) if seed else first_seed
