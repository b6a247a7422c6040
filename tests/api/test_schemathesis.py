"""schemathesis against the live server: requests generated from the OpenAPI document for
every operation, each answer checked (no 5xx; status, Content-Type, headers and JSON body as
documented).

Bounded for a 2-core machine: the documented examples (the one that carries a real PNG
reaches the success path, and runs the network once per operation that has one) plus
MAX_EXAMPLES generated requests an operation, positive data only (negative data would
fuzz values the server reads leniently, e.g. any case), no coverage phase (it enumerates
hundreds of boundary cases), no shrinking, a fixed seed, and a hard timeout."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.openapi import EXAMPLE_PNG_B64, document
from tests.api.conftest import create_key

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]  # a live server

MAX_EXAMPLES = 12
STATEFUL_SCENARIOS = 6
REQUEST_TIMEOUT_S = 120
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Loaded at collection (no request is made): one test per operation.
SCHEMA = schemathesis.openapi.from_dict(document())
LABELS = [result.ok().label for result in SCHEMA.get_all_operations()]
# Hypothesis settings for both phases: a fixed seed, no example database, no shrinking.
BOUNDED = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@pytest.fixture(scope="module")
def schemathesis_key(api_env: dict[str, str], api_url: str) -> str:
    return create_key(api_env, "schemathesis")


@pytest.mark.parametrize("label", LABELS)
def test_the_api_answers_as_documented(api_url: str, schemathesis_key: str, label: str) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None

    def run(strategy: SearchStrategy[schemathesis.Case], max_examples: int) -> None:
        @given(strategy)
        @settings(BOUNDED, max_examples=max_examples)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=api_url,
                headers={"X-Api-Key": schemathesis_key},
                checks=CHECKS,
                timeout=REQUEST_TIMEOUT_S,
            )

        check()

    # The document's own examples first: each is one fixed request.
    for strategy in operation.get_strategies_from_examples():
        run(strategy, 1)
    run(operation.as_strategy(GenerationMode.POSITIVE), MAX_EXAMPLES)


def test_submitted_jobs_followed_through_their_links(api_url: str, schemathesis_key: str) -> None:
    """The document's links from a submission to its job (status, result, deletion) walked by
    schemathesis's state machine: a few short scenarios, each answer checked as above."""
    schema = schemathesis.openapi.from_dict(document())
    schema.config.update(base_url=api_url, headers={"X-Api-Key": schemathesis_key})
    seen: list[tuple[str, int]] = []

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict:
            return {
                "base_url": api_url,
                "headers": {"X-Api-Key": schemathesis_key},
                "timeout": REQUEST_TIMEOUT_S,
            }

        def before_call(self, case: schemathesis.Case) -> None:
            # Every submission carries the document's example photo, so it is accepted and
            # its links lead somewhere (random bytes would all be refused as not images).
            if case.operation.label == "POST /api/v1/jobs":
                case.media_type = "application/json"
                case.body = {"image_file_b64": EXAMPLE_PNG_B64, "size": "preview"}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            seen.append((case.operation.label, response.status_code))

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: object
        ) -> None:
            case.validate_response(response, checks=CHECKS)

    Scenarios.run(
        settings=settings(
            BOUNDED, max_examples=STATEFUL_SCENARIOS, stateful_step_count=4, phases=[Phase.generate]
        )
    )
    # A submission was accepted and its job then answered through a link.
    assert ("POST /api/v1/jobs", 202) in seen, seen
    assert any(label == "GET /api/v1/jobs/{job_id}" and status == 200 for label, status in seen), (
        seen
    )
