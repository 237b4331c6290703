"""Draft `src/tollgate/graphql/schema.graphql` from what the installed SDKs send.

    .venv/bin/python tests/js/schema_from_documents.py > src/tollgate/graphql/schema.graphql

The compatible platform publishes no schema; its SDKs carry their documents and the input
types their variables use (the TypeScript declarations in node_modules). From those this
writes the smallest schema every document validates against:

- object types are named by the fragments' type conditions (`on Plan`), and otherwise
  after their field (`billingPeriodRange` -> `BillingPeriodRange`; amounts -> `Money`);
- input types and enums are read from the declarations, with their nullability;
- output fields are all nullable (Tollgate fills what it has); a leaf's scalar is judged
  from its name (dates, amounts and counts, flags, JSON); a field is a list where the
  declarations always declare that name a list (by its plural where they disagree).

Review the output like code: it is Tollgate's interface, committed by hand."""

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeNode,
    VariableNode,
    parse,
)

HERE = Path(__file__).parent
DECLARATIONS = "node_modules/@stigg/api-client-js/src/generated/sdk.d.ts"
ROOTS = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}
MONEY = {
    "price", "total", "subTotal", "totalExcludingTax", "tax", "discountAmount", "unitPrice",
    "flatPrice", "initial", "used", "remaining", "credit", "debit", "netAmount", "addonsTotal",
}  # fmt: skip
NOT_LISTS = {
    "status", "productSettings", "scheduleVariables", "credits", "taxDetails", "discountDetails",
    "options", "credentials", "units", "resetPeriodConfiguration", "additionalMetaData",
    "unitTransformation", "billingPeriodRange", "totalPrice", "canUpgradeSubscription",
}  # fmt: skip
LIST_LEAVES = {"enumValues", "requestedValues", "hiddenFromWidgets"}
FLOATS = {
    "usageLimit", "currentUsage", "requestedUsage", "amount", "value", "quantity",
    "newQuantity", "newUnitAmount", "percentOff", "discountValue", "percentage", "duration",
    "durationInMonths", "upTo", "blockSize", "minUnitQuantity", "maxUnitQuantity",
    "maxQuantity", "unitQuantity", "limit", "minItems", "freeItems", "trialRemainingDays",
    "versionNumber", "packageVersion", "fontSize", "divide", "amountDue", "currentBalance",
    "totalConsumed", "totalGranted", "attemptCount", "defaultPaymentExpirationMonth",
    "defaultPaymentExpirationYear", "usageBasedEstimatedBill", "planWidth", "planMargin",
    "planPadding", "subTotalExcludingTax", "totalCount",
}  # fmt: skip
FLOAT_WHEN_LEAF = {"subTotal", "total", "totalExcludingTax", "tax"}
DATES = {
    "usagePeriodAnchor", "usagePeriodStart", "usagePeriodEnd", "start", "end", "timestamp",
    "validUntil", "date", "currentBillingPeriodEnd", "scheduledExecutionTime",
}  # fmt: skip
BOOLEAN_PREFIXES = ("is", "has", "can", "should", "show", "requires", "exclude")
BOOLEANS = {"eligible", "inclusive", "additionalChargesMayApply", "collectPhoneNumber"}
JSONS = {"additionalMetaData", "dimensions", "metadata"}
UNIONS = {
    "resetPeriodConfiguration": "ResetPeriodConfiguration",
    "scheduleVariables": "ScheduleVariables",
    "billingCredentials": "BillingCredentials",
}
# Union members no document asks a field of: they still belong to their union (the SDKs'
# possibleTypes), with the platform's fields (docs.stigg.io/graphql-reference), nullable like
# every output field here.
UNSELECTED_MEMBERS = {"CouponChangeVariables": {"couponId": "String"}}


