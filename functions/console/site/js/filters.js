// The filter builder on the left of the list: groups (AND / OR / NOT) of conditions, each with a
// Field, an Operator and a Value that fits the field's type. Fields and ops come from GET /v1/fields.

import { h, uid } from "./dom.js";

const OP_LABELS = {
  exists: "has any value",
  not_exists: "is unknown",
  eq: "is",
  ne: "is not",
  in: "is one of",
  not_in: "is none of",
  contains: "contains",
  not_contains: "does not contain",
  starts_with: "starts with",
  ends_with: "ends with",
  gt: "greater than",
  gte: "at least",
  lt: "less than",
  lte: "at most",
  is_true: "is true",
  is_false: "is false",
  less_than_days_ago: "less than … days ago",
  more_than_days_ago: "more than … days ago",
  exactly_days_ago: "exactly … days ago",
  less_than_days_from_now: "less than … days from now",
  more_than_days_from_now: "more than … days from now",
  before: "before",
  after: "after",
  on: "on",
  in_segment: "is in segment",
  not_in_segment: "is not in segment",
};
const NO_VALUE = new Set(["exists", "not_exists", "is_true", "is_false"]);
const DAYS = new Set([
  "less_than_days_ago",
  "more_than_days_ago",
  "exactly_days_ago",
  "less_than_days_from_now",
  "more_than_days_from_now",
]);
const DATES = new Set(["before", "after", "on"]);
const LISTS = new Set(["in", "not_in"]);
const DEFAULT_OP = {
  string: "eq",
  number: "eq",
  boolean: "is_true",
  timestamp: "less_than_days_ago",
  segment: "in_segment",
};
const STANDARD_LABELS = {
  user_id: "User ID",
  email: "Email",
  name: "Name",
  phone: "Phone",
  signed_up_at: "Signed up",
  last_seen_at: "Last seen",
  session_count: "Sessions",
  unsubscribed_from_emails: "Unsubscribed from emails",
  email_status: "Email status",
  company_id: "Company ID",
  plan: "Plan",
  monthly_spend: "Monthly spend",
  size: "Size",
  industry: "Industry",
  website: "Website",
  remote_created_at: "Created (remote)",
  user_count: "Users",
  segment: "Segment",
};
// The values a standard string field can have (API.md: `email_status`).
const FIELD_VALUES = {
  email_status: ["ok", "bounced", "complained"],
};
const SOURCE_GROUPS = [
  ["standard", "Standard"],
  ["custom", "Custom attributes"],
  ["company", "Company"],
  ["event", "Events"],
  ["segment", "Segments"],
];
const MODES = [
  ["and", "all of these (AND)"],
  ["or", "any of these (OR)"],
  ["none", "none of these (NOT)"],
];

let nodeCounter = 0;
function nextId() {
  nodeCounter += 1;
  return `n${nodeCounter}`;
}

export function opLabel(op) {
  return OP_LABELS[op] || op;
}

export function fieldLabel(field) {
  if (!field) return "";
  if (STANDARD_LABELS[field]) return STANDARD_LABELS[field];
  if (field.startsWith("custom_attributes.")) return field.slice("custom_attributes.".length);
  if (field.startsWith("company.")) return `Company ${fieldLabel(field.slice("company.".length)).toLowerCase()}`;
  if (field.startsWith("event.")) {
    const parts = field.split(".");
    const what = { count: "count", first_at: "first done", last_at: "last done" }[parts.at(-1)] || parts.at(-1);
    return `${parts.slice(1, -1).join(".")} ${what}`;
  }
  return field;
}

export function newGroup(mode = "and") {
  return { kind: "group", id: nextId(), mode, children: [] };
}

export function newCondition() {
  return { kind: "cond", id: nextId(), field: "", op: "", value: "", within: "" };
}

