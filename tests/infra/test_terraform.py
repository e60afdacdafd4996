"""The Terraform in `infra/`, checked without Azure: every `.tf` file is parsed with python-hcl2 (never
skipped), `terraform fmt -check` runs when terraform is on PATH, and the parsed resources are checked
against each other and against the code. The checks: references resolve; the app settings point at the
state account; the identity has its storage roles; the tables and queues the code uses are declared; and
every alert and workbook query reads only names in `core.telemetry.names`.

Nothing here runs `terraform validate` or `apply`: the provider schema cannot be downloaded here.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

from core.engine.states import Result
from core.messages import POISON_SUFFIX
from core.telemetry import names

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CORE = ROOT / "core"

_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
_REFERENCE = re.compile(r"\b((?:azurerm|random)_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)")
_HOST_ROLES = {  # what Functions documents for an identity-based AzureWebJobsStorage (blob leases, keys)
    "Storage Blob Data Owner",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
}
_STATE_ROLES = {  # Floe's tables, queues and container: Contributor is enough
    "Storage Blob Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
}
_ALERTS = {
    "failed_runs": {names.RUNS_FINISHED},
    "long_runs": {names.RUN_DURATION, names.RUN_AGE},
    "poison_messages": {names.POISON_MESSAGES},
    "tick_lag": {names.TICK_LAG, names.TRIGGER_LAG},
}
_ALERT = "azurerm_monitor_scheduled_query_rules_alert_v2"
_PREFIXED = "${var.storage_prefix}${each.key}"  # the names of Floe's tables, queues and containers
_APP = "azurerm_function_app_flex_consumption"
# The attributes of a storage account that hold a key, or a connection string with one.
_KEY_ATTRIBUTE = re.compile(
    r"azurerm_storage_account\.\w+\.(primary|secondary)_(access_key|connection_string|blob_connection_string)"
)


@dataclass(repr=False)
class Terraform:
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # terraform, provider
    text: str = ""

    def __repr__(self) -> str:
        return f"Terraform({INFRA})"

    def resource(self, address: str) -> dict[str, Any]:
        kind, name = address.split(".")
        return self.resources[kind][name]


@pytest.fixture(scope="module")
def tf() -> Terraform:
    parsed = Terraform()
    files = sorted(INFRA.glob("*.tf"))
    assert files, f"no .tf files in {INFRA}"
    for path in files:
        parsed.text += path.read_text()
        with path.open() as f:
            document = hcl2.load(f, serialization_options=_OPTIONS)
        for kind_map in document.get("resource", []):
            for kind, by_name in kind_map.items():
                for name, body in by_name.items():
                    assert name not in parsed.resources.get(kind, {}), f"{kind}.{name} declared twice"
                    parsed.resources.setdefault(kind, {})[name] = body
        for var in document.get("variable", []):
            parsed.variables.update(var)
        for out in document.get("output", []):
            parsed.outputs.update(out)
        for local in document.get("locals", []):
            parsed.locals.update(local)
        for key in ("terraform", "provider"):
            parsed.blocks.setdefault(key, []).extend(document.get(key, []))
    return parsed


def _text(value: str) -> str:
    """The text of an HCL string, heredocs (`<<-KQL ... KQL`) included."""
    heredoc = re.fullmatch(r"<<(-?)([A-Za-z_]\w*)\n(.*?)\n[ \t]*\2", value, re.S)
    if heredoc:
        body = heredoc.group(3)
        return textwrap.dedent(body) if heredoc.group(1) else body
    return value


def _refs(value: Any) -> set[str]:
    """Every `type.name` of a resource that `value` references."""
    return {f"{m.group(1)}.{m.group(2)}" for m in _REFERENCE.finditer(json.dumps(value))}


def _expand_locals(value: str, tf: Terraform) -> str:
    for _ in range(5):
        value = re.sub(r"\blocal\.(\w+)", lambda m: str(tf.locals[m.group(1)]), value)
    return value


def _workbook_template(tf: Terraform) -> tuple[Path, set[str]]:
    data_json = tf.resource("azurerm_application_insights_workbook.main")["data_json"]
    found = re.search(r'templatefile\("\$\{path\.module\}/([^"]+)",\s*\{(.*)\}\)', data_json, re.S)
    assert found, f"data_json should be templatefile(...): {data_json}"
    passed = set(re.findall(r"(\w+)\s*=", found.group(2)))
    return INFRA / found.group(1), passed


def _render_workbook(tf: Terraform) -> dict[str, Any]:
    path, passed = _workbook_template(tf)
    template = path.read_text()
    used = set(re.findall(r"\$\{(\w+)\}", template))
    assert used == passed, f"{path.name} uses {sorted(used)} but workbook.tf passes {sorted(passed)}"
    fake_id = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Insights/components/appi"
    rendered = template
    for name in used:
        rendered = rendered.replace("${" + name + "}", fake_id)
    assert "${" not in rendered and "%{" not in rendered, "a template directive was left unrendered"
    return json.loads(rendered)


def _queries(tf: Terraform) -> dict[str, str]:
    """Every KQL query in infra/: the alert rules' and the workbook's, by a readable id."""
    queries = {
        f"alert {name}": _text(rule["criteria"][0]["query"]) for name, rule in tf.resources[_ALERT].items()
    }
    for item in _render_workbook(tf)["items"]:
        if item["type"] == 3:
            queries[f"workbook {item['name']}"] = item["content"]["query"]
    return queries


def _names_in(query: str) -> set[str]:
    found = set(re.findall(r'\bname\s*(?:==|=~)\s*"([^"]+)"', query))
    for listed in re.findall(r"\bname\s+in\s*\(([^)]*)\)", query):
        found |= set(re.findall(r'"([^"]+)"', listed))
    return found


# ------------------------------------------------------------------------------------------ parsing


def test_every_tf_file_parses_and_references_resolve(tf: Terraform) -> None:
    declared = {f"{kind}.{name}" for kind, by_name in tf.resources.items() for name in by_name}
    assert _refs(tf.text) <= declared, f"references to undeclared resources: {_refs(tf.text) - declared}"
    used_vars = set(re.findall(r"\bvar\.(\w+)", tf.text))
    assert used_vars == set(tf.variables), (
        f"undeclared: {used_vars - set(tf.variables)}; unused: {set(tf.variables) - used_vars}"
    )
    used_locals = set(re.findall(r"\blocal\.(\w+)", tf.text))
    assert used_locals <= set(tf.locals), f"undeclared locals: {used_locals - set(tf.locals)}"


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform is not on PATH, so `terraform fmt -check` cannot run (it is not installable from the "
            "package registries CI reaches); the python-hcl2 tests in this module still parse every file"
        )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": ""}
    done = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"terraform fmt would change infra/:\n{done.stdout}{done.stderr}"


def test_azurerm_provider_is_pinned_to_4x(tf: Terraform) -> None:
    providers = tf.blocks["terraform"][0]["required_providers"][0]
    assert providers["azurerm"]["source"] == "hashicorp/azurerm"
    assert re.fullmatch(r"~> 4\.\d+", providers["azurerm"]["version"])


# ------------------------------------------------------------------------------------------ storage


def _call_arguments(source: str, call: str) -> list[str]:
    """The argument text of every `<call>(...)` in `source`, nested parentheses included."""
    found = []
    for match in re.finditer(re.escape(call) + r"\(", source):
        depth, start = 1, match.end()
        for i in range(start, len(source)):
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            if depth == 0:
                found.append(source[start:i].strip())
                break
    return found


def _names_used_in_code(call: str) -> tuple[set[str], set[str]]:
    """Names passed to `tables.table(...)` / `queues.queue(...)` in core/ (outside the store adapters) and
    functions/, resolved through the module's constants (`WORK_QUEUE`, `WORK_QUEUE + POISON_SUFFIX`); and
    the expressions that are not constants, which only run time can name."""
    static: set[str] = set()
    dynamic: set[str] = set()
    paths = [p for p in sorted(CORE.rglob("*.py")) if CORE / "store" not in p.parents]
    paths += sorted((ROOT / "functions").rglob("*.py"))
    for path in paths:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for argument in _call_arguments(path.read_text(), call):
            if re.fullmatch(r'"[^"]+"', argument):
                static.add(argument.strip('"'))
            elif re.fullmatch(r"[A-Z][A-Z0-9_]*(\s*\+\s*[A-Z][A-Z0-9_]*)*", argument):
                loaded = importlib.import_module(module)
                static.add("".join(getattr(loaded, part.strip()) for part in argument.split("+")))
            else:
                dynamic.add(argument)
    return static, dynamic


def test_every_table_floe_uses_is_declared(tf: Terraform) -> None:
    used, dynamic = _names_used_in_code("tables.table")
    assert {"jobs", "runs", "triggers", "clusters"} <= used, f"the grep of core/ found too little: {used}"
    assert not dynamic, f"table names computed at run time cannot be declared in infra/: {dynamic}"
    declared = set(tf.locals["floe_tables"])
    assert used <= declared, f"tables used in core/ but missing from infra/storage.tf: {used - declared}"
    table = tf.resource("azurerm_storage_table.floe")
    assert table["for_each"] == "${toset(local.floe_tables)}"
    assert table["name"] == _PREFIXED
    assert _refs(table) == {"azurerm_storage_account.state"}


def test_every_queue_floe_uses_is_declared_and_the_apps_poison_queue(tf: Terraform) -> None:
    used, dynamic = _names_used_in_code("queues.queue")
    assert {"floe-work", "floe-tasks"} <= used, f"the grep of core/ found too little: {used}"
    # Per-host queues are named at run time (Floe creates them).
    unexpected = {d for d in dynamic if not d.startswith("host_queue(")}
    assert not unexpected, f"queue names computed at run time that infra/ knows nothing about: {unexpected}"
    declared = set(tf.locals["floe_queues"])
    # The Functions host moves what fails 5 times on a queue the app binds to `<queue>-poison`.
    bound = {importlib.import_module("functions.queues").WORK.removeprefix("%FLOE_STORAGE_PREFIX%")}
    needed = used | {name + POISON_SUFFIX for name in bound}
    assert needed <= declared, f"queues missing from infra/storage.tf: {needed - declared}"
    queue = tf.resource("azurerm_storage_queue.floe")
    assert queue["for_each"] == "${toset(local.floe_queues)}"
    assert queue["name"] == _PREFIXED
    assert _refs(queue) == {"azurerm_storage_account.state"}


def test_floes_blob_container_is_declared_on_the_state_account(tf: Terraform) -> None:
    source = (CORE / "store" / "azure" / "__init__.py").read_text()
    containers = re.findall(r'AzureBlobStore\([^)]*f"\{prefix\}([a-z0-9-]+)"', source)
    assert containers, "could not find the container name in core/store/azure/__init__.py"
    assert set(containers) <= set(tf.locals["floe_containers"])
    container = tf.resource("azurerm_storage_container.floe")
    assert container["name"] == _PREFIXED
    assert _refs(container) == {"azurerm_storage_account.state"}
    deployment = tf.resource("azurerm_storage_container.deployment")
    assert _refs(deployment) == {"azurerm_storage_account.deployment"}


# ---------------------------------------------------------------------------------------- functions


def test_function_app_runs_python_311_on_the_flex_consumption_plan(tf: Terraform) -> None:
    plan = tf.resource("azurerm_service_plan.main")
    assert (plan["sku_name"], plan["os_type"]) == ("FC1", "Linux")
    app = tf.resource(f"{_APP}.main")
    assert app["service_plan_id"] == "${azurerm_service_plan.main.id}"
    assert (app["runtime_name"], app["runtime_version"]) == ("python", "3.11")
    assert app["identity"][0]["type"] == "SystemAssigned"
    assert app["instance_memory_in_mb"] == "${var.instance_memory_mb}"
    assert app["maximum_instance_count"] == "${var.maximum_instance_count}"


def _account_name(tf: Terraform, account: str, name_prefix: str, suffix: str) -> str:
    """The name of storage account `account`, with `var.name_prefix` and `local.suffix` filled in."""
    expression = tf.resource(f"azurerm_storage_account.{account}")["name"]
    found = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
    assert found, f"azurerm_storage_account.{account} should be named by a local: {expression}"
    name = tf.locals[found.group(1)].replace("${var.name_prefix}", name_prefix)
    return name.replace("${local.suffix}", suffix)


def test_host_storage_is_its_own_account_and_the_package_is_elsewhere(tf: Terraform) -> None:
    app = tf.resource(f"{_APP}.main")
    # AzureWebJobsStorage (timer locks, host keys) is the `host` account; Floe's state is in `state`.
    assert app["function_app_storage_account_name"] == "${azurerm_storage_account.host.name}"
    assert app["function_app_storage_uses_managed_identity"] is True
    assert "function_app_storage_account_access_key" not in app
    assert _refs(app["storage_container_endpoint"]) == {
        "azurerm_storage_account.deployment",
        "azurerm_storage_container.deployment",
    }
    assert app["storage_authentication_type"] == "SystemAssignedIdentity"
    assert "storage_access_key" not in app

    host = tf.resource("azurerm_storage_account.host")
    assert (host["account_kind"], host["account_tier"], host["account_replication_type"]) == (
        "StorageV2",
        "Standard",
        "LRS",
    )
    assert host["min_tls_version"] == "TLS1_2"
    assert host["allow_nested_items_to_be_public"] is False
    # Nothing of Floe's lives in the host's account.
    for kind in ("azurerm_storage_table", "azurerm_storage_queue", "azurerm_storage_container"):
        for name, body in tf.resources[kind].items():
            assert "azurerm_storage_account.host" not in _refs(body), f"{kind}.{name} is on the host account"


@pytest.mark.parametrize("name_prefix", ["fl", "abcdefghij"])  # the shortest and longest variables.tf allows
def test_storage_account_names_are_valid_and_distinct(tf: Terraform, name_prefix: str) -> None:
    assert set(tf.resources["azurerm_storage_account"]) == {"state", "host", "deployment"}
    rendered = {
        account: _account_name(tf, account, name_prefix, "ab12cd")
        for account in ("state", "host", "deployment")
    }
    for account, name in rendered.items():
        assert re.fullmatch(r"[a-z0-9]{3,24}", name), f"{account}: {name!r} is not a storage account name"
    assert len(set(rendered.values())) == len(rendered), rendered


def test_app_settings_carry_no_key_and_floe_and_its_triggers_use_the_state_account(tf: Terraform) -> None:
    app = tf.resource(f"{_APP}.main")
    assert app["app_settings"] == "${local.app_settings}"
    settings: dict[str, str] = tf.locals["app_settings"]

    # No connection string with a key of any account: Floe gets the state account's name alone and signs
    # in as the app.
    assert settings["FLOE_AZURE_CONNECTION_STRING"] == "AccountName=${azurerm_storage_account.state.name}"
    assert not _KEY_ATTRIBUTE.search(json.dumps(settings)), settings
    assert not [v for v in settings.values() if re.search(r"AccountKey|SharedAccessSignature", str(v), re.I)]

    # The queue triggers' connection is an identity-based one on the state account: only its queue URI.
    connection = importlib.import_module("functions.queues").CONNECTION
    assert connection == "FloeStorage"
    assert [key for key in settings if key.split("__")[0] == connection] == [f"{connection}__queueServiceUri"]
    queue_uri = settings[f"{connection}__queueServiceUri"]
    assert queue_uri == '${trimsuffix(azurerm_storage_account.state.primary_queue_endpoint, "/")}'

    # What the app sees at run time, with the references resolved as Azure would, plus the setting the
    # provider writes for `function_app_storage_uses_managed_identity` (the host account).
    resolved = {
        key: value.replace("${azurerm_storage_account.state.name}", "floestateab12cd")
        for key, value in settings.items()
    }
    resolved[f"{connection}__queueServiceUri"] = "https://floestateab12cd.queue.core.windows.net"
    resolved["AzureWebJobsStorage__accountName"] = "floehostab12cd"
    # Floe refuses to start on an unknown FLOE_* name, or when its account is not the triggers': every
    # setting here must be one it knows, and the two must agree.
    loaded = importlib.import_module("functions.root").settings_from(resolved)
    assert loaded.storage == "azure"
    assert loaded.azure_connection_string == "AccountName=floestateab12cd"
    assert loaded.azure_client_id == ""  # the system-assigned identity
    # The queue bindings name %FLOE_STORAGE_PREFIX%floe-work: the setting must exist, and be the prefix
    # of the names storage.tf declares.
    assert "%FLOE_STORAGE_PREFIX%" in importlib.import_module("functions.queues").WORK
    assert settings["FLOE_STORAGE_PREFIX"] == "${var.storage_prefix}"
    assert "random_password.admin_token" in _refs(_expand_locals(settings["FLOE_ADMIN_TOKEN"], tf))
    assert _refs(settings) == {"azurerm_storage_account.state"}

    # Unsupported on Flex Consumption, or written by the provider (AzureWebJobsStorage__accountName), or
    # (a plain AzureWebJobsStorage) a key where the identity serves.
    forbidden = {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_TIME_ZONE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
    }
    assert not forbidden & set(settings)
    assert not [key for key in settings if key.split("__")[0] == "AzureWebJobsStorage"]
    assert not [key for key in settings if key.startswith("WEBSITE_CONTENT")]
    site = app["site_config"][0]
    assert _refs(site["application_insights_connection_string"]) == {"azurerm_application_insights.main"}


@pytest.mark.parametrize("account", ["host", "state"])
def test_app_identity_has_the_data_roles_on_the_host_and_state_accounts(tf: Terraform, account: str) -> None:
    principal = f"${{{_APP}.main.identity[0].principal_id}}"
    assert set(tf.locals[f"{account}_roles"]) == (_HOST_ROLES if account == "host" else _STATE_ROLES)
    roles = tf.resource(f"azurerm_role_assignment.{account}")
    assert roles["for_each"] == f"${{toset(local.{account}_roles)}}"
    assert roles["role_definition_name"] == "${each.key}"
    assert roles["scope"] == f"${{azurerm_storage_account.{account}.id}}"
    assert roles["principal_id"] == principal
    assert roles["principal_type"] == "ServicePrincipal"


def test_app_identity_reads_the_deployment_package(tf: Terraform) -> None:
    deployment = tf.resource("azurerm_role_assignment.deployment")
    assert deployment["scope"] == "${azurerm_storage_account.deployment.id}"
    assert deployment["role_definition_name"] == "Storage Blob Data Owner"
    assert deployment["principal_id"] == f"${{{_APP}.main.identity[0].principal_id}}"


@pytest.mark.parametrize("account", ["host", "state"])
def test_the_host_and_state_accounts_refuse_keys(tf: Terraform, account: str) -> None:
    assert tf.resource(f"azurerm_storage_account.{account}")["shared_access_key_enabled"] is False


def test_terraform_reads_no_key_and_needs_none(tf: Terraform) -> None:
    # Nothing reads a key or a connection string with a key of any account, anywhere in infra/.
    assert not _KEY_ATTRIBUTE.search(tf.text), _KEY_ATTRIBUTE.findall(tf.text)
    # Terraform manages the tables, queues and containers through Resource Manager (by account id), never
    # through the data plane, which would need the refused key.
    for kind in ("azurerm_storage_table", "azurerm_storage_queue", "azurerm_storage_container"):
        for name, body in tf.resources[kind].items():
            assert "storage_account_name" not in body, f"{kind}.{name} goes through the data plane"
            assert body["storage_account_id"].endswith(".id}"), f"{kind}.{name}"
    provider = tf.blocks["provider"][0]["azurerm"]
    assert provider["features"][0]["storage"][0]["data_plane_available"] is False
    assert provider["storage_use_azuread"] is True


# ------------------------------------------------------------------------------------------- runners


def test_the_app_submits_tasks_to_runners(tf: Terraform) -> None:
    settings: dict[str, str] = tf.locals["app_settings"]
    assert settings["FLOE_TASKS"] == "runners"


def test_runners_sign_in_to_the_state_account_and_share_the_apps_prefix(tf: Terraform) -> None:
    runner = tf.resource("azurerm_container_app.runner")
    assert runner["count"] == "${local.runners}"
    assert tf.locals["runners"] == '${var.runner_image == "" ? 0 : 1}'
    assert runner["identity"][0]["type"] == "SystemAssigned"
    [container] = runner["template"][0]["container"]
    assert container["image"] == "${var.runner_image}"
    settings: dict[str, str] = tf.locals["runner_settings"]
    app: dict[str, str] = tf.locals["app_settings"]
    assert settings["FLOE_STORAGE_PREFIX"] == app["FLOE_STORAGE_PREFIX"]  # the queues the app sends to
    assert settings["FLOE_TASKS"] == "runners"
    # A keyless connection string of the state account: Floe signs in as the container's identity.
    assert settings["FLOE_AZURE_CONNECTION_STRING"] == "AccountName=${azurerm_storage_account.state.name}"
    assert settings["FLOE_RUNNER_SLOTS"] == "${tostring(var.runner_slots)}"
    samples = {
        "${azurerm_storage_account.state.name}": "floestateab12cd",
        "${tostring(var.runner_slots)}": "4",
    }
    written = {k: _substitute(v, samples) for k, v in settings.items()}
    loaded = importlib.import_module("core.settings").Settings.from_env({**written, "FLOE_HOME": "/var/floe"})
    assert loaded.tasks == "runners" and loaded.storage == "azure" and loaded.runner_slots == 4
    from core.store.azure._connect import is_keyless, service_url

    assert is_keyless(loaded.azure_connection_string)
    assert (
        service_url(loaded.azure_connection_string, "queue")
        == "https://floestateab12cd.queue.core.windows.net"
    )
    # Replicas are fixed: one scaled in would take its running tasks with it.
    template = runner["template"][0]
    assert template["min_replicas"] == template["max_replicas"] == "${var.runner_count}"
    secrets = {s["name"]: s["value"] for s in runner["secret"]}
    assert _refs(secrets["appinsights"]) == {"azurerm_application_insights.main"}


def _substitute(value: str, samples: dict[str, str]) -> str:
    for reference, sample in samples.items():
        value = value.replace(reference, sample)
    return value


def test_runner_identity_has_the_data_roles_on_the_state_account(tf: Terraform) -> None:
    roles = tf.resource("azurerm_role_assignment.runner_state")
    assert roles["for_each"] == "${local.runners == 1 ? toset(local.state_roles) : toset([])}"
    assert roles["scope"] == "${azurerm_storage_account.state.id}"
    assert roles["principal_id"] == "${azurerm_container_app.runner[0].identity[0].principal_id}"
    assert roles["role_definition_name"] == "${each.key}"


def test_the_runner_image_runs_floe_runner_with_java_17() -> None:
    dockerfile = (INFRA / "runner" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-", dockerfile, re.M)
    assert "openjdk-17-jre-headless" in dockerfile
    assert 'CMD ["python", "-m", "core", "runner"]' in dockerfile
    copied = [source for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for source in line.split()[:-1]]
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
    assert {"requirements.txt", "requirements-runner.txt", "core"} <= set(copied)
    assert "-r requirements.txt -r requirements-runner.txt" in dockerfile


# --------------------------------------------------------------------------------------- monitoring


def test_application_insights_stores_in_the_log_analytics_workspace(tf: Terraform) -> None:
    appi = tf.resource("azurerm_application_insights.main")
    assert appi["workspace_id"] == "${azurerm_log_analytics_workspace.main.id}"


def test_each_alert_the_issue_lists_exists_and_notifies_the_action_group(tf: Terraform) -> None:
    rules = tf.resources[_ALERT]
    assert set(rules) == set(_ALERTS)
    group = tf.resource("azurerm_monitor_action_group.main")
    assert group["email_receiver"][0]["email_address"] == "${var.alert_email}"
    for name, metrics in _ALERTS.items():
        rule = rules[name]
        assert rule["scopes"] == ["${azurerm_application_insights.main.id}"], name
        assert rule["action"][0]["action_groups"] == ["${azurerm_monitor_action_group.main.id}"], name
        assert _names_in(_text(rule["criteria"][0]["query"])) == metrics, name
    assert rules["long_runs"]["criteria"][0]["threshold"] == "${var.run_duration_threshold_minutes * 60000}"
    assert rules["tick_lag"]["criteria"][0]["threshold"] == "${var.tick_lag_threshold_seconds * 1000}"
    assert "percentile(" in _text(rules["tick_lag"]["criteria"][0]["query"])
    for name in ("failed_runs", "poison_messages"):
        criteria = rules[name]["criteria"][0]
        assert (criteria["operator"], criteria["threshold"]) == ("GreaterThan", 0), name


def test_failed_runs_alert_counts_failed_and_timed_out_runs(tf: Terraform) -> None:
    query = _text(tf.resource(f"{_ALERT}.failed_runs")["criteria"][0]["query"])
    assert f'customDimensions["{names.RESULT_STATE}"]' in query
    listed = re.search(r"ResultState\s+in\s*\(([^)]*)\)", query)
    assert listed and set(re.findall(r'"([^"]+)"', listed.group(1))) == {Result.FAILED, Result.TIMEDOUT}


def _query_ids() -> list[str]:
    # The ids must be known when tests are collected, so this reads infra/ once more, without the fixture.
    tf = Terraform()
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as f:
            document = hcl2.load(f, serialization_options=_OPTIONS)
        for kind_map in document.get("resource", []):
            for kind, by_name in kind_map.items():
                tf.resources.setdefault(kind, {}).update(by_name)
    return sorted(_queries(tf))


@pytest.mark.parametrize("query_id", _query_ids())
def test_query_reads_only_names_floe_emits(tf: Terraform, query_id: str) -> None:
    query = _queries(tf)[query_id]
    table = query.split(None, 1)[0]
    assert table in ("customMetrics", "requests", "dependencies"), f"{query_id} reads table {table}"
    used = _names_in(query)
    assert used, f"{query_id} does not filter by a span or metric name"
    if table == "customMetrics":
        assert used <= set(names.METRICS), f"{query_id}: not metrics of Floe: {used - set(names.METRICS)}"
        allowed = {key for name in used for key in names.METRICS[name].attributes}
    else:
        assert used <= set(names.SPANS), f"{query_id}: not spans of Floe: {used - set(names.SPANS)}"
        assert {names.SPANS[name].table for name in used} == {table}, f"{query_id}: wrong table"
        allowed = {key for name in used for key in names.SPANS[name].attributes}
    assert "customDimensions." not in query, f'{query_id}: use customDimensions["key"] (keys have dots)'
    keys = set(re.findall(r'customDimensions\[\s*"([^"]+)"\s*\]', query))
    assert keys <= allowed, f"{query_id}: {sorted(keys - allowed)} are not dimensions of {sorted(used)}"
    for listed in re.findall(r"ResultState\s+!?in\s*\(([^)]*)\)", query):
        states = set(re.findall(r'"([^"]+)"', listed))
        assert states <= {r.value for r in Result}, f"{query_id}: unknown result states {states}"


def test_workbook_shows_runs_durations_failures_and_queue_age(tf: Terraform) -> None:
    workbook = tf.resource("azurerm_application_insights_workbook.main")
    assert workbook["source_id"] == "${lower(azurerm_application_insights.main.id)}"
    rendered = _render_workbook(tf)
    assert rendered["version"] == "Notebook/1.0"
    queries = {item["name"]: item["content"]["query"] for item in rendered["items"] if item["type"] == 3}
    every = "\n".join(queries.values())
    for metric in (names.RUNS_STARTED, names.RUNS_FINISHED, names.QUEUE_AGE, names.TASK_DURATION):
        assert f'"{metric}"' in every, f"the workbook does not chart {metric}"
    assert "percentile(duration" in every and f'"{names.RUN_SPAN}"' in every
    failures = queries["failed-runs"]
    for key in (names.RUN_NAME, names.RUN_ID, names.TERMINATION_CODE):
        assert f'customDimensions["{key}"]' in failures


# ------------------------------------------------------------------------------- variables, outputs


def test_every_variable_has_a_description_and_the_risky_ones_a_validation(tf: Terraform) -> None:
    for name, variable in tf.variables.items():
        assert str(variable.get("description", "")).strip(), f"variable {name} has no description"
    validated = {name for name, variable in tf.variables.items() if variable.get("validation")}
    assert {
        "location",
        "name_prefix",
        "storage_prefix",
        "alert_email",
        "run_duration_threshold_minutes",
        "tick_lag_threshold_seconds",
        "maximum_instance_count",
        "instance_memory_mb",
        "runner_count",
        "runner_cpu",
        "runner_slots",
    } <= validated
    memory = tf.variables["instance_memory_mb"]["validation"][0]["condition"]
    assert "[2048, 4096]" in memory


def test_outputs_include_the_api_url_and_hide_secrets(tf: Terraform) -> None:
    assert tf.outputs["api_url"]["value"] == f"https://${{{_APP}.main.default_hostname}}"
    for name in ("function_app_name", "state_storage_account_name", "application_insights_connection_string"):
        assert name in tf.outputs
    for name in ("application_insights_connection_string", "admin_token"):
        assert tf.outputs[name].get("sensitive") is True, f"output {name} must be sensitive"
    for name, output in tf.outputs.items():
        assert str(output.get("description", "")).strip(), f"output {name} has no description"


# ------------------------------------------------------------------------------ telemetry contract


def test_telemetry_names_survive_into_application_insights() -> None:
    for key in names.ATTRIBUTES:
        assert key.startswith(("floe.", "cicd.pipeline.")), key
        assert not key.startswith(names.DROPPED_PREFIXES), key
    for metric in names.METRICS.values():
        assert metric.name.startswith("floe."), metric.name
        assert metric.instrument in ("counter", "histogram")
        assert set(metric.attributes) <= names.ATTRIBUTES
        assert names.RUN_NAME not in metric.attributes, "run names would make one series per one-time run"
    for span in names.SPANS.values():
        assert span.name.startswith("floe."), span.name
    constants = [value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)]
    assert len(constants) == len(set(constants)), "two constants share a name"
    assert set(names.CICD_RESULT) == {r.value for r in Result}
