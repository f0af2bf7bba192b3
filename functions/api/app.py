"""The churn API: FastAPI behind API Gateway (Mangum), serving the Production model.

The champion is loaded at cold start (module import = Lambda init); Promote changes this
function's configuration, which recycles its environments onto the new champion.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from streamflow.logs import logger
from streamflow.online_store import read_online_features
from streamflow.serving import ChampionHolder
from streamflow.settings import Settings
from streamflow.training import churn_probability

PREDICTION_THRESHOLD = 0.5

settings = Settings.from_env()
champion = ChampionHolder(settings)
champion.get()  # cold start: load the champion now, not on the first request

app = FastAPI(title="StreamFlow churn API", version="1.0")


class PredictRequest(BaseModel):
    user_id: str = Field(min_length=1, max_length=64, examples=["7590-VHVEG"])


class PredictResponse(BaseModel):
    user_id: str
    churn_probability: float
    churn_prediction: bool
    model_version: str


class HealthResponse(BaseModel):
    status: str
    model_name: str
    model_version: str | None
    detail: str | None = None


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message, **extra}})


@app.exception_handler(RequestValidationError)
async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
    return error(422, "invalid_request", "the request body is not a valid PredictRequest", problems=problems)


@app.exception_handler(StarletteHTTPException)
async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error(exc.status_code, "http_error", str(exc.detail))


@app.exception_handler(Exception)
async def unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error")
    return error(500, "internal_error", "the server failed to answer; see the function's logs")


@app.get("/health", response_model=HealthResponse)
def health() -> HealthResponse:
    current = champion.get()
    return HealthResponse(
        status="ok" if current else "no_model",
        model_name=settings.model_name,
        model_version=current.version if current else None,
        detail=None if current else champion.last_error,
    )


@app.post("/predict", response_model=PredictResponse,
          responses={404: {"description": "unknown user"}, 503: {"description": "no champion yet"}})
def predict(request: PredictRequest) -> PredictResponse | JSONResponse:
    current = champion.get()
    if current is None:
        return error(503, "no_model", champion.last_error or "no Production model to serve")
    features = read_online_features(settings.feature_table, request.user_id)
    if features is None:
        return error(404, "unknown_user", f"user_id {request.user_id!r} is not in the online feature table")
    probability = float(churn_probability(current.model, features)[0])
    return PredictResponse(
        user_id=request.user_id,
        churn_probability=round(probability, 6),
        churn_prediction=probability >= PREDICTION_THRESHOLD,
        model_version=current.version,
    )


handler = Mangum(app, lifespan="off")
