// A segment's size a day as hand-written SVG: its members (a line) over its entries and exits (bars
// up and down), with a text alternative (the SVG's title and description) and the same numbers as
// a table. Drawn in the container's own pixels, so the labels keep their size on a phone; drawn
// again when the container's width changes.

import { h, uid } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 280;
const LINE = { top: 12, height: 150 };
const BARS = { top: 186, height: 64 };
const X_LABELS_Y = 272;
const RIGHT = 14;
const MIN_WIDTH = 260;
const number = new Intl.NumberFormat("en-US");

/** An SVG element, as dom.js's h() makes HTML ones. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function formatNumber(value) {
  return number.format(value);
}

/** "Nov 8" for "2026-11-08" (days are UTC days). */
export function shortDay(date) {
  return new Date(`${date}T00:00:00Z`).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}

/** A round ceiling for an axis, at least `value`: 1, 2, 4, 6, 8 or 10 × 10^k, so that its half
 * is a whole number too (but for 1). */
function niceCeiling(value) {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 4, 6, 8, 10]) {
    if (step * power >= value) return Math.max(2, step * power);
  }
  return 10 * power;
}

/** What the chart says, in words: its text alternative (also shown under its heading). */
export function describe(rows) {
  const first = rows[0];
  const last = rows.at(-1);
  const entered = rows.reduce((sum, row) => sum + row.entered, 0);
  const exited = rows.reduce((sum, row) => sum + row.exited, 0);
  const peak = rows.reduce((best, row) => (row.count > best.count ? row : best), first);
  return (
    `${formatNumber(first.count)} members on ${first.date}, ${formatNumber(last.count)} on ${last.date}; ` +
    `at most ${formatNumber(peak.count)} (${peak.date}). ` +
    `${formatNumber(entered)} entered and ${formatNumber(exited)} exited in ${rows.length} days.`
  );
}

function draw(rows, width, ids, title, description) {
  const maxCount = niceCeiling(Math.max(...rows.map((row) => row.count)));
  const maxMoved = niceCeiling(Math.max(1, ...rows.map((row) => Math.max(row.entered, row.exited))));
  const countTicks = maxCount > 1 ? [maxCount, maxCount / 2, 0] : [maxCount, 0];
  const countLabels = countTicks.map((value) => formatNumber(value));
  const movedLabels = [`+${formatNumber(maxMoved)}`, `−${formatNumber(maxMoved)}`];
  const longest = Math.max(...[...countLabels, ...movedLabels].map((label) => label.length));
  const left = 10 + longest * 7.5;
  const plotWidth = width - left - RIGHT;
  const step = plotWidth / rows.length;
  const x = (index) => left + step * (index + 0.5);
  const yCount = (value) => LINE.top + LINE.height - (value / maxCount) * LINE.height;
  const middle = BARS.top + BARS.height / 2;
  const yMoved = (value) => (value / maxMoved) * (BARS.height / 2);

  const grid = countTicks.map((value, index) =>
    s(
      "g",
      { class: "chart-grid" },
      s("line", { x1: left, x2: width - RIGHT, y1: yCount(value), y2: yCount(value) }),
      s("text", { x: left - 6, y: yCount(value) + 4, "text-anchor": "end" }, countLabels[index]),
    ),
  );
  const points = rows.map((row, index) => `${x(index).toFixed(1)},${yCount(row.count).toFixed(1)}`);
  const area = `M${x(0).toFixed(1)},${yCount(0)} L${points.join(" L")} L${x(rows.length - 1).toFixed(1)},${yCount(0)} Z`;
  const barWidth = Math.max(1, Math.min(14, step * 0.6));
  const bars = rows.map((row, index) => {
    const up = yMoved(row.entered);
    const down = yMoved(row.exited);
    return [
      up > 0 ? s("rect", { class: "chart-entered", x: x(index) - barWidth / 2, y: middle - Math.max(up, 1), width: barWidth, height: Math.max(up, 1) }) : null,
      down > 0 ? s("rect", { class: "chart-exited", x: x(index) - barWidth / 2, y: middle, width: barWidth, height: Math.max(down, 1) }) : null,
    ];
  });
  // The day under the pointer, for a mouse (the table below says the same to everyone).
  const hover = rows.map((row, index) =>
    s(
      "rect",
      { class: "chart-day", x: left + step * index, y: LINE.top, width: step, height: BARS.top + BARS.height - LINE.top },
      s("title", {}, `${row.date}: ${formatNumber(row.count)} members, ${formatNumber(row.entered)} entered, ${formatNumber(row.exited)} exited`),
    ),
  );
  const labelled = [0, rows.length - 1];
  if (plotWidth > 420) labelled.splice(1, 0, Math.floor((rows.length - 1) / 2));
  const dayLabels = [...new Set(labelled)].map((index, position, all) =>
    s(
      "text",
      {
        class: "chart-axis",
        x: all.length > 1 && position === 0 ? left : all.length > 1 && position === all.length - 1 ? width - RIGHT : x(index),
        y: X_LABELS_Y,
        "text-anchor": all.length > 1 && position === 0 ? "start" : all.length > 1 && position === all.length - 1 ? "end" : "middle",
      },
      shortDay(rows[index].date),
    ),
  );
  const last = rows.length - 1;
  return s(
    "svg",
    {
      class: "size-chart",
      role: "img",
      "aria-labelledby": ids.title,
      "aria-describedby": ids.desc,
      width,
      height: HEIGHT,
      viewBox: `0 0 ${width} ${HEIGHT}`,
    },
    s("title", { id: ids.title }, title),
    s("desc", { id: ids.desc }, description),
    grid,
    s("path", { class: "chart-area", d: area }),
    s("polyline", { class: "chart-line", points: points.join(" ") }),
    s("circle", { class: "chart-now", cx: x(last), cy: yCount(rows[last].count), r: 3.5 }),
    s("line", { class: "chart-zero", x1: left, x2: width - RIGHT, y1: middle, y2: middle }),
    s("text", { class: "chart-axis", x: left - 6, y: BARS.top + 9, "text-anchor": "end" }, movedLabels[0]),
    s("text", { class: "chart-axis", x: left - 6, y: BARS.top + BARS.height, "text-anchor": "end" }, movedLabels[1]),
    bars,
    hover,
    dayLabels,
  );
}

