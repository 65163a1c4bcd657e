"""Cross-module wiring of terraform/, checked offline by parsing the HCL (python-hcl2).

`terraform validate` would catch most of this, but it needs provider downloads; these tests need nothing but
the files. They also pin the promises the Helm chart and docs/deploy.md rely on: the outputs they read, the
subnet tags the AWS Load Balancer Controller needs, a private and encrypted database, prod's safety settings.

terraform/ is one root configuration; each environment is a variable file and a backend file in envs/
(their *.example copies are tracked and tested here). An environment's effective settings are the root's
defaults overlaid with its variable file.

AEGIS_TF_ROOT points the tests at another copy of the tree (terraform/tests/planted_defects.py uses it to
show that each test fails on a planted defect).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

ROOT = Path(os.environ.get("AEGIS_TF_ROOT") or Path(__file__).resolve().parents[1])
MODULES = sorted(p for p in (ROOT / "modules").iterdir() if p.is_dir())
ENVS = ROOT / "envs"
ENVIRONMENTS = sorted(p.name.removesuffix(".tfvars.example") for p in ENVS.glob("*.tfvars.example"))
OPTIONS = SerializationOptions(strip_string_quotes=True)

# What the Helm chart (values-<env>.yaml) and docs/deploy.md read from `terraform output`.
CHART_OUTPUTS = {
    "region",
    "vpc_id",
    "cluster_name",
    "ecr_repository_url",
    "db_secret_name",
    "db_secret_arn",
    "django_secret_key_secret_name",
    "app_irsa_role_arn",
    "lb_controller_role_arn",
    "external_secrets_role_arn",
    "media_bucket_name",
}
MODULE_META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}
IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"

# Prod's safety settings: (module call, its input, the root variable, the safe value). Booleans must be
# exactly the safe value; numbers at least it.
SAFETY = [
    ("rds", "multi_az", "db_multi_az", True),
    ("rds", "deletion_protection", "db_deletion_protection", True),
    ("rds", "final_snapshot", "db_final_snapshot", True),
    ("rds", "backup_retention_days", "db_backup_retention_days", 14),
    ("network", "single_nat_gateway", "single_nat_gateway", False),
    ("db_secret", "recovery_window_days", "secret_recovery_window_days", 30),
    ("ecr", "force_delete", "ecr_force_delete", False),
    ("media", "force_destroy", "media_force_destroy", False),
    ("eks", "node_min_size", "node_min_size", 3),
]


@dataclass
class Config:
    """One Terraform root or module directory, parsed."""

    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return config_id(self.path)

    def expressions(self) -> list[str]:
        """Every string in the configuration (expressions included), comments excluded."""
        found: list[str] = []
        for part in (self.variables, self.outputs, self.locals, self.modules, self.terraform):
            _strings(part, found)
        for part in (self.resources, self.data):
            _strings(list(part.values()), found)
        return found


def _strings(node: Any, into: list[str]) -> None:
    if isinstance(node, str):
        into.append(node)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "__comments__":
                _strings(value, into)
    elif isinstance(node, list):
        for item in node:
            _strings(item, into)


@cache
def load(path: Path) -> Config:
    config = Config(path)
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as handle:
            doc = hcl2.load(handle, serialization_options=OPTIONS)
        for block in doc.get("variable", []):
            config.variables.update(block)
        for block in doc.get("output", []):
            config.outputs.update(block)
        for block in doc.get("locals", []):
            config.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
        for block in doc.get("module", []):
            config.modules.update(block)
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for rname, body in named.items():
                        target[(rtype, rname)] = body
        config.terraform.extend(doc.get("terraform", []))
    return config


def module_dir(root: Config, call: dict[str, Any]) -> Path:
    return (root.path / call["source"]).resolve()


def all_configs() -> list[Path]:
    return [*MODULES, ROOT]


def config_id(path: Path) -> str:
    return "root" if path == ROOT else f"{path.parent.name}/{path.name}"


def ids(paths: list[Path]) -> list[str]:
    return [config_id(p) for p in paths]


def root() -> Config:
    return load(ROOT)


def hcl_file(path: Path) -> dict[str, Any]:
    """Top-level attributes of a variable or backend file."""
    with path.open() as handle:
        doc = hcl2.load(handle, serialization_options=OPTIONS)
    return {k: v for k, v in doc.items() if not k.startswith("__")}


def tfvars(env: str) -> dict[str, Any]:
    return hcl_file(ENVS / f"{env}.tfvars.example")


def backend(env: str) -> dict[str, Any]:
    return hcl_file(ENVS / f"{env}.backend.hcl.example")


def effective(env: str) -> dict[str, Any]:
    """What the environment applies: the root's defaults, overlaid with its variable file."""
    defaults = {name: spec["default"] for name, spec in root().variables.items() if "default" in spec}
    return {**defaults, **tfvars(env)}


