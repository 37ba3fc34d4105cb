"""OpenAPI generation that documents the error answers every endpoint can give, so clients (and
schemathesis) know a 401, 403, 404, 400 or 409 is part of the contract, not a surprise."""

from drf_spectacular.openapi import AutoSchema

DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
FIELD_ERRORS = {
    "type": "object",
    "description": "Each key names a field (or non_field_errors) and holds its messages; an import answers {detail, errors: [{line, text, message}]}.",
    "additionalProperties": True,
}


class ApiSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)

        def add(code, schema, description):
            bodies.setdefault(str(code), {"content": {"application/json": {"schema": schema}}, "description": description})

        add(401, DETAIL, "No valid token or session.")
        add(403, DETAIL, "The user's role, or a read-only token, does not allow this.")
        add(404, DETAIL, "No such object (or no such page of a list).")
        add(400, FIELD_ERRORS, "Invalid input; the body names each bad field or line.")
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            add(409, FIELD_ERRORS, "Clashes with existing configuration; the body names the field and why.")
        return bodies
