"""The GitHub workflows, validated offline: schema, zizmor's audits, and the pinning/permission rules."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def jobs():
    return [(path.name, name, job) for path in WORKFLOWS for name, job in load(path)["jobs"].items()]


def test_there_are_workflows():
    assert [p.name for p in WORKFLOWS] == ["pulumi.yml"]


def test_workflows_match_the_github_workflow_schema():
    result = run(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = run(str(BIN / "zizmor"), "--offline", "--no-progress", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_sha_with_its_version():
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line):
                assert PINNED.match(line), f"{path.name}: {line.strip()}"


def test_workflow_grants_nothing_by_default():
    for path in WORKFLOWS:
        assert load(path)["permissions"] == {}, path.name


@pytest.mark.parametrize(("workflow", "name", "job"), jobs(), ids=[f"{w}:{n}" for w, n, _ in jobs()])
def test_job_permissions_are_least(workflow, name, job):
    permissions = job["permissions"]
    assert permissions["contents"] == "read"
    uses = [step.get("uses", "") for step in job["steps"]]
    assumes_role = any("configure-aws-credentials" in u for u in uses)
    # an OIDC token only where an AWS role is assumed
    assert ("id-token" in permissions) == assumes_role
    assert set(permissions) <= {"contents", "id-token", "pull-requests"}


@pytest.mark.parametrize(("workflow", "name", "job"), jobs(), ids=[f"{w}:{n}" for w, n, _ in jobs()])
def test_checkout_does_not_persist_credentials(workflow, name, job):
    for step in job["steps"]:
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_pull_requests_preview_both_stacks_with_the_policy_pack_and_comment():
    workflow = load(ROOT / ".github" / "workflows" / "pulumi.yml")
    preview = workflow["jobs"]["preview"]
    [pulumi_step] = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert pulumi_step["with"]["command"] == "preview"
    assert pulumi_step["with"]["policyPacks"] == "policy"
    assert pulumi_step["with"]["comment-on-pr"] is True
    assert preview["needs"] == ["test", "layer"]


def test_push_to_main_deploys_dev_then_prod_behind_the_prod_environment():
    workflow = load(ROOT / ".github" / "workflows" / "pulumi.yml")
    deploys = {}
    for name in ("deploy-dev", "deploy-prod"):
        job = workflow["jobs"][name]
        [pulumi_step] = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert pulumi_step["with"]["command"] == "up"
        assert "refs/heads/main" in job["if"]
        deploys[name] = (pulumi_step["with"]["stack-name"], job["environment"], job["needs"])
    # prod deploys from CI only after dev took the same commit, and waits for the `prod` environment's
    # required reviewers (configured in the repository's settings)
    assert deploys == {
        "deploy-dev": ("dev", "dev", ["test", "layer"]),
        "deploy-prod": ("prod", "prod", ["deploy-dev", "layer"]),
    }


def test_the_layer_is_built_once_per_commit_and_stack_cached_by_its_inputs():
    workflow = load(ROOT / ".github" / "workflows" / "pulumi.yml")
    layer = workflow["jobs"]["layer"]
    assert layer["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    steps = {step.get("uses", "").split("@")[0] or step.get("name"): step for step in layer["steps"]}
    cache = steps["actions/cache"]
    assert cache["with"]["path"] == "dist/layer.zip"
    key = cache["with"]["key"]
    for part in (
        "runtime",
        "architecture",
        "boto3",
        "hashFiles('layer/requirements*.txt', 'layer/build.py')",
    ):
        assert part in key
    assert steps["Build the layer"]["if"] == "steps.cache.outputs.cache-hit != 'true'"
    assert "python -m layer.build" in steps["Build the layer"]["run"]
    upload = steps["actions/upload-artifact"]
    assert (upload["with"]["name"], upload["with"]["path"]) == ("layer-${{ matrix.stack }}", "dist/layer.zip")


@pytest.mark.parametrize(
    ("job_name", "stack"),
    [("preview", "${{ matrix.stack }}"), ("deploy-dev", "dev"), ("deploy-prod", "prod")],
)
def test_previews_and_deploys_use_the_commit_s_layer_through_layer_archive(job_name, stack):
    job = load(ROOT / ".github" / "workflows" / "pulumi.yml")["jobs"][job_name]
    names = [step.get("uses", "").split("@")[0] or step.get("name") for step in job["steps"]]
    download = names.index("actions/download-artifact")
    use = names.index("Use this commit's layer (layer.archive)")
    # the zip is in place and named by the stack config before Pulumi runs the program
    assert download < use < names.index("pulumi/actions")
    assert job["steps"][download]["with"] == {"name": f"layer-{stack}", "path": "dist"}
    step = job["steps"][use]
    assert step["env"] == {"STACK": stack}
    assert 'layer["archive"] = "dist/layer.zip"' in step["run"]
    # no job but `layer` builds a layer
    assert all("layer.build" not in (s.get("run") or "") for s in job["steps"])


def test_the_layer_archive_step_sets_the_key_the_program_reads(tmp_path):
    # GIVEN the step's script run on a copy of a stack file
    job = load(ROOT / ".github" / "workflows" / "pulumi.yml")["jobs"]["deploy-prod"]
    [step] = [s for s in job["steps"] if s.get("name") == "Use this commit's layer (layer.archive)"]
    script = step["run"].split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    (tmp_path / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env={"STACK": "prod"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    # THEN the stack config names the zip, and keeps every other key
    config = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())["config"]
    assert config["data-pipeline:layer"] == {"archive": "dist/layer.zip"}
    assert config == {
        **load(ROOT / "Pulumi.prod.yaml")["config"],
        "data-pipeline:layer": {"archive": "dist/layer.zip"},
    }


def test_aws_credentials_come_from_oidc_role_assumption_only():
    text = (ROOT / ".github" / "workflows" / "pulumi.yml").read_text()
    assert "aws-access-key-id" not in text
    assert "aws-secret-access-key" not in text
    roles = {}
    for _, name, job in jobs():
        for step in job["steps"]:
            if "configure-aws-credentials" in step.get("uses", ""):
                roles[name] = (step["with"]["role-to-assume"], job.get("environment"))
    # the preview runs a pull request's code: a read-only role; only the `dev` and `prod` environments may
    # deploy, each with its own role
    assert roles == {
        "preview": ("${{ vars.AWS_PREVIEW_ROLE_ARN }}", None),
        "deploy-dev": ("${{ vars.AWS_DEPLOY_ROLE_ARN }}", "dev"),
        "deploy-prod": ("${{ vars.AWS_PROD_DEPLOY_ROLE_ARN }}", "prod"),
    }


def test_the_test_job_runs_make_test_with_every_runtime_required():
    # GIVEN the workflow's test job (GitHub sets CI=true itself)
    [job] = [job for _, name, job in jobs() if name == "test"]
    [step] = [step for step in job["steps"] if step.get("run") == "make test"]
    # THEN a missing Lambda interpreter fails the run instead of skipping the layer tests
    assert step["env"] == {"REQUIRE_ALL_RUNTIMES": "1"}