def refs(config: Config, pattern: str) -> set[str]:
    found: set[str] = set()
    for text in config.expressions():
        found.update(re.findall(pattern, text))
    return found


def the(config: Config, rtype: str, rname: str) -> dict[str, Any]:
    assert (rtype, rname) in config.resources, f"{config.name} has no {rtype}.{rname}"
    return config.resources[(rtype, rname)]


# --- every name used is declared, every declaration is used ---


@pytest.mark.parametrize("path", all_configs(), ids=ids(all_configs()))
def test_every_variable_used_is_declared(path: Path) -> None:
    config = load(path)
    undeclared = refs(config, rf"\bvar\.({IDENT})") - set(config.variables)
    assert not undeclared, f"{config.name} uses undeclared variables: {sorted(undeclared)}"


@pytest.mark.parametrize("path", all_configs(), ids=ids(all_configs()))
def test_every_declared_variable_is_used(path: Path) -> None:
    config = load(path)
    unused = set(config.variables) - refs(config, rf"\bvar\.({IDENT})")
    assert not unused, f"{config.name} declares variables nothing uses: {sorted(unused)}"


@pytest.mark.parametrize("path", all_configs(), ids=ids(all_configs()))
def test_every_local_data_source_and_resource_used_is_declared(path: Path) -> None:
    config = load(path)
    assert not (refs(config, rf"\blocal\.({IDENT})") - set(config.locals)), config.name
    data_refs = {tuple(m) for m in refs_pairs(config, rf"\bdata\.({IDENT})\.({IDENT})")}
    assert not (data_refs - set(config.data)), f"{config.name}: undeclared data sources {data_refs - set(config.data)}"
    resource_refs = {tuple(m) for m in refs_pairs(config, rf"(?<![\w.])((?:aws|random|tls)_[a-z0-9_]+)\.({IDENT})")} - {
        ("aws_region", "region")
    }
    missing = resource_refs - set(config.resources)
    assert not missing, f"{config.name} references undeclared resources: {sorted(missing)}"


@pytest.mark.parametrize("path", all_configs(), ids=ids(all_configs()))
def test_every_declared_local_and_data_source_is_used(path: Path) -> None:
    config = load(path)
    unused_locals = set(config.locals) - refs(config, rf"\blocal\.({IDENT})")
    assert not unused_locals, f"{config.name} declares locals nothing uses: {sorted(unused_locals)}"
    unused_data = set(config.data) - {tuple(m) for m in refs_pairs(config, rf"\bdata\.({IDENT})\.({IDENT})")}
    assert not unused_data, f"{config.name} declares data sources nothing uses: {sorted(unused_data)}"


def refs_pairs(config: Config, pattern: str) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for text in config.expressions():
        found.update(re.findall(pattern, text))
    return found


@pytest.mark.parametrize("path", all_configs(), ids=ids(all_configs()))
def test_variables_have_type_and_description(path: Path) -> None:
    config = load(path)
    for name, spec in config.variables.items():
        assert spec.get("type"), f"{config.name}: variable {name} has no type"
        assert spec.get("description"), f"{config.name}: variable {name} has no description"


@pytest.mark.parametrize("path", all_configs(), ids=ids(all_configs()))
def test_outputs_have_description(path: Path) -> None:
    config = load(path)
    for name, spec in config.outputs.items():
        assert spec.get("description"), f"{config.name}: output {name} has no description"


# --- the root configuration -> modules ---


def test_module_calls_match_module_variables() -> None:
    config = root()
    assert config.modules, "the root configuration calls no modules"
    for call_name, call in config.modules.items():
        target = module_dir(config, call)
        assert target.parent == (ROOT / "modules").resolve(), f"{call_name}: {call['source']} is not a local module"
        module = load(target)
        passed = {k for k in call if k not in MODULE_META_ARGS and not k.startswith("__")}
        unknown = passed - set(module.variables)
        assert not unknown, f"module.{call_name} passes inputs {target.name} does not declare: {unknown}"
        required = {n for n, spec in module.variables.items() if "default" not in spec}
        missing = required - passed
        assert not missing, f"module.{call_name} misses required inputs of {target.name}: {missing}"


