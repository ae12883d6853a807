"""Validates TOML documents against a JSON Schema with the `jsonschema` package (an independent
implementation, not the one that wrote the schema): tests/api/config_schema.rs runs it with the
venv's Python that .ci/run installs from tests/schemathesis/requirements.txt, which pins jsonschema.

Reads {"schema": PATH, "documents": [TOML text, ...]} on stdin and prints one list per document:
the errors found (empty when the document is valid), each as "key.path: message". Fails when the
schema itself is not a valid 2020-12 schema.
"""

import datetime
import json
import sys
import tomllib

import jsonschema


def plain(value):
    """TOML values as JSON sees them: dates and times become RFC 3339 text, as Taplo does."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return value


def main():
    request = json.load(sys.stdin)
    with open(request["schema"], encoding="utf-8") as file:
        schema = json.load(file)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    results = []
    for text in request["documents"]:
        document = plain(tomllib.loads(text))
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        results.append(
            [".".join(str(part) for part in error.absolute_path) + ": " + error.message
             for error in errors]
        )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
