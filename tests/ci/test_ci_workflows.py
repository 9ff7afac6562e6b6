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
    assert preview["needs"] == "test"


def test_push_to_main_deploys_dev_only():
    workflow = load(ROOT / ".github" / "workflows" / "pulumi.yml")
    deploy = workflow["jobs"]["deploy-dev"]
    [pulumi_step] = [s for s in deploy["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert (pulumi_step["with"]["command"], pulumi_step["with"]["stack-name"]) == ("up", "dev")
    assert "refs/heads/main" in deploy["if"]
    assert deploy["needs"] == "test"


def test_aws_credentials_come_from_oidc_role_assumption_only():
    text = (ROOT / ".github" / "workflows" / "pulumi.yml").read_text()
    assert "aws-access-key-id" not in text
    assert "aws-secret-access-key" not in text
    roles = {}
    for _, name, job in jobs():
        for step in job["steps"]:
            if "configure-aws-credentials" in step.get("uses", ""):
                roles[name] = (step["with"]["role-to-assume"], job.get("environment"))
    # the preview runs a pull request's code: a read-only role; only the `dev` environment may deploy
    assert roles == {
        "preview": ("${{ vars.AWS_PREVIEW_ROLE_ARN }}", None),
        "deploy-dev": ("${{ vars.AWS_DEPLOY_ROLE_ARN }}", "dev"),
    }


def test_the_test_job_runs_make_test_with_every_runtime_required():
    # GIVEN the workflow's test job (GitHub sets CI=true itself)
    [job] = [job for _, name, job in jobs() if name == "test"]
    [step] = [step for step in job["steps"] if step.get("run") == "make test"]
    # THEN a missing Lambda interpreter fails the run instead of skipping the layer tests
    assert step["env"] == {"REQUIRE_ALL_RUNTIMES": "1"}
