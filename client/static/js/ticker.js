// The /test_conn ticker panel: the latest value, its seq, a live chart and pause/resume.

import { createChart } from './chart.js';
import { request } from './connection.js';
import { byTestId, formatClock } from './dom.js';
import { failure } from './notice.js';

// ---- Constants --------------------------------------------------------------------------

const MAX_POINTS = 60; // values kept when the interval is not known yet
const WINDOW_VALUES = 60; // the chart shows the time this many values take

/** Wire the ticker panel to a /test_conn socket; notify(message) shows an error. */
export function initTicker({ socket, notify }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const panel = byTestId('ticker-value').closest('.ticker');
  const valueEl = byTestId('ticker-value');
  const seqEl = byTestId('ticker-seq');
  const timeEl = byTestId('ticker-time');
  const intervalEl = byTestId('ticker-interval');
  const minEl = byTestId('ticker-min');
  const avgEl = byTestId('ticker-avg');
  const maxEl = byTestId('ticker-max');
  const stateEl = byTestId('ticker-state');
  const toggle = byTestId('ticker-toggle');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    points: [], // {data, seq, ts}, oldest first, those of the chart's window of time
    interval: null, // seconds between values, as the server says
    paused: false, // confirmed by the server
    waiting: null, // the values of a connection made while paused: shown once resumed
    busy: false, // a pause or resume request is waiting for its answer
    flowing: false, // a value has arrived since the latest connect or resume
  };

  const chart = createChart(byTestId('ticker-chart'), { intervalS: () => state.interval });

  // ---- Helpers --------------------------------------------------------------------------

  const lastSeq = () => state.points.at(-1)?.seq ?? 0;

  function render() {
    const last = state.points.at(-1);
    valueEl.textContent = last ? String(last.data) : '–';
    seqEl.textContent = last ? String(last.seq) : '–';
    timeEl.textContent = last ? formatClock(last.ts, true) : '–';
    const values = state.points.map((point) => point.data);
    minEl.textContent = values.length ? String(Math.min(...values)) : '–';
    maxEl.textContent = values.length ? String(Math.max(...values)) : '–';
    avgEl.textContent = values.length
      ? (values.reduce((sum, value) => sum + value, 0) / values.length).toFixed(1) : '–';
    chart.setData(state.points, windowS());
  }

  /** The seconds of time the chart shows, once the interval is known. */
  const windowS = () => (state.interval ? WINDOW_VALUES * state.interval : null);

  /** Keep the values of the chart's window of time (or the latest MAX_POINTS). */
  function trim(points) {
    const span = windowS();
    if (span === null || points.length === 0) return points.slice(-MAX_POINTS);
    const since = points.at(-1).ts - span * 1000;
    return points.filter((point) => point.ts >= since);
  }

  function renderState() {
    const mode = !socket.connected ? 'offline' : state.paused ? 'paused' : 'live';
    panel.dataset.mode = mode;
    toggle.textContent = state.paused ? 'Resume' : 'Pause';
    toggle.dataset.state = state.paused ? 'paused' : 'live';
    toggle.disabled = state.busy || !socket.connected;
    intervalEl.textContent = state.interval ? formatInterval(state.interval) : '–';
    if (mode === 'offline') {
      stateEl.textContent = 'Offline: the chart resumes when the connection is back.';
    } else if (mode === 'paused') {
      stateEl.textContent = 'Paused: new values are not being received.';
    } else if (!state.flowing) {
      stateEl.textContent = state.interval
        ? `Waiting for the next value (one every ${formatInterval(state.interval)})…`
        : 'Waiting for the next value…';
    } else {
      stateEl.textContent = state.interval
        ? `Live: a new value every ${formatInterval(state.interval)}.` : 'Live.';
    }
  }

  // A value is new when its seq follows the last one shown. Seqs are compared within one
  // connection only: a restarted server counts from 1 again, so each connect's history starts
  // the chart anew.

  function addValue(value) {
    if (state.paused || !isTickerValue(value) || value.seq <= lastSeq()) return;
    state.points = trim([...state.points, value]);
    render();
    if (!state.flowing) {
      state.flowing = true;
      renderState();
    }
  }

  function showPoints(values) {
    state.points = values;
    state.waiting = null;
    render();
  }

  /**
   * The server's recent values, sent on each (re)connect: the whole chart. A paused panel keeps
   * showing what it had, and takes them once resumed.
   */
  function loadHistory(history) {
    if (Number.isFinite(history?.interval) && history.interval > 0) state.interval = history.interval;
    const values = Array.isArray(history?.values) ? trim(history.values.filter(isTickerValue)) : [];
    if (state.paused) {
      state.waiting = values;
    } else {
      showPoints(values);
    }
    renderState();
  }

  async function setPaused(paused) {
    state.busy = true;
    renderState();
    try {
      const reply = await request(socket, paused ? 'ticker_pause' : 'ticker_resume');
      state.paused = reply.paused === true;
      state.flowing = false;
      if (!state.paused && state.waiting) showPoints(state.waiting);
    } catch (error) {
      notify(failure(paused ? 'Could not pause the ticker' : 'Could not resume the ticker', error));
    } finally {
      state.busy = false;
      renderState();
    }
  }

  // ---- Click events ---------------------------------------------------------------------

  toggle.addEventListener('click', () => setPaused(!state.paused));

  // ---- Socket events --------------------------------------------------------------------

  socket.on('ticker_history', loadHistory);
  socket.on('server_response', addValue);

  socket.on('connect', () => {
    state.flowing = false;
    // A new connection is subscribed again: stay paused if the person paused.
    if (state.paused) setPaused(true);
    renderState();
  });

  socket.on('disconnect', renderState);

  render();
  renderState();
}

function isTickerValue(value) {
  return Boolean(value) && Number.isFinite(value.data) && Number.isInteger(value.seq)
    && Number.isFinite(value.ts);
}

function formatInterval(seconds) {
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${Number(seconds.toFixed(2))} s`;
}
