"""The package split of template.yaml (README "Package size"): zip functions with the slim
deps layer, container-image functions with a Dockerfile each, and the local deploy running
exactly what each Dockerfile copies."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from bench.package import LAMBDA_UNZIPPED_LIMIT, MIB, function_packages, installed_closure, requirement_lines, venv_estimate
from streamflow_local.image import DockerfileError, image_of, read_dockerfile
from streamflow_local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core"
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(load_template(ROOT / "template.yaml"), name="streamflow", region="us-east-1")


@pytest.fixture(scope="module")
def packages():
    return function_packages()


def _functions(stack: Stack, kind: str) -> list[str]:
    found = [logical for logical in stack.of_type("AWS::Serverless::Function")
             if stack.function_properties(logical).get("PackageType", "Zip") == kind]
    assert found, kind
    return found


def _core_files() -> dict[str, bytes]:
    return {p.relative_to(CORE).as_posix(): p.read_bytes() for p in sorted((CORE / "streamflow").rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_image_functions_have_a_dockerfile_and_no_zip_properties(stack):
    for logical in _functions(stack, "Image"):
        props = stack.function_properties(logical)  # Globals merged: none may bring Runtime or Layers
        assert not {"Runtime", "Handler", "Layers", "CodeUri", "InlineCode"} & set(props), logical
        metadata_ = stack.resources[logical]["Metadata"]
        assert metadata_["DockerContext"] == "." and metadata_["DockerTag"], logical
        assert (ROOT / metadata_["Dockerfile"]).is_file(), logical


def test_zip_functions_run_python311_with_the_core_and_slim_deps_layers(stack):
    for logical in _functions(stack, "Zip"):
        props = stack.function_properties(logical)
        assert props["Runtime"] == RUNTIME == "python3.11", logical  # the venv that plays Lambda locally
        # + the registry plugin's layer where the stack provisions the registry (test_registry_plugin.py)
        assert props["Layers"][:2] == [{"Ref": "CoreLayer"}, {"Ref": "DepsLayer"}], logical
        extra = props["Layers"][2:]
        if logical == "ApiFunction":  # /predict/batch's NumPy (layers/numpy/), the API's alone
            assert extra[:1] == [{"Ref": "NumpyLayer"}]
            extra = extra[1:]
        assert stack.resolve(extra) == [], logical  # this stack's registry is a URI
        assert (ROOT / props["CodeUri"] / f"{props['Handler'].split('.')[0]}.py").is_file(), logical
        assert not (ROOT / props["CodeUri"] / "Dockerfile").exists(), logical


def test_every_dockerfile_copies_exactly_its_app_and_the_core_package(stack):
    """local ≡ image: the local deploy ships what the COPY lines put under the task root,
    and that is the function's app.py plus the same streamflow files the core layer holds."""
    core = _core_files()
    for logical in _functions(stack, "Image"):
        image = image_of(ROOT, stack.resources[logical], stack.function_properties(logical))
        folder = image.dockerfile.parent
        assert image.runtime == RUNTIME, logical
        assert image.handler == "app.handler", logical
        assert image.task_root == "/var/task", logical
        assert image.entrypoint == ("/usr/local/bin/python", "-m", "awslambdaric"), logical
        expected = {"app.py": (folder / "app.py").read_bytes(), **core}
        with zipfile.ZipFile(io.BytesIO(image.code_zip())) as archive:
            shipped = {name: archive.read(name) for name in archive.namelist()}
        assert shipped == expected, (logical, set(shipped) ^ set(expected))
        assert re.search(r"^handler = ", (folder / "app.py").read_text(), re.M), logical