def leaf_type(name: str) -> str:
    if name in LIST_LEAVES:
        return "[String]"
    if name in JSONS:
        return "JSON"
    if name in FLOATS or name in FLOAT_WHEN_LEAF:
        return "Float"
    if name in DATES or name.endswith(("Date", "At", "Time")):
        return "DateTime"
    if name in BOOLEANS or (
        name.startswith(BOOLEAN_PREFIXES)
        and len(name) > 3
        and name[len(next(p for p in BOOLEAN_PREFIXES if name.startswith(p)))].isupper()
    ):
        return "Boolean"
    return "String"


def pascal(name: str) -> str:
    return name[0].upper() + name[1:]


class Schema:
    def __init__(self, taken: set[str], declared: str) -> None:
        self.taken = taken  # input and enum names, which an object type may not reuse
        # Field names the declarations give as lists, and as single values, anywhere.
        self.ts_lists = set(TS_LIST_FIELD.findall(declared))
        self.ts_objects = set(TS_SINGLE_FIELD.findall(declared))
        self.fields: dict[str, dict[str, str]] = defaultdict(dict)
        self.arguments: dict[tuple[str, str], dict[str, str]] = {}
        self.unions: dict[str, set[str]] = defaultdict(set)
        self.inputs_wanted: set[str] = set()
        # Every type a field was given (documents disagree when one spreads a fragment where
        # another selects inline), and the names made up here rather than read from a fragment.
        self.assigned: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.generated: set[str] = set()

    def add(self, document: DocumentNode) -> None:
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                variables = {
                    v.variable.name.value: v.type for v in definition.variable_definitions or ()
                }
                for variable_type in variables.values():
                    self.inputs_wanted.add(named(variable_type))
                root = ROOTS[definition.operation.value]
                self.walk(definition.selection_set, root, fragments, variables)

    def walk(
        self,
        selection_set: SelectionSetNode,
        type_name: str,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, TypeNode],
    ) -> None:
        self.fields[type_name]
        for selection in selection_set.selections:
            if isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                self.walk(
                    fragment.selection_set, fragment.type_condition.name.value, fragments, variables
                )
            elif isinstance(selection, InlineFragmentNode):
                inner = (
                    selection.type_condition.name.value if selection.type_condition else type_name
                )
                self.walk(selection.selection_set, inner, fragments, variables)
            elif isinstance(selection, FieldNode):
                self.field(selection, type_name, fragments, variables)

    def field(
        self,
        node: FieldNode,
        type_name: str,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, TypeNode],
    ) -> None:
        name = node.name.value
        if name == "__typename":
            return
        if node.arguments:
            arguments = self.arguments.setdefault((type_name, name), {})
            for argument in node.arguments:
                if isinstance(argument.value, VariableNode):
                    arguments[argument.name.value] = render(variables[argument.value.name.value])
                else:
                    arguments[argument.name.value] = LITERAL_ARGUMENTS[(name, argument.name.value)]
                    self.inputs_wanted.add(named_text(arguments[argument.name.value]))
        if node.selection_set is None:
            self.fields[type_name].setdefault(name, leaf_type(name))
            return
        child = self.child_type(node, type_name, fragments)
        if child not in self.assigned[(type_name, name)]:
            self.assigned[(type_name, name)].append(child)
        if type_name in ROOTS.values():
            listed = name in ROOT_LISTS
        elif (name in self.ts_lists) != (name in self.ts_objects):
            listed = name in self.ts_lists  # the declarations say, the same everywhere
        else:
            listed = name.endswith("s") and name not in NOT_LISTS
        self.fields[type_name][name] = f"[{child}]" if listed else child
        self.walk(node.selection_set, child, fragments, variables)

    def child_type(
        self, node: FieldNode, type_name: str, fragments: dict[str, FragmentDefinitionNode]
    ) -> str:
        name = node.name.value
        assert node.selection_set is not None
        if name in UNIONS:
            return UNIONS[name]
        for selection in node.selection_set.selections:
            if isinstance(selection, FragmentSpreadNode):
                return fragments[selection.name.value].type_condition.name.value
        if name in MONEY:
            return "Money"
        if name in ("edges", "node"):  # a connection's parts belong to their connection
            return f"{type_name}{'Edge' if name == 'edges' else 'Node'}"
        named_after = pascal(name)
        clashes = named_after in ROOTS.values() or named_after in self.taken
        made_up = f"{type_name}{named_after}" if clashes else named_after
        self.generated.add(made_up)
        return made_up

    def settle(self) -> None:
        """Where documents gave a field several types, keep one (a fragment's over a made-up
        name) holding every field any of them was asked for."""
        for (type_name, name), given in self.assigned.items():
            if len(given) < 2:
                continue
            kept = next((t for t in given if t not in self.generated), given[0])
            for other in given:
                if other != kept:
                    for field_name, field_type in self.fields.get(other, {}).items():
                        self.fields[kept].setdefault(field_name, field_type)
            current = self.fields[type_name][name]
            self.fields[type_name][name] = f"[{kept}]" if current.startswith("[") else kept

    def reachable(self) -> set[str]:
        seen: set[str] = set()
        stack = [root for root in ROOTS.values() if root in self.fields]
        while stack:
            type_name = stack.pop()
            if type_name in seen:
                continue
            seen.add(type_name)
            for field_type in self.fields.get(type_name, {}).values():
                stack.append(named_text(field_type))
            stack.extend(m for m in self.unions.get(type_name, ()) if self.fields.get(m))
        return seen