def test_module_outputs_used_exist() -> None:
    config = root()
    for call_name, attr in refs_pairs(config, rf"\bmodule\.({IDENT})\.({IDENT})"):
        assert call_name in config.modules, f"module.{call_name} is not declared"
        module = load(module_dir(config, config.modules[call_name]))
        assert attr in module.outputs, f"module.{call_name}.{attr} is not an output of {module.name}"


def test_chart_outputs_exist() -> None:
    missing = CHART_OUTPUTS - set(root().outputs)
    assert not missing, f"the root configuration lacks outputs the chart needs: {sorted(missing)}"


def test_backend_is_s3_and_providers_are_pinned() -> None:
    config = root()
    blocks = [b for b in config.terraform if "required_providers" in b]
    assert blocks, "no required_providers"
    backends = [b for t in config.terraform for b in t.get("backend", [])]
    assert backends, "no backend"
    assert "s3" in backends[0], "the state must live in the S3 backend"
    for provider in blocks[0]["required_providers"][0].values():
        if isinstance(provider, dict):
            assert re.fullmatch(r"= \d+\.\d+\.\d+", provider["version"]), f"{provider} not pinned"


# --- environments: the same configuration, different values ---


def test_environment_is_a_required_variable_limited_to_the_known_names() -> None:
    spec = root().variables["environment"]
    assert "default" not in spec, "an environment must always be named explicitly"
    (validation,) = spec["validation"]
    listed = re.fullmatch(r"\$\{contains\(\[(.*)\], var\.environment\)\}", validation["condition"])
    assert listed, validation["condition"]
    assert sorted(re.findall(r'"([a-z0-9]+)"', listed.group(1))) == ENVIRONMENTS, (
        "every name the validation allows needs its envs/<env>.tfvars.example and backend example, and no more"
    )


def test_the_configuration_names_no_environment() -> None:
    """Everything that differs between environments is a value: no "dev" or "prod" in the code itself."""
    config = root()
    strings: list[str] = []
    for part in (config.outputs, config.locals, config.modules, config.terraform):
        _strings(part, strings)
    _strings([spec for name, spec in config.variables.items() if name != "environment"], strings)
    _strings([list(config.resources.values()), list(config.data.values())], strings)
    named = sorted({s for s in strings if re.search(r"\b(dev|prod)\b", s)})
    assert not named, f"environment names in the root configuration: {named}"
    assert config.locals["name"] == "aegistickets-${var.environment}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_has_a_var_file_and_a_backend_file(env: str) -> None:
    values = tfvars(env)
    assert values.get("environment") == env, f'envs/{env}.tfvars.example must set environment = "{env}"'
    declared = set(root().variables)
    assert not set(values) - declared, f"envs/{env}.tfvars.example sets undeclared {set(values) - declared}"
    required = {n for n, spec in root().variables.items() if "default" not in spec}
    assert required <= set(values), f"envs/{env}.tfvars.example lacks required {required - set(values)}"
    state = backend(env)
    assert {"bucket", "key", "region"} <= set(state), f"envs/{env}.backend.hcl.example: {sorted(state)}"
    assert "dynamodb_table" in state or state.get("use_lockfile") is True, "the state must be locked"
    assert state.get("encrypt") is True


def test_each_environment_has_its_own_state() -> None:
    keys = {env: backend(env)["key"] for env in ENVIRONMENTS}
    assert len(set(keys.values())) == len(keys), f"environments share a state: {keys}"
    for env, key in keys.items():
        assert env in key.split("/"), f"{env}'s state key {key} does not name it"


# --- network ---


def test_subnets_are_tagged_for_load_balancer_discovery() -> None:
    network = load(ROOT / "modules" / "network")
    cluster_tag = r'"kubernetes\.io/cluster/\$\{var\.cluster_name\}"\s*=\s*"shared"'
    public = the(network, "aws_subnet", "public")["tags"]
    private = the(network, "aws_subnet", "private")["tags"]
    assert re.search(r'"kubernetes\.io/role/elb"\s*=\s*"1"', public), public
    assert re.search(cluster_tag, public), public
    assert re.search(r'"kubernetes\.io/role/internal-elb"\s*=\s*"1"', private), private
    assert re.search(cluster_tag, private), private