def test_every_image_installs_its_requirements_with_the_project_pins(stack):
    included = {(ROOT / line.split(None, 1)[1]).resolve() for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.startswith("-r ")}
    for logical in _functions(stack, "Image"):
        image = image_of(ROOT, stack.resources[logical], stack.function_properties(logical))
        # + AWS's sagemaker-mlflow plugin in the images that call the registry (test_registry_plugin.py)
        assert image.requirements[0] == image.dockerfile.parent / "requirements.txt", logical
        assert image.requirements[1:] in ((), (ROOT / "layers" / "registry" / "requirements.txt",)), logical
        assert image.requirements[0] in included, f"{logical}: requirements.txt must include it (the venv plays it)"
        assert image.constraints == (ROOT / "constraints.txt",), logical
        assert image.pip_packages and all(re.fullmatch(r"[\w.-]+==[\w.]+", p) for p in image.pip_packages), logical


# The one requirement the venv does not satisfy: the API's NumPy layer, pinned to the newest
# NumPy with a wheel for Lambda's python3.11 (glibc 2.26); the venv has the images' newer NumPy 2.
LAYER_NUMPY = "numpy==2.2.6"


def test_requirement_files_agree_and_the_venv_satisfies_them():
    files = [ROOT / "layers" / "numpy" / "requirements.txt", ROOT / "layers" / "deps" / "requirements.txt",
             *sorted(ROOT.glob("functions/*/requirements.txt"))]
    assert requirement_lines(files[:1]) == [LAYER_NUMPY]
    assert metadata.version("numpy").split(".")[0] == LAYER_NUMPY.split("==")[1].split(".")[0]  # same major
    specs: dict[str, set[str]] = {}
    for line in [line for line in requirement_lines(files) if line != LAYER_NUMPY]:
        requirement = Requirement(line)
        specs.setdefault(requirement.name.lower().replace("_", "-"), set()).add(str(requirement.specifier))
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (line, installed)
    assert all(len(v) == 1 for v in specs.values()), {k: v for k, v in specs.items() if len(v) > 1}


def test_the_docker_context_holds_what_the_dockerfiles_copy_and_little_else(stack):
    docker_build = pytest.importorskip("docker.utils.build")  # what sam build (docker-py) sends
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for logical in _functions(stack, "Image"):
        image = image_of(ROOT, stack.resources[logical], stack.function_properties(logical))
        dockerfile = image.dockerfile.relative_to(ROOT).as_posix()
        sent = set(docker_build.exclude_paths(str(ROOT), patterns, dockerfile=dockerfile))
        needed = {f.relative_to(ROOT).as_posix() for f, _ in image.files} | {
            f.relative_to(ROOT).as_posix() for f in image.requirements + image.constraints}
        assert needed <= sent, (logical, needed - sent)
        files = [ROOT / p for p in sent if (ROOT / p).is_file()]
        assert not [p for p in sent if p.endswith(".pyc") or p.startswith((".venv", ".local-stack", ".git/"))]
        assert sum(f.stat().st_size for f in files) < 2 * MIB, logical


def test_zip_functions_fit_the_unzipped_limit_with_room_to_spare():
    """From the venv's installed files (same versions as the layer; ``make bench`` measures the
    real ``sam build``): code + core layer + slim deps layer, with 20 % kept for wheel
    differences between platforms."""
    for logical, size in venv_estimate().items():
        if size["package"] == "zip":
            assert size["total_mib"] * 1.2 * MIB <= LAMBDA_UNZIPPED_LIMIT, (logical, size)


GUARD = textwrap.dedent("""
    import importlib, importlib.abc, json, sys
    allowed = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names) | {"app", "streamflow"}

    class OnlyTheLayers(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top not in allowed and not top.startswith("_"):
                raise ModuleNotFoundError(f"No module named {name!r} (not in the function's layers)", name=name)
            return None

    sys.meta_path.insert(0, OnlyTheLayers())
    importlib.import_module("app")
    print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
""")


