"""AwaitApproval: stage the challenger and park the task token for `streamflow approve`.

Invoked with `lambda:invoke.waitForTaskToken`: the execution waits until the token is sent
back (approve → SendTaskSuccess, reject → SendTaskFailure) or the wait times out.
"""

from streamflow import steps
from streamflow.handlers import lambda_step

handler = lambda_step(steps.request_approval)