# Root fields that answer lists (the rest answer one object or a scalar).
ROOT_LISTS = {
    "cachedEntitlements", "getActiveSubscriptions", "grantPromotionalEntitlements",
    "reportUsageBulk", "grantPromotionalEntitlementsGroup", "getCreditGrants",
}  # fmt: skip
LITERAL_ARGUMENTS = {
    ("coupons", "filter"): "CouponFilter",
    ("coupons", "paging"): "CursorPaging",
    ("products", "paging"): "CursorPaging",
}


def named(node: TypeNode) -> str:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def named_text(text: str) -> str:
    return text.strip("[]!")


def render(node: TypeNode) -> str:
    if isinstance(node, NonNullTypeNode):
        return f"{render(node.type)}!"
    if isinstance(node, ListTypeNode):
        return f"[{render(node.type)}]"
    assert isinstance(node, NamedTypeNode)
    return node.name.value


TS_LIST_FIELD = re.compile(r"^\s+(\w+)\??: (?:Maybe<|InputMaybe<)?Array<", re.M)
TS_SINGLE_FIELD = re.compile(r"^\s+(\w+)\??: (?!(?:Maybe<|InputMaybe<)?Array<)", re.M)
TS_FIELD = re.compile(r"^\s+(\w+)(\??): (.+);$")
TS_SCALAR = re.compile(r"Scalars\['(\w+)'\]")


def declarations(text: str) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """Input types (field -> SDL type) and enums (values) of the TypeScript declarations."""
    types: dict[str, dict[str, str]] = {}
    enums: dict[str, list[str]] = {}
    for match in re.finditer(r"export declare type (\w+) = \{\n(.*?)\n\};", text, re.S):
        fields = {}
        for line in match.group(2).splitlines():
            found = TS_FIELD.match(line)
            if found:
                fields[found.group(1)] = ts_type(found.group(3), optional=bool(found.group(2)))
        types[match.group(1)] = fields
    for match in re.finditer(r"export declare enum (\w+) \{\n(.*?)\n\}", text, re.S):
        enums[match.group(1)] = re.findall(r'^\s+\w+ = "(\w+)",?$', match.group(2), re.M)
    return types, enums


def ts_type(text: str, *, optional: bool) -> str:
    text = text.strip()
    nullable = optional or text.startswith(("InputMaybe<", "Maybe<"))
    for wrapper in ("InputMaybe<", "Maybe<"):
        if text.startswith(wrapper):
            text = text[len(wrapper) : -1]
    if text.startswith("Array<"):
        inner = ts_type(text[len("Array<") : -1], optional=False)
        rendered = f"[{inner}]"
    else:
        scalar = TS_SCALAR.fullmatch(text)
        rendered = scalar.group(1) if scalar else text
    return rendered if nullable else f"{rendered}!"


