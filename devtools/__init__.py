"""Developer tools of data-pipeline, by purpose; ``python -m devtools run|plan|redrive|migrate`` runs them.

harness/   the mocked-evaluation harness: the real Pulumi program under Pulumi's mocks, recorded
           (every test tier, the local run and ``plan`` read the stack through it)
localrun/  the local run: the declared stack on moto, each handler in a Lambda-like process
ops/       operations tools for a deployed stack (``redrive``)
"""