function dataTable(rows, caption) {
  return h(
    "div",
    { class: "table-wrap chart-table", role: "region", "aria-label": caption, tabindex: "0" },
    h(
      "table",
      { class: "data-table" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ["Day (UTC)", "Members", "Entered", "Exited"].map((label, index) => h("th", { scope: "col", class: index ? "num" : null }, label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("time", { datetime: row.date }, row.date)),
            h("td", { class: "num" }, formatNumber(row.count)),
            h("td", { class: "num" }, formatNumber(row.entered)),
            h("td", { class: "num" }, formatNumber(row.exited)),
          ),
        ),
      ),
    ),
  );
}

function legend() {
  const key = (className, text) => h("li", {}, h("span", { class: `swatch ${className}`, "aria-hidden": "true" }), text);
  return h("ul", { class: "chart-legend", "aria-label": "Legend" }, key("swatch-members", "Members"), key("swatch-entered", "Entered"), key("swatch-exited", "Exited"));
}

/**
 * sizeChart(rows, {title}) → {element, dispose}: the figure (legend, SVG, "Day by day" table).
 * `rows`: the API's stats rows, oldest day first.
 */
export function sizeChart(rows, { title }) {
  const ids = { title: uid("chart-title"), desc: uid("chart-desc") };
  const description = describe(rows);
  const canvas = h("div", { class: "chart-canvas" });
  const figure = h(
    "figure",
    { class: "chart" },
    legend(),
    canvas,
    h("details", { class: "chart-data" }, h("summary", {}, "Day by day (table)"), dataTable(rows, `${title}: members, entered and exited a day`)),
  );
  let drawnWidth = 0;
  const observer = new ResizeObserver((entries) => {
    const width = Math.max(MIN_WIDTH, Math.floor(entries[0].contentRect.width));
    if (Math.abs(width - drawnWidth) < 2) return;
    drawnWidth = width;
    canvas.replaceChildren(draw(rows, width, ids, title, description));
  });
  observer.observe(canvas);
  return { element: figure, dispose: () => observer.disconnect() };
}