def main() -> None:
    dumped = subprocess.run(
        ["node", str(HERE / "documents.mjs")], capture_output=True, text=True, check=True
    )
    node_sdk = HERE / "node_modules/@stigg/node-server-sdk/node_modules/@stigg/api-client-js"
    source = node_sdk if node_sdk.is_dir() else HERE / "node_modules/@stigg/api-client-js"
    declared = (source / "src/generated/sdk.d.ts").read_text()
    inputs, enums = declarations(declared)
    taken = set(enums) | {name for name in inputs if name.endswith(INPUT_SUFFIXES)}
    schema = Schema(taken=taken, declared=declared)
    possible = json.loads((source / "src/generated/fragments.json").read_text())["possibleTypes"]
    for union in UNIONS.values():
        schema.unions[union] = set(possible[union])
    for documents in json.loads(dumped.stdout).values():
        for document in documents:
            schema.add(parse(document["document"]))
    schema.settle()
    for member, fields in UNSELECTED_MEMBERS.items():
        for field_name, field_type in fields.items():
            schema.fields[member].setdefault(field_name, field_type)
    reachable = schema.reachable()
    out = sys.stdout
    out.write(HEADER)
    for scalar in ("DateTime", "JSON", "UUID", "ConnectionCursor"):
        out.write(f"scalar {scalar}\n")
    wanted = sorted(schema.inputs_wanted)
    seen_inputs: set[str] = set()
    enums_used: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen_inputs or name in BUILTIN:
            continue
        seen_inputs.add(name)
        if name in enums:
            enums_used.add(name)
            continue
        for field_type in inputs[name].values():
            inner = named_text(field_type)
            if inner not in seen_inputs and inner not in BUILTIN:
                wanted.append(inner)
    for name in sorted(seen_inputs - enums_used - BUILTIN):
        out.write(f"\ninput {name} {{\n")
        for field_name, field_type in sorted(inputs[name].items()):
            out.write(f"  {field_name}: {field_type}\n")
        out.write("}\n")
    for name in sorted(enums_used):
        out.write(f"\nenum {name} {{\n" + "".join(f"  {v}\n" for v in enums[name]) + "}\n")
    for name in sorted(schema.unions):
        if name in reachable:
            members = sorted(m for m in schema.unions[name] if schema.fields.get(m))
            out.write(f"\nunion {name} = {' | '.join(members)}\n")
    for type_name in sorted(schema.fields):
        if type_name in schema.unions or type_name not in reachable:
            continue
        fields = schema.fields[type_name]
        out.write(f"\ntype {type_name} {{\n")
        if not fields:
            out.write("  _empty: Boolean\n")
        for field_name in sorted(fields):
            arguments = schema.arguments.get((type_name, field_name))
            rendered = (
                "(" + ", ".join(f"{a}: {t}" for a, t in sorted(arguments.items())) + ")"
                if arguments
                else ""
            )
            out.write(f"  {field_name}{rendered}: {fields[field_name]}\n")
        out.write("}\n")


INPUT_SUFFIXES = ("Input", "Filter", "Paging", "Query", "Comparison")
BUILTIN = {
    "String",
    "Float",
    "Int",
    "Boolean",
    "ID",
    "DateTime",
    "JSON",
    "UUID",
    "ConnectionCursor",
}
HEADER = """# Tollgate's GraphQL schema: the compatible platform's type, field, argument, input and
# enum names, as far as its SDKs' documents use them (every document of
# @stigg/node-server-sdk 3.95.0 and @stigg/js-client-sdk 3.35.0 validates against it:
# tests/graphql_api/test_documents.py).
# Drafted by tests/js/schema_from_documents.py from the installed SDKs; output fields are
# nullable, and resolvers fill what Tollgate has.

"""

if __name__ == "__main__":
    main()
