"""The official OpenAPI v3 schemas (../shared/k8s-openapi): field lookup for
strategic merge patch (patch strategy and merge key of a list) and a checker
of objects against their schema (types, required fields, unknown fields).

Written from the schema files alone, independently of kernelet's apiclient."""

import json
import os

KINDS = {
    ("", "v1", "Pod"): "io.k8s.api.core.v1.Pod",
    ("", "v1", "Node"): "io.k8s.api.core.v1.Node",
    ("", "v1", "Event"): "io.k8s.api.core.v1.Event",
    ("", "v1", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("", "v1", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("", "v1", "Secret"): "io.k8s.api.core.v1.Secret",
    ("", "v1", "Service"): "io.k8s.api.core.v1.Service",
    ("coordination.k8s.io", "v1", "Lease"): "io.k8s.api.coordination.v1.Lease",
}


class Schemas:
    def __init__(self, directory):
        self.schemas = {}
        self.documents = {}
        if not directory:
            return
        for name in os.listdir(directory):
            if name.endswith("_openapi.json"):
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    raw = f.read()
                doc = json.loads(raw)
                self.documents[name] = raw
                self.schemas.update(doc.get("components", {}).get("schemas", {}))

    def resolve(self, schema):
        """Follows $ref and single-element allOf to the schema itself."""
        while schema:
            if "$ref" in schema:
                schema = self.schemas.get(schema["$ref"].split("/")[-1], {})
            elif "allOf" in schema and len(schema["allOf"]) == 1:
                merged = dict(self.resolve(schema["allOf"][0]))
                for k, v in schema.items():
                    if k != "allOf":
                        merged.setdefault(k, v)
                schema = merged
            else:
                break
        return schema or {}

    def for_kind(self, group, version, kind):
        name = KINDS.get((group, version, kind))
        return self.schemas.get(name) if name else None

    def field(self, schema, name):
        """The raw (unresolved) schema of a property, keeping its patch extensions."""
        schema = self.resolve(schema)
        return schema.get("properties", {}).get(name)

    # ---- validation -------------------------------------------------------

    def violations(self, obj, schema, path="", check_required=True):
        out = []
        schema = self.resolve(schema)
        if not schema:
            return out
        kind = schema.get("type")
        if obj is None:
            return out  # null clears a field; the API server accepts it
        if "x-kubernetes-int-or-string" in schema:
            if not isinstance(obj, (int, str)) or isinstance(obj, bool):
                out.append(f"{path or '.'}: must be an integer or a string")
            return out
        if schema.get("format") == "int-or-string":
            return out
        if kind == "object" or "properties" in schema:
            if not isinstance(obj, dict):
                return [f"{path or '.'}: must be an object"]
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            if props is not None:
                for k, v in obj.items():
                    if k not in props:
                        if extra is None:
                            out.append(f"{path}.{k}: unknown field")
                        continue
                    out += self.violations(v, props[k], f"{path}.{k}", check_required)
                if check_required:
                    for r in schema.get("required", []):
                        if r not in obj:
                            out.append(f"{path}.{r}: required")
            elif isinstance(extra, dict):
                for k, v in obj.items():
                    out += self.violations(v, extra, f"{path}.{k}", check_required)
            return out
        if kind == "array":
            if not isinstance(obj, list):
                return [f"{path}: must be an array"]
            for i, v in enumerate(obj):
                out += self.violations(v, schema.get("items", {}), f"{path}[{i}]", check_required)
            return out
        if kind == "string":
            if not isinstance(obj, str):
                out.append(f"{path}: must be a string")
        elif kind == "integer":
            if not isinstance(obj, int) or isinstance(obj, bool):
                out.append(f"{path}: must be an integer")
        elif kind == "number":
            if not isinstance(obj, (int, float)) or isinstance(obj, bool):
                out.append(f"{path}: must be a number")
        elif kind == "boolean":
            if not isinstance(obj, bool):
                out.append(f"{path}: must be a boolean")
        return out