def test_subnet_cluster_tag_names_the_eks_cluster() -> None:
    config = root()
    assert config.modules["network"]["cluster_name"] == config.modules["eks"]["cluster_name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_vpc_spans_two_or_more_zones(env: str) -> None:
    zones = effective(env)["availability_zones"]
    assert len(zones) >= 2, f"{env}: {zones}"
    assert root().modules["network"]["availability_zones"] == "${var.availability_zones}"


# --- EKS ---


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_eks_version_and_nodes(env: str) -> None:
    version = effective(env)["kubernetes_version"]
    major, minor = (int(x) for x in version.split("."))
    assert (major, minor) >= (1, 28), f"{env}: EKS {version}"
    assert root().modules["eks"]["private_subnet_ids"] == "${module.network.private_subnet_ids}"
    eks = load(ROOT / "modules" / "eks")
    assert ("aws_iam_openid_connect_provider", "this") in eks.resources, "IRSA needs the OIDC provider"
    assert the(eks, "aws_eks_node_group", "default")["subnet_ids"] == "${var.private_subnet_ids}"


# --- database ---


def test_rds_is_private_encrypted_postgres15() -> None:
    rds = load(ROOT / "modules" / "rds")
    db = the(rds, "aws_db_instance", "this")
    assert db["engine"] == "postgres"
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"].startswith("${aws_kms_key.")
    assert db["multi_az"] == "${var.multi_az}"
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert db["skip_final_snapshot"] == "${!var.final_snapshot}"
    assert rds.variables["engine_version"]["default"].split(".")[0] == "15"
    ingress = [body for (rtype, _), body in rds.resources.items() if rtype == "aws_vpc_security_group_ingress_rule"]
    assert ingress, "the database needs exactly one way in"
    for rule in ingress:
        assert rule["from_port"] == rule["to_port"] == 5432
        assert "referenced_security_group_id" in rule
        assert not {"cidr_ipv4", "cidr_ipv6", "prefix_list_id"} & set(rule), "only security groups may reach the DB"
    assert not [k for k in rds.resources if k[0] in {"aws_security_group_rule", "aws_vpc_security_group_egress_rule"}]


def test_rds_reachable_only_from_eks_nodes_in_private_subnets() -> None:
    call = root().modules["rds"]
    assert call["subnet_ids"] == "${module.network.private_subnet_ids}"
    assert call["allowed_security_group_ids"] == ["${module.eks.node_security_group_id}"]


def test_dev_is_the_small_destroyable_reference_shape() -> None:
    dev = effective("dev")
    assert dev["node_instance_types"] == ["m7i-flex.large"]
    assert dev["node_desired_size"] == 2
    assert dev["db_instance_class"] == "db.t4g.micro"
    assert dev["db_multi_az"] is False
    # dev must stay destroyable with terraform destroy (scripts/cleanup.sh).
    assert dev["db_deletion_protection"] is False
    assert dev["db_final_snapshot"] is False
    assert dev["ecr_force_delete"] is True
    assert dev["media_force_destroy"] is True


def _is_safe(value: Any, safe: bool | int) -> bool:
    return value is safe if isinstance(safe, bool) else isinstance(value, int) and value >= safe


@pytest.mark.parametrize(("call", "arg", "variable", "safe"), SAFETY, ids=[s[2] for s in SAFETY])
def test_every_safety_default_is_prods(call: str, arg: str, variable: str, safe: bool | int) -> None:
    """A variable file that leaves a safety setting out gets prod's value, never a weaker one."""
    config = root()
    assert config.modules[call][arg] == f"${{var.{variable}}}", f"module.{call}.{arg} must come from var.{variable}"
    default = config.variables[variable].get("default")
    assert _is_safe(default, safe), f"{variable} defaults to {default!r}; prod's safe setting is {safe!r}"


def test_prod_keeps_every_safety_setting() -> None:
    prod = effective("prod")
    weakened = {v: prod[v] for _, _, v, safe in SAFETY if not _is_safe(prod[v], safe)}
    assert not weakened, f"prod's variable file weakens {weakened}"
    assert len(prod["availability_zones"]) >= 3, "prod spreads over 3 zones, with a NAT gateway in each"
    assert prod["node_max_size"] >= prod["node_min_size"]


def test_database_secret_holds_credentials_and_an_encoded_url() -> None:
    secrets = load(ROOT / "modules" / "secrets")
    body = the(secrets, "aws_secretsmanager_secret_version", "this")["secret_string"]
    for key in ("username", "password", "host", "port", "dbname", "url"):
        assert re.search(rf"\b{key}\s*=", body), f"secret JSON lacks {key}"
    assert "urlencode(var.db_password)" in body
    assert "urlencode(var.db_username)" in body
    password = the(load(ROOT / "modules" / "rds"), "random_password", "master")
    assert set(password.get("override_special", "")) <= set("-_.~"), "password must stay URL-safe"


# --- IAM: IRSA only, least privilege ---


def test_no_access_keys_anywhere() -> None:
    for path in all_configs():
        kinds = {rtype for rtype, _ in load(path).resources}
        assert not kinds & {"aws_iam_access_key", "aws_iam_user", "aws_iam_user_policy"}, path


def _statements(config: Config, name: str) -> list[dict[str, Any]]:
    assert ("aws_iam_policy_document", name) in config.data, f"{config.name} has no policy document {name}"
    return config.data[("aws_iam_policy_document", name)]["statement"]


def test_external_secrets_reads_only_the_app_secrets() -> None:
    config = root()
    for statement in _statements(config, "external_secrets"):
        assert statement.get("effect", "Allow") == "Allow"
        actions = set(statement["actions"])
        if any(a.startswith("secretsmanager:") for a in actions):
            assert statement["resources"] == [
                "${module.db_secret.secret_arn}",
                "${module.db_secret.django_secret_key_arn}",
                # the Stripe keys, stored by an operator (never in state): exactly this environment's one name
                "arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}"
                ":secret:aegistickets/${var.environment}/stripe-??????",
            ]
            assert actions <= {
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
                "secretsmanager:ListSecretVersionIds",
            }
        else:
            assert actions == {"kms:Decrypt"}
            assert statement["resources"] == ["${module.db_secret.kms_key_arn}"]
    call = config.modules["external_secrets_irsa"]
    assert call["policy_json"] == "${data.aws_iam_policy_document.external_secrets.json}"


def test_app_role_is_scoped_to_its_bucket_identity_and_secret() -> None:
    config = root()
    allowed_resources = {
        "${module.media.bucket_arn}",
        "${module.media.bucket_arn}/*",
        "${module.media.kms_key_arn}",
        "${module.email.identity_arn}",
        "${module.db_secret.secret_arn}",
        "${module.db_secret.kms_key_arn}",
    }
    actions: set[str] = set()
    for statement in _statements(config, "app"):
        assert set(statement["resources"]) <= allowed_resources, statement
        actions |= set(statement["actions"])
    assert {"ses:SendEmail", "ses:SendRawEmail", "secretsmanager:GetSecretValue", "s3:PutObject"} <= actions
    assert not [a for a in actions if a.endswith("*")], "no wildcard actions for the app"
    call = config.modules["app_irsa"]
    assert call["namespace"] == "${var.app_namespace}"
    assert call["service_account"] == "${var.app_service_account}"
    # The chart's migration Job reads the database secret with the app's role in DATABASE_SECRET_ARN mode.
    assert call["extra_service_accounts"] == ["${var.app_service_account}-migrate"]


def test_irsa_trust_is_only_the_named_service_accounts() -> None:
    irsa = load(ROOT / "modules" / "irsa")
    (statement,) = _statements(irsa, "assume")
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: c["values"] for c in statement["condition"]}
    subjects = conditions["${var.oidc_provider_url}:sub"]  # a for-expression over the named accounts
    assert "concat([var.service_account], var.extra_service_accounts)" in subjects
    assert "system:serviceaccount:${var.namespace}:${sa}" in subjects

    assert conditions["${var.oidc_provider_url}:aud"] == ["sts.amazonaws.com"]


# --- ECR and S3 ---


def test_ecr_is_immutable_scanned_and_pruned() -> None:
    ecr = load(ROOT / "modules" / "ecr")
    repo = the(ecr, "aws_ecr_repository", "this")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"][0]["scan_on_push"] is True
    the(ecr, "aws_ecr_lifecycle_policy", "this")


def test_media_bucket_is_private_encrypted_versioned() -> None:
    media = load(ROOT / "modules" / "media")
    block = the(media, "aws_s3_bucket_public_access_block", "this")
    for key in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert block[key] is True, key
    versioning = the(media, "aws_s3_bucket_versioning", "this")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    sse = the(media, "aws_s3_bucket_server_side_encryption_configuration", "this")
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert not [k for k in media.resources if k[0] in {"aws_s3_bucket_acl", "aws_s3_bucket_website_configuration"}]
