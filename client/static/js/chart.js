// A live line chart of the ticker's recent values, drawn with uPlot.

import uPlot from '/vendor/uPlot.esm.js';
import { formatClock } from './dom.js';

const MIN_WIDTH_PX = 200;
const DEFAULT_HEIGHT_PX = 200;
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const DARK_SCHEME = '(prefers-color-scheme: dark)';
// Time axis steps in seconds: whole seconds only, labelled HH:MM:SS.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

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
 * Draw the chart into container and return { setData(points) }, where points are the ticker's
 * {data, seq, ts} values, oldest first. The container tells tests what it shows:
 * data-points (how many values are plotted) and data-last-seq.
 */
export function createChart(container) {
  let points = [];
  let plot = null;

  const size = () => ({
    width: Math.max(container.clientWidth, MIN_WIDTH_PX),
    height: container.clientHeight || DEFAULT_HEIGHT_PX,
  });

  const toColumns = () => [points.map((point) => point.ts / 1000), points.map((point) => point.data)];

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
      scales: { x: { time: true }, y: { range: [0, 100] } },
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
    if (!last) {
      container.setAttribute('aria-label', 'Chart of the recent values: waiting for data');
      return;
    }
    const values = points.map((point) => point.data);
    container.setAttribute('aria-label', `Chart of the last ${points.length} values, `
      + `from ${Math.min(...values)} to ${Math.max(...values)}; the latest is ${last.data}`);
  }

  function setData(next) {
    points = next;
    plot.setData(toColumns());
    describe();
  }

  new ResizeObserver(() => plot.setSize(size())).observe(container);
  window.matchMedia(DARK_SCHEME).addEventListener('change', build);
  build();
  describe();
  return { setData };
}
