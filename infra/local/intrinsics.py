"""CloudFormation intrinsic functions, resolved by SAM CLI's own resolver (what `sam local` uses)
over the names the local stack gave the resources it made.

SAM CLI's `IntrinsicResolver` does Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split,
Fn::FindInMap, Fn::Base64 and the conditions (Fn::If over the template's Conditions, Fn::Equals,
Fn::Not, Fn::And, Fn::Or); its `IntrinsicsSymbolTable` answers each Ref and Fn::GetAtt from
what it is told (`made`: a resource's physical name and attributes, once moto has made it), else
the parameters, else its defaults (a logical id; a Lambda-style ARN for `.Arn`).

What this adds: the local account's pseudo parameters, parameter values as CloudFormation passes
them (strings), and CloudFormation's `!Ref AWS::NoValue`, which removes the key or list item that
holds it; resolved alone it is None, which callers skip. (SAM CLI resolves it to None, leaves that
in place, and caches the None where the next `AWS::NoValue` then fails with an AttributeError:
aws/aws-sam-cli#1396. So it resolves to a marker here, removed afterwards.) One quirk stays:
SAM CLI's Fn::Sub looks a variable's value up again as a symbol, so a `!Sub [..., {Var: value}]`
whose value is a logical id, or holds a dot, comes out wrong; the template's one (a stack id
part) is safe, and a test holds its result.
"""

from __future__ import annotations

from typing import Any

from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "segmentation-local"
PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


_NO_VALUE = _NoValue()


class Resolver:
    """Resolves values of `template` (its Parameters' defaults, Conditions and Mappings)."""

    def __init__(self, template: dict[str, Any]) -> None:
        # Every value a string, as CloudFormation passes it: `!Equals [!Ref Count, "0"]` holds for
        # `Default: 0`. Given as defaults, not translations: SAM CLI skips a translation that is "".
        parameters = {
            name: {"Default": "" if not isinstance(spec, dict) else str(spec.get("Default", ""))}
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self._made: dict[str, Any] = {**PSEUDO_PARAMETERS, "AWS::NoValue": {IntrinsicResolver.REF: _NO_VALUE}}
        symbols = IntrinsicsSymbolTable(
            template={"Parameters": parameters, "Resources": template.get("Resources") or {}},
            logical_id_translator=self._made,
        )
        # Without the Resources, which the resolver would copy and never read.
        self._resolver = IntrinsicResolver(
            template={
                "Parameters": parameters,
                "Conditions": template.get("Conditions") or {},
                "Mappings": template.get("Mappings") or {},
            },
            symbol_resolver=symbols,
        )

    def made(self, logical_id: str, ref: str, **attributes: str) -> None:
        """What Ref (and Fn::GetAtt of each attribute) gives for a resource the stack made."""
        self._made[logical_id] = {IntrinsicResolver.REF: ref, **attributes}

    def resolve(self, value: Any) -> Any:
        if value is None:
            return None
        resolved = self._resolver.intrinsic_property_resolver(value, ignore_errors=False)
        return None if resolved is _NO_VALUE else _without_no_value(resolved)

    def ref(self, name: str) -> Any:
        return self.resolve({"Ref": name})

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.resolve({"Fn::GetAtt": [logical_id, attribute]})


def _without_no_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_no_value(item) for key, item in value.items() if item is not _NO_VALUE}
    if isinstance(value, list):
        return [_without_no_value(item) for item in value if item is not _NO_VALUE]
    return value
