"""The API against its own OpenAPI document (/api/openapi.json, as served), fuzzed by schemathesis:
no request it makes, valid or not, gives a server error or an answer the document does not describe
(status, media type, body, headers). Bounded in examples per operation (well under a minute)."""
from __future__ import annotations

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.panelpaint.comic_pages import small_page
from web.openapi import document
from web_helpers import upload

EXAMPLES = 15  # per operation; each operation gets a fresh app and database
# Left out: rules the document cannot state (a file must decode as an image, a batch needs a style
# from the library or an upload) refuse some schema-valid requests with a documented 400; and HTTP
# lets a server ignore unknown query parameters, and a multipart field is text whatever the schema
# says its type is. Server errors, statuses, media types, bodies and headers are all checked.
NOT_CHECKED = [positive_data_acceptance, negative_data_rejection]
OPERATIONS = [(path, method) for path, methods in document()["paths"].items() for method in methods]


@pytest.fixture
def headers(app, api_token, style_id) -> dict[str, str]:  # noqa: ANN001
    """An admin's token (every operation is allowed), with one batch of one page in the studio, so
    some ids name real rows."""
    headers = {"Authorization": f"Bearer {api_token('alpha', 'admin')}"}
    made = app.test_client().post("/api/v1/batches", headers=headers, content_type="multipart/form-data",
                                  data={"name": "Fuzzed", "style_id": str(style_id),
                                        "pages": [upload(small_page(), "1.png")]})
    assert made.status_code == 201, made.get_data(as_text=True)
    return headers


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_api_answers_as_documented(app, headers, path: str, method: str):  # noqa: ANN001
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=headers)[path][method.upper()]
    cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                      operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_as_documented(case) -> None:  # noqa: ANN001
        case.call_and_validate(headers=headers, excluded_checks=NOT_CHECKED)

    answers_as_documented()
