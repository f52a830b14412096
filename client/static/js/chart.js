// A live line chart of the ticker's recent values, drawn with uPlot. Its x axis is a window of
// time ending at the latest value, so an idle spell shows as time passing, not as old values
// squashed to the left; the line breaks wherever values are missing (the ticker paused here,
// or the server had nobody to tick for).

import uPlot from '/vendor/uPlot.esm.js';
import { formatClock } from './dom.js';

const MIN_WIDTH_PX = 200;
const DEFAULT_HEIGHT_PX = 200;
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const DARK_SCHEME = '(prefers-color-scheme: dark)';
// Time axis steps in seconds: whole seconds only, labelled HH:MM:SS.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
// Two values further apart than this many intervals have values missing between them.
const GAP_INTERVALS = 1.5;

/**
 * The chart's columns: [x seconds, y], with a point of no value wherever values are missing
 * (a seq skipped, or more time between two values than the interval explains), so that uPlot
 * breaks the line there. Returns { columns, gaps }.
 */
export function plotColumns(points, intervalS) {
  const xs = [];
  const ys = [];
  let gaps = 0;
  points.forEach((point, index) => {
    const previous = points[index - 1];
    const late = intervalS && previous && point.ts - previous.ts > GAP_INTERVALS * intervalS * 1000;
    if (previous && (point.seq !== previous.seq + 1 || late)) {
      xs.push((previous.ts + point.ts) / 2000);
      ys.push(null);
      gaps += 1;
    }
    xs.push(point.ts / 1000);
    ys.push(point.data);
  });
  return { columns: [xs, ys], gaps };
}

/** The chart's colours, read from the CSS custom properties of its container. */
function readTheme(container) {
  const css = getComputedStyle(container);
  const value = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    line: value('--chart-line', '#4f46e5'),
    fillTop: value('--chart-fill-top', 'rgba(79, 70, 229, 0.28)'),
    fillBottom: value('--chart-fill-bottom', 'rgba(79, 70, 229, 0)'),
    axis: value('--chart-axis', '#5b6577'),
    grid: value('--chart-grid', '#e4e8f0'),
  };
}

/**
 * Draw the chart into container and return { setData(points, windowS) }, where points are the
 * ticker's {data, seq, ts} values, oldest first, and windowS the seconds of time shown (ending
 * at the latest value; null: just the values' own span). The container tells tests what it
 * shows: data-points (how many values are plotted), data-last-seq, data-gaps (breaks in the
 * line) and data-window (the seconds the x axis spans).
 */
export function createChart(container, { intervalS = () => null } = {}) {
  let points = [];
  let windowS = null;
  let plot = null;

  const size = () => ({
    width: Math.max(container.clientWidth, MIN_WIDTH_PX),
    height: container.clientHeight || DEFAULT_HEIGHT_PX,
  });

  const toColumns = () => plotColumns(points, intervalS()).columns;

  /** The x range: the window of time ending at the latest value, when there is one. */
  const xRange = (u, min, max) => (windowS && points.length
    ? [points.at(-1).ts / 1000 - windowS, points.at(-1).ts / 1000] : [min, max]);

  function options() {
    const theme = readTheme(container);
    const axis = {
      stroke: theme.axis,
      font: FONT,
      grid: { stroke: theme.grid, width: 1 },
      ticks: { stroke: theme.grid, width: 1, size: 4 },
    };
    return {
      ...size(),
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 8, fill: theme.line } },
      scales: { x: { time: true, range: xRange }, y: { range: [0, 100] } },
      axes: [
        {
          ...axis,
          space: 64,
          size: 30,
          incrs: TIME_STEPS,
          values: (u, ticks) => ticks.map((seconds) => formatClock(seconds * 1000, true)),
        },
        { ...axis, size: 36, space: 24 },
      ],
      series: [
        {},
        {
          label: 'Value',
          spanGaps: false,
          stroke: theme.line,
          width: 2,
          fill: (u) => {
            const gradient = u.ctx.createLinearGradient(0, u.bbox.top, 0, u.bbox.top + u.bbox.height);
            gradient.addColorStop(0, theme.fillTop);
            gradient.addColorStop(1, theme.fillBottom);
            return gradient;
          },
          points: { size: 5, fill: theme.line },
        },
      ],
    };
  }

  function build() {
    plot?.destroy();
    plot = new uPlot(options(), toColumns(), container);
  }

  function describe() {
    const last = points.at(-1);
    container.dataset.points = String(points.length);
    container.dataset.lastSeq = last ? String(last.seq) : '';
    container.dataset.gaps = String(plotColumns(points, intervalS()).gaps);
    const { min, max } = plot.scales.x;
    container.dataset.window = Number.isFinite(min) && Number.isFinite(max) ? (max - min).toFixed(3) : '';
    if (!last) {
      container.setAttribute('aria-label', 'Chart of the recent values: waiting for data');
      return;
    }
    const values = points.map((point) => point.data);
    container.setAttribute('aria-label', `Chart of the last ${points.length} values, `
      + `from ${Math.min(...values)} to ${Math.max(...values)}; the latest is ${last.data}`);
  }

  function setData(next, nextWindowS = null) {
    points = next;
    windowS = nextWindowS;
    plot.setData(toColumns());
    describe();
  }

  new ResizeObserver(() => plot.setSize(size())).observe(container);
  window.matchMedia(DARK_SCHEME).addEventListener('change', build);
  build();
  describe();
  return { setData };
}