def test_zip_functions_import_nothing_their_layers_do_not_hold(stack, packages):
    """Each zip function's init, in this venv but with every module outside its layers'
    distributions refused (as on Lambda, where only the layers are there)."""
    provided = metadata.packages_distributions()
    for logical in _functions(stack, "Zip"):
        package = packages[logical]
        closure = set(installed_closure(requirement_lines(package["requirements"])))
        allowed = sorted(module for module, dists in provided.items()
                         if any(re.sub(r"[-_.]+", "-", d).lower() in closure for d in dists))
        props = stack.function_properties(logical)
        env = {"PYTHONPATH": f"{ROOT / props['CodeUri']}:{CORE}", "PATH": "/usr/bin:/bin",
               "DATA_BUCKET": "b", "FEATURE_TABLE": "t", "MODEL_NAME": "m", "AWS_DEFAULT_REGION": "us-east-1",
               "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        done = subprocess.run([sys.executable, "-c", GUARD, json.dumps(allowed)], capture_output=True, text=True,
                              env=env, cwd=ROOT / props["CodeUri"], timeout=120)
        assert done.returncode == 0, (logical, done.stderr[-2000:])
        imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
        assert not {"pandas", "numpy", "sklearn", "scipy", "pyarrow", "evidently"} & imported, logical


# --- the Dockerfile reader -------------------------------------------------------------------


