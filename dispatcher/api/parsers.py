"""Request body parsers that answer 400 for every body they cannot read, never 500."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, plus a clear 400 for JSON nested past Python's recursion limit
    (DRF catches ValueError only, and json.loads raises RecursionError for `[[[[...`)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body nests arrays or objects too deeply.") from None
