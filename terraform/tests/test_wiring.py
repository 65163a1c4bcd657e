"""Cross-module wiring of terraform/, checked offline by parsing the HCL (python-hcl2).

`terraform validate` would catch most of this, but it needs provider downloads; these tests need nothing but
the files. They also pin the promises the Helm chart and docs/deploy.md rely on: the outputs they read, the
subnet tags the AWS Load Balancer Controller needs, a private and encrypted database, prod's safety settings.

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
ENVS = sorted(p for p in (ROOT / "envs").iterdir() if p.is_dir())

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
        return f"{self.path.parent.name}/{self.path.name}"

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
    options = SerializationOptions(strip_string_quotes=True)
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as handle:
            doc = hcl2.load(handle, serialization_options=options)
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


def module_dir(env: Config, call: dict[str, Any]) -> Path:
    return (env.path / call["source"]).resolve()


def all_configs() -> list[Path]:
    return MODULES + ENVS


def ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


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


# --- envs -> modules ---


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_module_calls_match_module_variables(path: Path) -> None:
    env = load(path)
    assert env.modules, f"{env.name} calls no modules"
    for call_name, call in env.modules.items():
        target = module_dir(env, call)
        assert target.parent == (ROOT / "modules").resolve(), f"{call_name}: {call['source']} is not a local module"
        module = load(target)
        passed = {k for k in call if k not in MODULE_META_ARGS and not k.startswith("__")}
        unknown = passed - set(module.variables)
        assert not unknown, f"{env.name}: module.{call_name} passes inputs {target.name} does not declare: {unknown}"
        required = {n for n, spec in module.variables.items() if "default" not in spec}
        missing = required - passed
        assert not missing, f"{env.name}: module.{call_name} misses required inputs of {target.name}: {missing}"


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_module_outputs_used_exist(path: Path) -> None:
    env = load(path)
    for call_name, attr in refs_pairs(env, rf"\bmodule\.({IDENT})\.({IDENT})"):
        assert call_name in env.modules, f"{env.name}: module.{call_name} is not declared"
        module = load(module_dir(env, env.modules[call_name]))
        assert attr in module.outputs, f"{env.name}: module.{call_name}.{attr} is not an output of {module.name}"


def test_envs_wire_the_same_modules_variables_and_outputs() -> None:
    dev, prod = load(ROOT / "envs" / "dev"), load(ROOT / "envs" / "prod")
    assert set(dev.variables) == set(prod.variables)
    assert set(dev.outputs) == set(prod.outputs)
    assert set(dev.modules) == set(prod.modules)
    for name in dev.modules:
        assert dev.modules[name] == prod.modules[name], f"module.{name} is wired differently in dev and prod"
    assert dev.locals["environment"] == "dev"
    assert prod.locals["environment"] == "prod"


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_chart_outputs_exist(path: Path) -> None:
    env = load(path)
    missing = CHART_OUTPUTS - set(env.outputs)
    assert not missing, f"{env.name} lacks outputs the chart needs: {sorted(missing)}"


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_env_backend_is_s3_and_providers_are_pinned(path: Path) -> None:
    env = load(path)
    blocks = [b for b in env.terraform if "required_providers" in b]
    assert blocks, f"{env.name} has no required_providers"
    backends = [b for t in env.terraform for b in t.get("backend", [])]
    assert backends, f"{env.name} has no backend"
    assert "s3" in backends[0], f"{env.name} must use the S3 backend"
    for provider in blocks[0]["required_providers"][0].values():
        if isinstance(provider, dict):
            assert re.fullmatch(r"= \d+\.\d+\.\d+", provider["version"]), f"{env.name}: {provider} not pinned"
    assert (path / "backend.hcl.example").is_file()
    assert (path / "terraform.tfvars.example").is_file()


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_tfvars_example_sets_declared_variables_and_every_required_one(path: Path) -> None:
    env = load(path)
    with (path / "terraform.tfvars.example").open() as handle:
        example = hcl2.load(handle, serialization_options=SerializationOptions(strip_string_quotes=True))
    values = {k for k in example if not k.startswith("__")}
    assert not values - set(env.variables), f"{env.name}: tfvars example sets undeclared {values - set(env.variables)}"
    required = {n for n, spec in env.variables.items() if "default" not in spec}
    assert required <= values, f"{env.name}: tfvars example lacks required {required - values}"


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


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_subnet_cluster_tag_names_the_eks_cluster(path: Path) -> None:
    env = load(path)
    assert env.modules["network"]["cluster_name"] == env.modules["eks"]["cluster_name"]


def test_vpc_spans_two_or_more_zones() -> None:
    for path in ENVS:
        env = load(path)
        zones = env.variables["availability_zones"]["default"]
        assert len(zones) >= 2, f"{env.name}: {zones}"
        assert env.modules["network"]["availability_zones"] == "${var.availability_zones}"


# --- EKS ---


def test_eks_version_and_nodes() -> None:
    for path in ENVS:
        env = load(path)
        version = env.variables["kubernetes_version"]["default"]
        major, minor = (int(x) for x in version.split("."))
        assert (major, minor) >= (1, 28), f"{env.name}: EKS {version}"
        assert env.modules["eks"]["private_subnet_ids"] == "${module.network.private_subnet_ids}"
    dev = load(ROOT / "envs" / "dev")
    assert dev.variables["node_instance_types"]["default"] == ["m7i-flex.large"]
    assert dev.variables["node_desired_size"]["default"] == 2
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


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_rds_reachable_only_from_eks_nodes_in_private_subnets(path: Path) -> None:
    call = load(path).modules["rds"]
    assert call["subnet_ids"] == "${module.network.private_subnet_ids}"
    assert call["allowed_security_group_ids"] == ["${module.eks.node_security_group_id}"]


def test_dev_database_is_the_reference_shape() -> None:
    dev = load(ROOT / "envs" / "dev")
    assert dev.variables["db_instance_class"]["default"] == "db.t4g.micro"
    assert dev.variables["db_multi_az"]["default"] is False


def test_prod_database_is_multi_az_protected_and_snapshotted() -> None:
    prod = load(ROOT / "envs" / "prod")
    call = prod.modules["rds"]
    for arg, variable in (
        ("multi_az", "db_multi_az"),
        ("deletion_protection", "db_deletion_protection"),
        ("final_snapshot", "db_final_snapshot"),
    ):
        assert call[arg] == f"${{var.{variable}}}", f"prod: module.rds.{arg} must come from var.{variable}"
        assert prod.variables[variable]["default"] is True, f"prod: {variable} must default to true"


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


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_external_secrets_reads_only_the_app_secrets(path: Path) -> None:
    env = load(path)
    for statement in _statements(env, "external_secrets"):
        assert statement.get("effect", "Allow") == "Allow"
        actions = set(statement["actions"])
        if any(a.startswith("secretsmanager:") for a in actions):
            assert statement["resources"] == [
                "${module.db_secret.secret_arn}",
                "${module.db_secret.django_secret_key_arn}",
            ]
            assert actions <= {
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
                "secretsmanager:ListSecretVersionIds",
            }
        else:
            assert actions == {"kms:Decrypt"}
            assert statement["resources"] == ["${module.db_secret.kms_key_arn}"]
    call = env.modules["external_secrets_irsa"]
    assert call["policy_json"] == "${data.aws_iam_policy_document.external_secrets.json}"


@pytest.mark.parametrize("path", ENVS, ids=ids(ENVS))
def test_app_role_is_scoped_to_its_bucket_identity_and_secret(path: Path) -> None:
    env = load(path)
    allowed_resources = {
        "${module.media.bucket_arn}",
        "${module.media.bucket_arn}/*",
        "${module.media.kms_key_arn}",
        "${module.email.identity_arn}",
        "${module.db_secret.secret_arn}",
        "${module.db_secret.kms_key_arn}",
    }
    actions: set[str] = set()
    for statement in _statements(env, "app"):
        assert set(statement["resources"]) <= allowed_resources, statement
        actions |= set(statement["actions"])
    assert {"ses:SendEmail", "ses:SendRawEmail", "secretsmanager:GetSecretValue", "s3:PutObject"} <= actions
    assert not [a for a in actions if a.endswith("*")], "no wildcard actions for the app"
    call = env.modules["app_irsa"]
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
