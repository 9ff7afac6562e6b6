"""The pack as the Pulumi CLI runs it: `python -m pulumi.policy` serving the Analyzer gRPC protocol.

The engine is played by these tests: they ask for the pack's info, and send the mocked dev stack's
resources (and defective variants) as AnalyzeStack / Analyze requests, as `pulumi preview` would.
"""

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pack_support import BRIEF_POLICIES
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

ROOT = Path(__file__).resolve().parents[2]
MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
ADVISORY = analyzer_pb2.EnforcementLevel.Value("ADVISORY")


@pytest.fixture(scope="module")
def analyzer():
    # The CLI starts the language host's `pulumi.policy` module with the pack's directory; the pack
    # prints the port of its gRPC server on stdout.
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", str(ROOT / "policy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def struct(props) -> struct_pb2.Struct:
    # Archives and assets do not travel as JSON here; the policies never read them.
    return json_format.ParseDict(json.loads(json.dumps(props, default=str)), struct_pb2.Struct())


def stack_request(resources) -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, urn=r.urn, name=r.name, properties=struct(dict(r.outputs))
            )
            for r in resources
            if r.custom
        ]
    )


def test_pack_announces_its_policies_as_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "data-pipeline"
    assert {p.name for p in info.policies} == BRIEF_POLICIES
    assert {p.enforcementLevel for p in info.policies} == {MANDATORY}


def test_declared_dev_stack_passes_the_served_pack(analyzer, dev_stack):
    response = analyzer.AnalyzeStack(stack_request(dev_stack.resources))
    assert [(d.policyName, d.message) for d in response.diagnostics] == []


def test_stack_without_a_public_access_block_is_refused(analyzer, dev_stack):
    # GIVEN the dev stack with one bucket's public access block removed
    pab = dev_stack.by_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0]
    [bucket] = [
        b for b in dev_stack.by_type("aws:s3/bucket:Bucket") if b.outputs["bucket"] == pab.inputs["bucket"]
    ]
    resources = [r for r in dev_stack.resources if r is not pab]
    # WHEN analysed
    response = analyzer.AnalyzeStack(stack_request(resources))
    # THEN one mandatory violation, against that bucket
    assert [(d.policyName, d.enforcementLevel, d.urn) for d in response.diagnostics] == [
        ("s3-bucket-public-access-blocked", MANDATORY, bucket.urn)
    ]


def test_role_policy_with_a_wildcard_is_refused(analyzer):
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    request = analyzer_pb2.AnalyzeRequest(
        type="aws:iam/rolePolicy:RolePolicy",
        urn="urn:pulumi:dev::data-pipeline::aws:iam/rolePolicy:RolePolicy::p",
        name="p",
        properties=struct({"role": "r", "policy": json.dumps(document)}),
    )
    [diagnostic] = analyzer.Analyze(request).diagnostics
    assert (diagnostic.policyName, diagnostic.enforcementLevel) == ("iam-no-wildcard-action", MANDATORY)


def test_unknown_policy_document_is_deferred_as_advisory(analyzer):
    # GIVEN a preview, where the document's ARNs are not known yet
    request = analyzer_pb2.AnalyzeRequest(
        type="aws:iam/rolePolicy:RolePolicy",
        urn="urn:pulumi:dev::data-pipeline::aws:iam/rolePolicy:RolePolicy::p",
        name="p",
        properties=struct({"role": "r", "policy": UNKNOWN_STRING_VALUE}),
    )
    # WHEN analysed THEN nothing blocks, and the engine is told the policy could not run yet
    [diagnostic] = analyzer.Analyze(request).diagnostics
    assert diagnostic.enforcementLevel == ADVISORY
    assert "during preview: not known yet: p: policy" in diagnostic.message
