"""Verifies webhook messages with the official Standard Webhooks library (standardwebhooks on
PyPI), for tests/api/webhooks.rs.

stdin: a JSON array of {"secret": "whsec_...", "headers": {...}, "body": "..."}.
stdout: a JSON array with, for each message, null when it verifies, else the library's error.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook

results = []
for message in json.load(sys.stdin):
    try:
        Webhook(message["secret"]).verify(message["body"], message["headers"])
        results.append(None)
    except Exception as error:  # the library's verification errors, reported to the test
        results.append(f"{type(error).__name__}: {error}")
json.dump(results, sys.stdout)