function rawValue(value) {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

/** An API filter → the editor's tree (a root group). Any depth and shape the API accepts. */
export function fromApi(filter) {
  const root = newGroup("and");
  if (filter) root.children = [nodeFromApi(filter)].flatMap((node) => (node.kind === "group" && node.mode === "and" ? node.children : [node]));
  return root;
}

function nodeFromApi(filter) {
  if (filter && Array.isArray(filter.and)) {
    const group = newGroup("and");
    group.children = filter.and.map(nodeFromApi);
    return group;
  }
  if (filter && Array.isArray(filter.or)) {
    const group = newGroup("or");
    group.children = filter.or.map(nodeFromApi);
    return group;
  }
  if (filter && filter.not !== undefined) {
    const inner = filter.not;
    const group = newGroup("none");
    group.children = inner && Array.isArray(inner.or) ? inner.or.map(nodeFromApi) : [nodeFromApi(inner)];
    return group;
  }
  const cond = newCondition();
  cond.field = (filter && filter.field) || "";
  cond.op = (filter && filter.op) || "";
  cond.value = rawValue(filter && filter.value);
  cond.within = filter && filter.within_days !== undefined ? String(filter.within_days) : "";
  return cond;
}

/** The type of a field: from GET /v1/fields, else guessed from its name (an unknown field). */
function typeOf(fields, field) {
  const known = fields.get(field);
  if (known) return known.type;
  if (field === "segment") return "segment";
  if (field.endsWith("_at")) return "timestamp";
  if (field.endsWith(".count")) return "number";
  return "string";
}

function numberOrText(text) {
  const trimmed = text.trim();
  if (trimmed !== "" && !Number.isNaN(Number(trimmed))) return Number(trimmed);
  return trimmed;
}

/** A complete condition → its API form; null when it is not complete yet (it is left out). */
function conditionToApi(cond, fields) {
  if (!cond.field || !cond.op) return null;
  const out = { field: cond.field, op: cond.op };
  if (!NO_VALUE.has(cond.op)) {
    const type = typeOf(fields, cond.field);
    const text = String(cond.value ?? "").trim();
    if (text === "") return null;
    if (LISTS.has(cond.op)) {
      const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
      if (!items.length) return null;
      out.value = type === "number" ? items.map(numberOrText) : items;
    } else if (DAYS.has(cond.op) || type === "number") {
      out.value = numberOrText(text);
    } else {
      out.value = text;
    }
  }
  if (cond.within !== "" && cond.within !== undefined && String(cond.within).trim() !== "") {
    out.within_days = numberOrText(String(cond.within));
  }
  return out;
}

/**
 * The editor's tree → {filter, paths}: the API filter (null when nothing is complete) and, for
 * every node that went into it, its path in the request body ("filter.and[1]"), so that a 422's
 * details can be shown at the condition they name.
 */
export function toApi(root, fields, prefix = "filter") {
  const paths = new Map();
  const built = groupToApi(root, fields);
  if (!built) return { filter: null, paths };
  assignPaths(built, prefix, paths);
  return { filter: built.api, paths };
}

// Builds {api, node, parts}: parts are the children that went in (for the paths).
function groupToApi(group, fields) {
  const parts = [];
  for (const child of group.children) {
    const built = child.kind === "group" ? groupToApi(child, fields) : condToBuilt(child, fields);
    if (built) parts.push(built);
  }
  if (!parts.length) return null;
  if (group.mode === "none") {
    if (parts.length === 1) return { api: { not: parts[0].api }, node: group, parts, shape: "not1" };
    return { api: { not: { or: parts.map((p) => p.api) } }, node: group, parts, shape: "notor" };
  }
  if (parts.length === 1) return { ...parts[0], wrappers: [...(parts[0].wrappers || []), group] };
  return { api: { [group.mode]: parts.map((p) => p.api) }, node: group, parts, shape: group.mode };
}

function condToBuilt(cond, fields) {
  const api = conditionToApi(cond, fields);
  return api ? { api, node: cond, parts: [], shape: "cond" } : null;
}

function assignPaths(built, path, paths) {
  for (const wrapper of built.wrappers || []) paths.set(wrapper, path);
  paths.set(built.node, path);
  if (built.shape === "and" || built.shape === "or") {
    built.parts.forEach((part, index) => assignPaths(part, `${path}.${built.shape}[${index}]`, paths));
  } else if (built.shape === "not1") {
    assignPaths(built.parts[0], `${path}.not`, paths);
  } else if (built.shape === "notor") {
    built.parts.forEach((part, index) => assignPaths(part, `${path}.not.or[${index}]`, paths));
  }
}

/** Conditions in the tree that are not complete, for the "not applied yet" hint. */
export function isIncomplete(cond, fields) {
  return conditionToApi(cond, fields) === null;
}

/**
 * 422 details → Map(node → [{control, message}]) for the nodes their paths name (the longest
 * path that prefixes each detail's path); details naming no node come back as `rest`.
 */
export function placeErrors(details, paths) {
  const byNode = new Map();
  const rest = [];
  // Longest path first; on a tie (a lone condition has its group's path) the condition wins.
  const rank = ([node, path]) => path.length * 2 + (node.kind === "cond" ? 1 : 0);
  const entries = [...paths.entries()].sort((a, b) => rank(b) - rank(a));
  for (const detail of details || []) {
    const path = String(detail.path || "");
    const hit = entries.find(([, nodePath]) => path === nodePath || path.startsWith(`${nodePath}.`) || path.startsWith(`${nodePath}[`));
    if (!hit) {
      rest.push(detail);
      continue;
    }
    const [node, nodePath] = hit;
    const suffix = path.slice(nodePath.length).replace(/^\./, "");
    const control = node.kind === "cond" && ["field", "op", "value", "within_days"].includes(suffix) ? suffix : null;
    if (!byNode.has(node)) byNode.set(node, []);
    byNode.get(node).push({ control, message: detail.message || "Not valid." });
  }
  return { byNode, rest };
}

function walk(group, fn) {
  for (const child of group.children) {
    fn(child, group);
    if (child.kind === "group") walk(child, fn);
  }
}

function findParent(root, node) {
  let parent = null;
  walk(root, (child, owner) => {
    if (child === node) parent = owner;
  });
  return parent;
}

/**
 * The editor. `options`: {fields: Map(name → {type, ops, source}), segments: [{id, name}],
 * onChange(structural), readOnly}. `errors` is set by the view after a 422.
 */
export class FilterEditor {
  constructor(options) {
    this.fields = options.fields;
    this.segments = options.segments || [];
    this.onChange = options.onChange;
    this.root = newGroup("and");
    this.errors = new Map();
    this.generalErrors = [];
    this.element = h("div", { class: "filter-editor" });
    this.pendingFocus = null;
  }

  setFilter(filter) {
    this.root = fromApi(filter);
    this.errors = new Map();
    this.generalErrors = [];
    this.render();
  }

  build() {
    return toApi(this.root, this.fields);
  }

  showErrors(details) {
    const { paths } = this.build();
    const { byNode, rest } = placeErrors(details, paths);
    this.errors = byNode;
    this.generalErrors = rest;
    this.render();
  }

  clearErrors() {
    if (!this.errors.size && !this.generalErrors.length) return;
    this.errors = new Map();
    this.generalErrors = [];
    this.render();
  }

  changed(structural) {
    if (structural) {
      this.errors = new Map();
      this.generalErrors = [];
      this.render();
    }
    this.onChange?.(structural);
  }

  addCondition(group) {
    const cond = newCondition();
    group.children.push(cond);
    this.pendingFocus = [cond.id, "field"];
    this.changed(true);
  }

  addGroup() {
    const group = newGroup("or");
    const cond = newCondition();
    group.children.push(cond);
    this.root.children.push(group);
    this.pendingFocus = [cond.id, "field"];
    this.changed(true);
  }

  remove(node) {
    const parent = findParent(this.root, node);
    if (!parent) return;
    const index = parent.children.indexOf(node);
    parent.children.splice(index, 1);
    const next = parent.children[index] || parent.children[index - 1];
    this.pendingFocus = next ? [next.id, next.kind === "group" ? "mode" : "field"] : [parent.id, "add"];
    this.changed(true);
  }

  render() {
    const active = document.activeElement;
    const keep = active && this.element.contains(active) ? [active.dataset.node, active.dataset.role] : null;
    const focus = this.pendingFocus || keep;
    this.pendingFocus = null;
    const content = [this.renderGroup(this.root, true, [])];
    if (this.generalErrors.length) {
      content.unshift(
        h("div", { class: "error-box", role: "alert" }, this.generalErrors.map((detail) => h("p", {}, detail.message))),
      );
    }
    this.element.replaceChildren(...content);
    if (focus) {
      const target = this.element.querySelector(`[data-node="${focus[0]}"][data-role="${focus[1]}"]`);
      if (target) {
        target.focus();
        if (target.type === "text" && target.setSelectionRange) target.setSelectionRange(target.value.length, target.value.length);
      }
    }
  }

  renderGroup(group, isRoot, position) {
    const modeId = uid("mode");
    const label = isRoot ? "All filters" : `Group ${position.join(".")}`;
    const mode = h(
      "select",
      {
        id: modeId,
        "data-node": group.id,
        "data-role": "mode",
        onchange: (event) => {
          group.mode = event.target.value;
          this.changed(true);
        },
      },
      MODES.map(([value, text]) => h("option", { value, selected: group.mode === value }, text)),
    );
    const head = h(
      "div",
      { class: "group-head" },
      h("label", { for: modeId }, "Match"),
      mode,
      isRoot
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "button link danger",
              "data-node": group.id,
              "data-role": "remove",
              "aria-label": `Remove ${label.toLowerCase()}`,
              onclick: () => this.remove(group),
            },
            "Remove group",
          ),
    );
    const joiner = group.mode === "or" ? "or" : group.mode === "none" ? "nor" : "and";
    const items = group.children.map((child, index) => {
      const where = [...position, index + 1];
      const item = child.kind === "group" ? this.renderGroup(child, false, where) : this.renderCondition(child, where);
      return h(
        "li",
        { class: "filter-item" },
        index > 0 ? h("span", { class: "joiner", "aria-hidden": "true" }, joiner) : null,
        item,
      );
    });
    const errors = this.errors.get(group) || [];
    const actions = h(
      "div",
      { class: "group-actions" },
      h(
        "button",
        {
          type: "button",
          class: "button secondary",
          "data-node": group.id,
          "data-role": "add",
          onclick: () => this.addCondition(group),
        },
        isRoot ? "Add filter" : "Add condition to group",
      ),
      isRoot
        ? h(
            "button",
            { type: "button", class: "button link", "data-node": group.id, "data-role": "add-group", onclick: () => this.addGroup() },
            "Add group",
          )
        : null,
    );
    return h(
      "div",
      { class: isRoot ? "filter-group root" : "filter-group", role: "group", "aria-label": label },
      head,
      items.length ? h("ol", { class: "filter-list" }, items) : h("p", { class: "muted empty-filters" }, isRoot ? "No filters: every record matches." : "This group is empty."),
      errors.map((error) => h("p", { class: "field-error", role: "alert" }, error.message)),
      actions,
    );
  }

  renderCondition(cond, position) {
    const name = `Filter ${position.join(".")}`;
    const errors = this.errors.get(cond) || [];
    const errorId = errors.length ? uid("err") : null;
    const invalid = (control) => errors.some((error) => error.control === control || (control === "value" && error.control === null));
    const fieldId = uid("field");
    const opId = uid("op");
    const type = cond.field ? typeOf(this.fields, cond.field) : null;
    const known = this.fields.get(cond.field);

    const fieldSelect = h(
      "select",
      {
        id: fieldId,
        "data-node": cond.id,
        "data-role": "field",
        "aria-invalid": invalid("field") ? "true" : null,
        "aria-describedby": invalid("field") ? errorId : null,
        onchange: (event) => {
          cond.field = event.target.value;
          const nextType = typeOf(this.fields, cond.field);
          const ops = this.fields.get(cond.field)?.ops || [];
          cond.op = ops.includes(DEFAULT_OP[nextType]) ? DEFAULT_OP[nextType] : ops[0] || "";
          cond.value = "";
          cond.within = "";
          this.changed(true);
        },
      },
      h("option", { value: "", selected: !cond.field }, "Choose a field…"),
      this.fieldOptions(cond.field),
    );

    const ops = known ? known.ops : cond.op ? [cond.op] : [];
    const opSelect = h(
      "select",
      {
        id: opId,
        "data-node": cond.id,
        "data-role": "op",
        disabled: !cond.field,
        "aria-invalid": invalid("op") ? "true" : null,
        "aria-describedby": invalid("op") ? errorId : null,
        onchange: (event) => {
          const before = cond.op;
          cond.op = event.target.value;
          const kind = (op) => (NO_VALUE.has(op) ? "none" : DAYS.has(op) ? "days" : DATES.has(op) ? "date" : LISTS.has(op) ? "list" : "text");
          if (kind(before) !== kind(cond.op)) cond.value = "";
          this.changed(true);
        },
      },
      ops.length ? null : h("option", { value: "" }, "—"),
      ops.map((op) => h("option", { value: op, selected: op === cond.op }, opLabel(op))),
    );

    const rows = [
      h("div", { class: "control" }, h("label", { for: fieldId }, "Field"), fieldSelect),
      h("div", { class: "control" }, h("label", { for: opId }, "Operator"), opSelect),
    ];
    if (cond.field && cond.op && !NO_VALUE.has(cond.op)) {
      rows.push(this.valueControl(cond, type, invalid("value"), errorId));
    }
    if (cond.field.startsWith("event.") && cond.field.endsWith(".count")) {
      const withinId = uid("within");
      rows.push(
        h(
          "div",
          { class: "control" },
          h("label", { for: withinId }, "Within days (optional)"),
          h("input", {
            id: withinId,
            type: "number",
            min: "1",
            max: "90",
            step: "1",
            inputmode: "numeric",
            value: cond.within,
            "data-node": cond.id,
            "data-role": "within",
            "aria-invalid": invalid("within_days") ? "true" : null,
            oninput: (event) => {
              cond.within = event.target.value;
              this.changed(false);
            },
          }),
        ),
      );
    }
    const hint = h("p", { class: "hint", "data-hint": true, hidden: !(cond.field && isIncomplete(cond, this.fields)) }, "Not applied until it has a value.");
    return h(
      "div",
      { class: errors.length ? "condition has-error" : "condition", role: "group", "aria-label": name, "data-condition": cond.id },
      h("div", { class: "controls" }, rows),
      h(
        "button",
        {
          type: "button",
          class: "icon-button",
          "data-node": cond.id,
          "data-role": "remove",
          "aria-label": `Remove ${name.toLowerCase()}`,
          title: "Remove this filter",
          onclick: () => this.remove(cond),
        },
        h("span", { "aria-hidden": "true" }, "×"),
      ),
      hint,
      errors.map((error) => h("p", { class: "field-error", id: errorId }, error.message)),
    );
  }

  fieldOptions(current) {
    const groups = [];
    const seen = new Set();
    for (const [source, label] of SOURCE_GROUPS) {
      const inGroup = [...this.fields.values()].filter((field) => field.source === source);
      if (!inGroup.length) continue;
      groups.push(
        h(
          "optgroup",
          { label },
          inGroup.map((field) => {
            seen.add(field.field);
            return h("option", { value: field.field, selected: field.field === current }, fieldLabel(field.field));
          }),
        ),
      );
    }
    const others = [...this.fields.values()].filter((field) => !seen.has(field.field));
    for (const field of others) {
      seen.add(field.field);
      groups.push(h("option", { value: field.field, selected: field.field === current }, fieldLabel(field.field)));
    }
    if (current && !seen.has(current)) {
      groups.push(h("option", { value: current, selected: true }, `${current} (not seen yet)`));
    }
    return groups;
  }

  valueControl(cond, type, invalid, errorId) {
    const id = uid("value");
    const common = {
      id,
      "data-node": cond.id,
      "data-role": "value",
      "aria-invalid": invalid ? "true" : null,
      "aria-describedby": invalid ? errorId : null,
    };
    const onInput = (event) => {
      cond.value = event.target.value;
      // No re-render while typing (it would move the caret): only the hint follows the value.
      const box = event.target.closest(".condition");
      const hint = box && box.querySelector("[data-hint]");
      if (hint) hint.hidden = !isIncomplete(cond, this.fields);
      this.changed(false);
    };
    let control;
    let suffix = null;
    let hint = null;
    if (type === "segment") {
      control = h(
        "select",
        { ...common, onchange: onInput },
        h("option", { value: "", selected: !cond.value }, "Choose a segment…"),
        this.segments.map((segment) => h("option", { value: segment.id, selected: segment.id === cond.value }, segment.name)),
        cond.value && !this.segments.some((segment) => segment.id === cond.value)
          ? h("option", { value: cond.value, selected: true }, cond.value)
          : null,
      );
    } else if (DAYS.has(cond.op)) {
      control = h("input", { ...common, type: "number", min: "0", step: "any", inputmode: "decimal", value: cond.value, oninput: onInput });
      suffix = h("span", { class: "suffix" }, "days");
    } else if (DATES.has(cond.op) && (cond.value === "" || /^\d{4}-\d{2}-\d{2}$/.test(cond.value))) {
      control = h("input", { ...common, type: "date", value: cond.value, oninput: onInput });
    } else if (LISTS.has(cond.op)) {
      control = h("input", { ...common, type: "text", value: cond.value, oninput: onInput, autocomplete: "off" });
      hint = h("span", { class: "hint" }, "Separate values with commas.");
    } else if (type === "number") {
      control = h("input", { ...common, type: "number", step: "any", inputmode: "decimal", value: cond.value, oninput: onInput });
    } else {
      control = h("input", { ...common, type: "text", value: cond.value, oninput: onInput, autocomplete: "off" });
    }
    // A field with a known set of values suggests them (still free text, as the API takes it).
    const known = FIELD_VALUES[cond.field];
    let suggestions = null;
    if (known && control.tagName === "INPUT" && control.type === "text") {
      suggestions = h("datalist", { id: uid("values") }, known.map((one) => h("option", { value: one })));
      control.setAttribute("list", suggestions.id);
    }
    return h("div", { class: "control" }, h("label", { for: id }, "Value"), h("div", { class: "with-suffix" }, control, suffix), hint, suggestions);
  }
}
