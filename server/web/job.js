// One job: a chart per hyperparameter (every group a curve) over a step range, its marks, the
// segment history, and the job followed live through its watch stream: an UpdateJob or a plateau
// reduction redraws the curves without a reload. Values are read as peeks (they never count as
// served) in the chunks GetValues allows.
"use strict";

const JobPage = (() => {
  const el = (...a) => JobsPage.el(...a);
  // The widest range drawn value by value: 2 x 10^5 steps is a few GetValues calls and well under
  // a second to draw. Wider ranges are drawn from evenly spaced windows (sampled, said on the page).
  const kMaxExact = 200000;
  const kSampleWindows = 1000;  // BatchGetValues takes at most 1000 requests.

  function describe(seg) {
    const f = (n) => Api.field(seg, n);
    if (f("scale") !== undefined) return "scale ×" + Number(f("scale"));
    if (f("pin") !== undefined) return "pin " + Api.list(f("pin"), "values").join(", ");
    if (f("schedule") !== undefined) {
      const time = f("time") === "SEGMENT_TIME_GLOBAL" ? "global time" : "local time";
      return "schedule " + Marks.title(f("schedule")) + " (" + time + (f("anchor") ? ", anchored" : "") + ")";
    }
    return "?";
  }

  function defaultRange(job) {
    const served = Api.int(job, "served_through", -1);
    const last = Math.max(served, Marks.lastMilestone(job, 1e7));
    return [0, last > 0 ? Math.ceil(last * 1.1) + 1 : 1000];
  }

  function render(main, id, params) {
    main.textContent = "";
    const started = performance.now();
    const T = window.hpschedTest;
    T.plots = {};
    T.jobEvents = [];
    T.jobReady = false;
    const title = el("h1", {}, "Job ", el("span", {id: "job-id"}, id));
    const liveDot = el("span", {class: "live", id: "live-dot"});
    const liveText = el("span", {id: "live-state", class: "muted"}, "");
    const info = el("div", {class: "status", id: "job-info"});
    const from = el("input", {id: "range-from", type: "number", min: 0, size: 10});
    const to = el("input", {id: "range-to", type: "number", min: 1, size: 10});
    const apply = el("button", {id: "range-apply", type: "button"}, "Show");
    const reset = el("button", {id: "range-reset", type: "button"}, "Default range");
    const status = el("div", {class: "status", id: "job-status"});
    const charts = el("div", {id: "charts"});
    const segments = el("tbody", {id: "segments-body"});
    const events = el("tbody", {id: "events-body"});
    main.append(title, el("div", {}, liveDot, liveText), info,
                el("div", {class: "toolbar"}, el("label", {}, "from step", from), el("label", {}, "to step (excluded)", to),
                   apply, reset, el("span", {class: "muted"}, "drag across a chart to zoom")),
                status, charts,
                el("h2", {}, "Segment history"),
                el("table", {id: "segments-table"}, el("thead", {}, el("tr", {}, ...["hyperparameter", "version",
                   "from step", "made", "change"].map((h) => el("th", {}, h)))), segments),
                el("h2", {}, "Live events"),
                el("div", {class: "events"}, el("table", {id: "events-table"}, el("thead", {}, el("tr", {},
                   ...["received", "event", "version", "first changed step", "changes"].map((h) => el("th", {}, h)))),
                   events)));

    let job = null;
    let range = null;
    let controller = null;
    let drawnOnce = false;
    let closed = false;

    function renderInfo() {
      const labels = Object.entries(Api.field(job, "labels") || {}).map(([k, v]) => k + "=" + v).join(", ");
      const served = Api.int(job, "served_through", undefined);
      info.textContent = `version ${Api.int(job, "version", 0)} · changed ${JobsPage.time(Api.field(job, "update_time"))}` +
                         ` · progress: ${served === undefined ? "nothing served yet" : "step " + served.toLocaleString()}` +
                         (labels ? " · " + labels : "");
    }

    function renderSegments() {
      segments.textContent = "";
      for (const hp of Api.list(job, "hyperparameters")) {
        for (const seg of Api.list(hp, "segments")) {
          segments.append(el("tr", {}, el("td", {}, Api.field(hp, "name")), el("td", {}, Api.int(seg, "version", 0)),
                             el("td", {class: "num"}, Api.int(seg, "effective_step", 0)),
                             el("td", {}, JobsPage.time(Api.field(seg, "create_time"))), el("td", {}, describe(seg))));
        }
      }
      if (!segments.children.length) {
        segments.append(el("tr", {}, el("td", {colspan: 5, class: "muted"}, "no updates: every hyperparameter follows its schedule from step 0")));
      }
    }

    function jobMarks(hp, lo, hi) {
      const marks = Marks.hyperparameter(hp, lo, hi);
      for (const seg of Api.list(hp, "segments")) {
        marks.push({step: Api.int(seg, "effective_step", 0), kind: "update", label: "v" + Api.int(seg, "version", 0)});
      }
      for (const r of Api.list(hp, "plateau_reductions")) marks.push({step: Number(r), kind: "plateau", label: "plateau"});
      return marks;
    }

    // Steps [lo, hi) of every series, exactly when the range is small enough, else sampled: the
    // first step of kSampleWindows evenly spaced windows (one BatchGetValues of one-step reads).
    async function fetchValues(lo, hi, seriesCount, signal) {
      if (hi - lo <= kMaxExact) {
        const v = await Api.jobValues(id, lo, hi, seriesCount, signal);
        const steps = new Float64Array(v.count);
        for (let i = 0; i < v.count; i++) steps[i] = lo + i;
        return {steps, series: v.series, provisionalFrom: v.provisionalFrom, sampled: false, version: v.version};
      }
      const stride = Math.ceil((hi - lo) / kSampleWindows);
      const starts = [];
      for (let s = lo; s < hi; s += stride) starts.push(s);
      const v = await Api.sampledValues(id, starts, signal);
      return {steps: Float64Array.from(starts), series: v.series, provisionalFrom: v.provisionalFrom, sampled: true,
              version: v.version};
    }

    // A metric's reports as a series aligned with `steps` (null where there is no report): each
    // report at its step, or at the nearest drawn step when the range is sampled.
    function align(steps, m) {
      const out = new Array(steps.length).fill(null);
      if (!steps.length) return out;
      const lo = steps[0];
      const stride = steps.length > 1 ? steps[1] - steps[0] : 1;
      m.steps.forEach((s, i) => {
        const k = Math.round((s - lo) / stride);
        if (k >= 0 && k < steps.length) out[k] = m.values[i];
      });
      return out;
    }

    async function draw() {
      if (controller) controller.abort();
      controller = new AbortController();
      const [lo, hi] = range;
      from.value = lo;
      to.value = hi;
      const t0 = performance.now();
      status.textContent = `loading steps ${lo.toLocaleString()}–${hi.toLocaleString()}…`;
      const hps = Api.list(job, "hyperparameters");
      const seriesCount = hps.reduce((n, hp) => n + Api.list(hp, "base_values").length, 0);
      let values;
      let reports = [];
      try {
        const metrics = Api.list(job, "metrics").length
            ? Api.metricReports(id, lo, hi, 100000, controller.signal).catch((e) => {
              if (e.name === "AbortError") throw e;
              T.metricsError = e.message;  // Curves without metrics rather than no curves.
              return [];
            }) : Promise.resolve([]);
        values = await fetchValues(lo, hi, seriesCount, controller.signal);
        reports = await metrics;
      } catch (e) {
        if (e.name === "AbortError") return;
        status.textContent = "";
        status.append(el("span", {class: "error"}, e.message));
        return;
      }
      const fetched = performance.now();
      charts.textContent = "";
      T.plots = {};
      for (const hp of hps) {
        const name = Api.field(hp, "name");
        const mine = values.series.filter((s) => s.hyperparameter === name);
        const box = el("div", {class: "card chart", "data-hyperparameter": name});
        charts.append(box);
        // Metrics go with the hyperparameters a reduce_on_plateau of theirs follows (else with the first).
        const followed = JSON.stringify(Api.field(hp, "schedule") || {}) +
                         JSON.stringify(Api.list(hp, "segments"));
        const mineMetrics = reports.filter((m) => followed.includes('"' + m.metric + '"') ||
                                                  (hp === hps[0] && !hps.some((h) => JSON.stringify(h).includes('"' + m.metric + '"'))));
        T.plots[name] = Chart.draw({
          metrics: mineMetrics.map((m) => ({label: m.metric, values: align(values.steps, m)})),
          el: box, steps: values.steps, title: name + ": " + Marks.title(Api.field(hp, "schedule")),
          yLabel: name, series: mine.map((s) => ({label: name + "/" + s.group, values: s.values})),
          marks: jobMarks(hp, lo, hi), now: () => Api.int(job, "served_through", undefined), provisionalFrom: values.provisionalFrom,
          onZoom: (a, b) => { range = [a, b]; draw(); }, height: hps.length > 1 ? 250 : 320,
        });
      }
      const ms = performance.now() - (drawnOnce ? t0 : started);
      const points = values.steps.length * values.series.length;
      status.textContent = `${points.toLocaleString()} points (${values.steps.length.toLocaleString()} steps × ` +
          `${values.series.length} series${values.sampled ? ", sampled: zoom in for every step" : ""}) of version ` +
          `${values.version} in ${ms.toFixed(0)} ms (fetch ${(fetched - t0).toFixed(0)} ms, draw ${(performance.now() - fetched).toFixed(0)} ms)` +
          (values.provisionalFrom !== undefined ? ` · provisional from step ${values.provisionalFrom} (waiting for metric reports)` : "");
      T.lastDraw = {lo, hi, version: values.version, ms, fetchMs: fetched - t0, sampled: values.sampled, metrics: reports,
                    provisionalFrom: values.provisionalFrom};
      if (!drawnOnce) T.jobLoadMs = ms;
      drawnOnce = true;
      T.jobReady = true;
      T.draws = (T.draws || 0) + 1;
    }

    function addEvent(event) {
      const type = (Api.field(event, "type") || "").replace("JOB_EVENT_TYPE_", "").toLowerCase();
      const ev = Api.field(event, "job");
      let changes = "";
      if (type === "updated" && ev) {
        const version = Api.int(ev, "version", 0);
        changes = Api.list(ev, "hyperparameters").flatMap((hp) => Api.list(hp, "segments")
            .filter((s) => Api.int(s, "version", 0) === version)
            .map((s) => Api.field(hp, "name") + " from " + Api.int(s, "effective_step", 0) + ": " + describe(s))).join("; ");
      } else if (type === "plateau_reduced") {
        changes = "reduce_on_plateau lowered the value";
      }
      T.jobEvents.push({type, version: Api.int(ev, "version", 0), effectiveStep: Api.int(event, "effective_step", 0)});
      events.prepend(el("tr", {}, el("td", {}, JobsPage.time(Api.field(event, "event_time")) || new Date().toLocaleString()),
                        el("td", {}, type), el("td", {}, Api.int(ev, "version", "")),
                        el("td", {class: "num"}, Api.int(event, "effective_step", 0)), el("td", {}, changes)));
    }

    function onEvent(event) {
      if (closed) return;
      addEvent(event);
      const type = Api.field(event, "type");
      if (type === "JOB_EVENT_TYPE_DELETED") {
        status.textContent = "the job was deleted";
        return;
      }
      const next = Api.field(event, "job");
      if (!next || type === "JOB_EVENT_TYPE_SNAPSHOT") return;
      // Watch events carry no served mark: keep the one GetJob gave.
      const served = Api.field(job, "served_through");
      job = next;
      if (served !== undefined && Api.field(job, "served_through") === undefined) job.servedThrough = served;
      renderInfo();
      renderSegments();
      draw();
    }

    // The served mark grows with the trainer's reads, which are not watch events: a light poll.
    async function pollProgress() {
      while (!closed) {
        await new Promise((r) => setTimeout(r, 3000));
        if (closed) break;
        try {
          const fresh = await Api.getJob(id);
          const before = Api.int(job, "served_through", -1);
          const after = Api.int(fresh, "served_through", -1);
          if (after !== before) {
            job.servedThrough = after;
            delete job.served_through;
            renderInfo();
            for (const u of Object.values(T.plots)) u.redraw(false, false);
            T.now = after;
          }
        } catch (e) { /* the watch reports a broken connection */ }
      }
    }

    let watcher = null;
    (async () => {
      try {
        job = await Api.getJob(id);
      } catch (e) {
        status.append(el("span", {class: "error", id: "job-error"}, e.message));
        return;
      }
      renderInfo();
      renderSegments();
      const r0 = defaultRange(job);
      range = [Number(params.get("from") || r0[0]), Number(params.get("to") || r0[1])];
      apply.addEventListener("click", () => {
        const a = Math.max(0, Math.floor(Number(from.value)));
        const b = Math.floor(Number(to.value));
        if (b > a) { range = [a, b]; draw(); }
      });
      reset.addEventListener("click", () => { range = defaultRange(job); draw(); });
      await draw();
      watcher = Api.watch(id, onEvent, (s) => {
        liveText.textContent = s === "live" ? "following live" : s;
        liveDot.classList.toggle("on", s === "live");
        T.watchState = s;
      });
      pollProgress();
    })();
    return () => { closed = true; if (watcher) watcher.stop(); if (controller) controller.abort(); };
  }

  return {render, describe, defaultRange};
})();