def _dockerfile(tmp_path: Path, body: str) -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text("handler = print\n")
    (tmp_path / "pkg" / "sub").mkdir(parents=True, exist_ok=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "m.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "req.txt").write_text("six\n")
    path = tmp_path / "fn" / "Dockerfile"
    path.write_text(textwrap.dedent(body))
    return path


def test_reader_follows_env_workdir_copy_and_cmd(tmp_path):
    dockerfile = _dockerfile(tmp_path, """\
        # comment
        FROM public.ecr.aws/lambda/python:3.11
        ENV LAMBDA_TASK_ROOT=/var/task
        COPY req.txt /tmp/
        RUN pip install --no-cache-dir six==1.17.0 \\
                -r /tmp/req.txt --target "${LAMBDA_TASK_ROOT}" && rm /tmp/req.txt
        WORKDIR ${LAMBDA_TASK_ROOT}
        COPY pkg pkg/
        COPY fn/app.py ./
        CMD ["app.handler"]
        """)
    image = read_dockerfile(dockerfile, tmp_path)
    assert image.runtime == "python3.11" and image.handler == "app.handler"
    assert image.code_paths() == ["app.py", "pkg/__init__.py", "pkg/sub/m.py"]  # no __pycache__, no /tmp
    assert image.requirements == (tmp_path / "req.txt",)
    assert image.pip_packages == ("six==1.17.0",)
    assert read_dockerfile(dockerfile, tmp_path, command=["other.main"]).handler == "other.main"  # ImageConfig


@pytest.mark.parametrize("line", [
    "COPY --chown=1 fn/app.py /var/task/",
    "COPY fn/*.py /var/task/",
    "COPY ../outside /var/task/",
    "ADD fn/app.py /var/task/",
    "FROM python:3.11 AS second",
    "COPY fn/app.py ${UNSET}/",
])
def test_reader_refuses_what_it_cannot_reproduce(tmp_path, line):
    dockerfile = _dockerfile(tmp_path, f"FROM python:3.11-slim\nCOPY fn/app.py /var/task/\n{line}\nCMD [\"app.handler\"]\n")
    with pytest.raises(DockerfileError):
        read_dockerfile(dockerfile, tmp_path)


def test_reader_needs_one_handler_and_code_under_the_task_root(tmp_path):
    with pytest.raises(DockerfileError, match="handler"):
        read_dockerfile(_dockerfile(tmp_path, "FROM python:3.11\nCOPY fn/app.py /var/task/\n"), tmp_path)
    with pytest.raises(DockerfileError, match="task root"):
        read_dockerfile(_dockerfile(tmp_path, "FROM python:3.11\nCOPY fn/app.py /srv/\nCMD [\"app.handler\"]\n"),
                        tmp_path)


def test_local_deploy_creates_an_image_function_as_its_dockerfile_assembles_it(stack, monkeypatch, tmp_path):
    """What the deployer hands moto for TrainFunction: the image's files, its CMD handler, no layers."""
    from streamflow_local import deploy as deploy_module

    calls = {}

    class FakeLambda:
        class exceptions:
            ResourceNotFoundException = KeyError

        def get_function(self, FunctionName):
            raise KeyError(FunctionName)

        def create_function(self, **kwargs):
            calls[kwargs["FunctionName"]] = kwargs

    from streamflow_local.config import StackConfig

    deployer = deploy_module.LocalDeployer.__new__(deploy_module.LocalDeployer)
    deployer.stack, deployer.layer_arns, deployer.clients = stack, {
        "CoreLayer": "arn:core", "DepsLayer": "arn:deps", "NumpyLayer": "arn:numpy"}, {
        "lambda": FakeLambda()}
    deployer.config = StackConfig(state_dir=tmp_path)
    monkeypatch.setenv(deploy_module.TRACE_IMPORTS_ENV, "1")
    described = deployer._function("TrainFunction", "arn:role")
    assert described["package_type"] == "Image" and described["code"] == ["app.py", "streamflow/"]
    call = calls["streamflow-train"]
    assert call["Runtime"] == "python3.11" and call["Handler"] == "app.handler" and call["Layers"] == []
    assert call["Timeout"] == 900 and call["Environment"]["Variables"]["PYTHONPROFILEIMPORTTIME"] == "1"
    with zipfile.ZipFile(io.BytesIO(call["Code"]["ZipFile"])) as archive:
        assert archive.read("app.py") == (ROOT / "functions" / "train" / "app.py").read_bytes()
        assert set(archive.namelist()) == {"app.py", *_core_files()}
    zipped = deployer._function("ApiFunction", "arn:role")
    assert zipped["package_type"] == "Zip"
    deployer._function("IngestFunction", "arn:role")
    assert calls["streamflow-ingest"]["Layers"] == ["arn:core", "arn:deps"]
    # The import guard: each worker may import what its package installs, nothing else.
    guards = {name: json.loads(Path(call["Environment"]["Variables"][deploy_module.IMPORT_GUARD_ENV]).read_text())
              for name, call in calls.items()}
    assert {"sklearn", "skops", "mlflow", "pyarrow"} <= set(guards["streamflow-train"]["modules"])
    assert {"fastapi", "mangum", "mlflow", "boto3"} <= set(guards["streamflow-api"]["modules"])
    assert not {"sklearn", "pandas", "pyarrow"} & set(guards["streamflow-api"]["modules"])
    assert "numpy" in guards["streamflow-api"]["modules"]  # its NumPy layer: /predict/batch, not at init
    assert calls["streamflow-api"]["Layers"] == ["arn:core", "arn:deps", "arn:numpy"]
    assert "numpy" not in guards["streamflow-ingest"]["modules"]  # only the API carries the NumPy layer


def test_worker_guard_refuses_modules_outside_the_package(tmp_path):
    """The worker with STREAMFLOW_IMPORT_GUARD: an allowed module imports, another does not."""
    guard = tmp_path / "guard.json"
    guard.write_text(json.dumps({"modules": ["yaml"]}))
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(textwrap.dedent("""
        import yaml

        def handler(event, context):
            import importlib.util

            try:
                import pandas  # noqa: F401
            except ImportError as exc:
                return {"refused": str(exc), "probe": importlib.util.find_spec("pandas")}
            return {"refused": None}
    """))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path / 'code'}:{ROOT / 'infra' / 'local'}",
           "_HANDLER": "app.handler", "STREAMFLOW_IMPORT_GUARD": str(guard)}
    done = subprocess.run([sys.executable, "-m", "streamflow_local.worker"], input="{}\n", capture_output=True,
                          text=True, env=env, cwd=tmp_path / "code", timeout=60)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"ready": True}, done.stderr
    assert lines[1]["payload"] == {"refused": "No module named 'pandas'", "probe": None}
    assert "[import guard] 'pandas' is not in this function's package" in done.stderr
