"""Patches as the API server applies them: JSON merge patch (RFC 7386),
strategic merge patch with the patch strategies of the official schema, and
JSON patch (RFC 6902)."""

import copy


class PatchError(Exception):
    pass


def json_merge(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = json_merge(result.get(k), v)
    return result


def strategic_merge(schemas, schema, target, patch):
    """Applies a strategic merge patch `patch` to `target` described by `schema`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        out = {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        return out
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    orders = {}
    deletions = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
        elif k.startswith("$deleteFromPrimitiveList/"):
            deletions[k.split("/", 1)[1]] = v
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
            continue
        field = schemas.field(schema, k) if schema else None
        if isinstance(v, list):
            result[k] = merge_list(schemas, field, result.get(k), v)
        elif isinstance(v, dict):
            # A map field (labels) has no properties: its keys merge plainly.
            result[k] = strategic_merge(schemas, field, result.get(k), v)
            if result[k] is None:
                result.pop(k)
        else:
            result[k] = v
    for k, values in deletions.items():
        if isinstance(result.get(k), list):
            result[k] = [x for x in result[k] if x not in values]
    for k, order in orders.items():
        if isinstance(result.get(k), list):
            field = schemas.field(schema, k) if schema else None
            key = (field or {}).get("x-kubernetes-patch-merge-key")
            result[k] = reorder(result[k], order, key)
    return result


def merge_list(schemas, field, target, patch):
    field = field or {}
    strategy = field.get("x-kubernetes-patch-strategy", "")
    key = field.get("x-kubernetes-patch-merge-key")
    if patch and isinstance(patch[-1], dict) and patch[-1].get("$patch") == "replace":
        return [copy.deepcopy(x) for x in patch[:-1]]
    if "merge" not in strategy.split(","):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    target = list(target or [])
    if key is None:
        # A merged list of primitives: union, in order.
        for x in patch:
            if x not in target:
                target.append(x)
        return target
    items_schema = (schemas.resolve(field).get("items") if field else None)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map in list is missing its merge key {key!r}")
        index = next((i for i, t in enumerate(target)
                      if isinstance(t, dict) and t.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                target.pop(index)
            continue
        if index is None:
            target.append(strategic_merge(schemas, items_schema, {}, item))
        else:
            target[index] = strategic_merge(schemas, items_schema, target[index], item)
    return target


def reorder(items, order, key):
    if key is None:
        ranked = [x for x in order if x in items]
        return ranked + [x for x in items if x not in ranked]
    position = {}
    for i, o in enumerate(order):
        if isinstance(o, dict) and key in o:
            position[o[key]] = i
    listed = [x for x in items if isinstance(x, dict) and x.get(key) in position]
    listed.sort(key=lambda x: position[x[key]])
    return listed + [x for x in items if x not in listed]


def json_patch(target, ops):
    doc = copy.deepcopy(target)
    for op in ops:
        path = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in path[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = path[-1] if path else None
        kind = op["op"]
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                del parent[last]
        elif kind == "test":
            value = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if value != op["value"]:
                raise PatchError(f"test failed at {op['path']}")
        else:
            raise PatchError(f"unsupported op {kind}")
    return doc
