"""Resolves CloudFormation intrinsic functions against the resources the local stack made.

Supported: Ref, Fn::GetAtt, Fn::Sub (string or [string, vars]), Fn::Join, Fn::Select, Fn::Split,
Fn::If with Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition), Fn::ToJsonString.
`!Ref AWS::NoValue` removes what holds it, as CloudFormation does: a key of a mapping, an item of
a list; resolved alone it is NO_VALUE, which callers skip (an environment variable left unset).
"""

from __future__ import annotations

import json
import re
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "segmentation-local"

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class _NoValue:
    """What `!Ref AWS::NoValue` resolves to: the property (or list item) is left out."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


class Resolver:
    """`refs` maps a logical id to what Ref returns; `attrs` maps (logical id, attribute) to GetAtt."""

    def __init__(
        self,
        *,
        parameters: dict[str, Any],
        conditions: dict[str, Any],
        refs: dict[str, str],
        attrs: dict[tuple[str, str], str],
    ) -> None:
        self.refs = refs
        self.attrs = attrs
        self.conditions = conditions
        self.parameters = {
            name: str(spec.get("Default", "")) if isinstance(spec, dict) else ""
            for name, spec in parameters.items()
        }
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        key = (logical_id, attribute)
        if key in self.attrs:
            return self.attrs[key]
        if logical_id in self.refs and attribute == "Arn":
            # Functions, alarms, topics...: a plausible ARN is enough locally.
            return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
        raise KeyError(f"!GetAtt {logical_id}.{attribute}: unknown resource or attribute")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(str(arg))
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(str(logical_id), str(attribute))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(v) for v in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self.resolve(text)).split(str(separator))
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(str(name)) else when_false)
        if key == "Fn::Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(arg))
        if key == "Fn::Or":
            return any(self.resolve(arg))
        if key == "Condition":
            return self.condition(str(arg))
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg))
        resolved = self.resolve(arg)
        return {} if resolved is NO_VALUE else {key: resolved}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, str(text)).replace("${!", "${")
