"""TrainChallenger: fit on the month's training users, register a new MLflow version."""

from streamflow import metrics, steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.train_challenger, measure=metrics.train)
