// The dashboard's one door to the server: the JSON API under /v1 (docs/http.md), in the protobuf
// JSON mapping of proto/hpsched/v1. Everything here is read-only except Preview, which stores
// nothing. Field names are read in both spellings the mapping allows (lowerCamelCase, the
// default, and the proto name), and int64 fields, which the mapping writes as strings, become
// numbers (steps stay below 2^53, so they are exact).
"use strict";

const Api = (() => {
  // GetValues answers at most this many steps per call and this many values in all
  // (scheduler_service.proto, GetValuesRequest.count).
  const kMaxCount = 100000;
  const kMaxValues = 400000;
  const kChunkSteps = 25000;

  function field(obj, name) {
    if (obj == null) return undefined;
    if (name in obj) return obj[name];
    const camel = name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
    return obj[camel];
  }

  function int(obj, name, fallback) {
    const v = field(obj, name);
    if (v === undefined || v === null || v === "") return fallback;
    return Number(v);
  }

  function list(obj, name) {
    const v = field(obj, name);
    return Array.isArray(v) ? v : [];
  }

  // The values of a Series: the mapping writes NaN and the infinities as strings.
  function numbers(values) {
    const out = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
    return out;
  }

  // A token given on the page (Settings) is sent as a bearer token; the server checks roles.
  function token() {
    try {
      return localStorage.getItem("hpsched.token") || "";
    } catch (e) {
      return "";
    }
  }

  function headers(extra) {
    const h = Object.assign({Accept: "application/json"}, extra || {});
    const t = token();
    if (t) h.Authorization = "Bearer " + t;
    return h;
  }

  // An error of the API: the google.rpc.Status body ({code, message, details}) and the HTTP status.
  class ApiError extends Error {
    constructor(httpStatus, status) {
      super((status && status.message) || "HTTP " + httpStatus);
      this.httpStatus = httpStatus;
      this.code = status ? status.code : undefined;
      this.status = status;
    }
    // The field path the server's message starts with ("schedule.step.step_size"), or "".
    get fieldPath() {
      const m = /^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_][\w]*(?:\[\d+\])?)*):\s/.exec(this.message);
      return m ? m[1] : "";
    }
  }

  async function call(method, path, body, signal) {
    const init = {method, headers: headers(body ? {"Content-Type": "application/json"} : {}), signal};
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const text = await response.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new ApiError(response.status, {message: "the server answered non-JSON: " + text.slice(0, 200)});
      }
    }
    if (!response.ok) throw new ApiError(response.status, json);
    return json || {};
  }

  function query(params) {
    const parts = [];
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === "") continue;
      for (const one of Array.isArray(v) ? v : [v]) {
        parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(one));
      }
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  function jobId(job) {
    const name = field(job, "name") || "";
    return name.startsWith("jobs/") ? name.slice(5) : name;
  }

  // A ListJobs filter (scheduler_service.proto, ListJobsRequest.filter) from an id prefix and
  // "key=value" label terms.
  function quote(s) {
    return '"' + s.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }
  function jobFilter(prefix, labels) {
    const terms = [];
    if (prefix) terms.push("id:" + quote(prefix + "*"));
    for (const label of labels) {
      const eq = label.indexOf("=");
      if (eq <= 0) throw new Error('label filter "' + label + '": write it as key=value');
      terms.push("labels." + label.slice(0, eq).trim() + " = " + quote(label.slice(eq + 1).trim()));
    }
    return terms.join(" AND ");
  }

  function listJobs({filter, pageSize, pageToken, signal}) {
    return call("GET", "/v1/jobs" + query({filter, page_size: pageSize, page_token: pageToken}), undefined, signal);
  }

  function getJob(id, signal) {
    return call("GET", "/v1/jobs/" + encodeURIComponent(id), undefined, signal);
  }

  // The values of `names` (empty: all) of job `id` for steps [start, end), fetched in chunks
  // GetValues allows (count and value caps), four calls at a time, as peeks: the dashboard's
  // reads never count as served (GetValuesRequest.peek). Returns {version, start, steps, series:
  // [{hyperparameter, group, values: Float64Array}], provisionalFrom}.
  async function jobValues(id, start, end, seriesCount, signal) {
    const total = Math.max(1, end - start);
    // Chunks of at most 25000 steps, four in flight: the server turns each into JSON on its own
    // thread, so a 10^5-step range takes a quarter of one call's time on a machine with the cores.
    const chunk = Math.max(1, Math.min(kChunkSteps, Math.floor(kMaxValues / Math.max(1, seriesCount))));
    const ranges = [];
    for (let s = start; s < start + total; s += chunk) ranges.push([s, Math.min(chunk, start + total - s)]);
    const results = new Array(ranges.length);
    let next = 0;
    async function worker() {
      while (next < ranges.length) {
        const i = next++;
        const [s, n] = ranges[i];
        const path = "/v1/jobs/" + encodeURIComponent(id) + ":values" +
            query({step: s, count: n, peek: "true", pending_policy: "PENDING_POLICY_PROVISIONAL_NOW"});
        results[i] = await call("GET", path, undefined, signal);
      }
    }
    await Promise.all([worker(), worker(), worker(), worker()].slice(0, ranges.length));
    const series = [];
    let version = 0;
    let provisionalFrom;
    results.forEach((r, i) => {
      version = Math.max(version, int(r, "version", 0));
      const p = int(r, "provisional_from", undefined);
      if (p !== undefined && (provisionalFrom === undefined || p < provisionalFrom)) provisionalFrom = p;
      list(r, "series").forEach((s, k) => {
        if (i === 0) {
          series.push({hyperparameter: field(s, "hyperparameter") || "", group: int(s, "group", 0),
                       values: new Float64Array(total)});
        }
        series[k].values.set(numbers(list(s, "values")), ranges[i][0] - start);
      });
    });
    return {version, start, count: total, series, provisionalFrom};
  }

  // One value of every series at each of `steps` (at most 1000) of job `id`, in one
  // BatchGetValues call of one-step peeks: {version, series: [{hyperparameter, group, values}],
  // provisionalFrom}, values[i] for steps[i].
  async function sampledValues(id, steps, signal) {
    const requests = steps.map((s) => ({job: id, step: s, count: 1, peek: true,
                                        pending_policy: "PENDING_POLICY_PROVISIONAL_NOW"}));
    const r = await call("POST", "/v1/jobs:batchGetValues", {requests}, signal);
    const responses = list(r, "responses");
    const series = [];
    let version = 0;
    let provisionalFrom;
    responses.forEach((one, i) => {
      version = Math.max(version, int(one, "version", 0));
      const p = int(one, "provisional_from", undefined);
      if (p !== undefined && provisionalFrom === undefined) provisionalFrom = p;
      list(one, "series").forEach((s, k) => {
        if (i === 0) {
          series.push({hyperparameter: field(s, "hyperparameter") || "", group: int(s, "group", 0),
                       values: new Float64Array(steps.length)});
        }
        series[k].values[i] = Number(list(s, "values")[0]);
      });
    });
    return {version, series, provisionalFrom};
  }

  // The metric values reported for job `id` at steps [start, end) (GetMetricReports), at most
  // `max` per metric: [{metric, steps: number[], values: number[], truncated}]. An older server
  // without the route answers 404: no metrics then.
  async function metricReports(id, start, end, max, signal) {
    try {
      const r = await call("GET", "/v1/jobs/" + encodeURIComponent(id) + ":metricReports" +
                           query({start_step: start, end_step: end, max_reports: max}), undefined, signal);
      return list(r, "metrics").map((m) => ({metric: field(m, "metric"), steps: list(m, "steps").map(Number),
                                             values: list(m, "values").map(Number), truncated: !!field(m, "truncated")}));
    } catch (e) {
      if (e instanceof ApiError && e.httpStatus === 404 && /no such route/.test(e.message)) return [];
      throw e;
    }
  }

  function preview(request, signal) {
    return call("POST", "/v1/preview", request, signal);
  }

  // Follows a job's watch stream (GET /v1/jobs/{id}:watch, server-sent events, one
  // `data: <WatchJobResponse JSON>` per event) with fetch, so a bearer token can be sent.
  // Reconnects after a broken stream, with backoff, until stop() is called or the job is
  // deleted. onEvent(event) gets each parsed WatchJobResponse; onState(text) the connection state.
  function watch(id, onEvent, onState) {
    const controller = new AbortController();
    let stopped = false;
    let backoff = 500;
    async function run() {
      while (!stopped) {
        try {
          onState("connecting");
          const response = await fetch("/v1/jobs/" + encodeURIComponent(id) + ":watch",
                                       {headers: headers({Accept: "text/event-stream"}), signal: controller.signal});
          if (!response.ok) throw new Error("HTTP " + response.status);
          onState("live");
          backoff = 500;
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          let data = [];
          for (;;) {
            const {value, done} = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, {stream: true});
            let nl;
            while ((nl = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, nl).replace(/\r$/, "");
              buffer = buffer.slice(nl + 1);
              if (line === "") {
                if (data.length) {
                  const event = JSON.parse(data.join("\n"));
                  data = [];
                  onEvent(event);
                  if (field(event, "type") === "JOB_EVENT_TYPE_DELETED") stopped = true;
                }
              } else if (line.startsWith("data:")) {
                data.push(line.slice(5).replace(/^ /, ""));
              }
            }
          }
        } catch (e) {
          if (stopped || controller.signal.aborted) break;
          onState("reconnecting (" + e.message + ")");
        }
        if (stopped) break;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(10000, backoff * 2);
      }
      onState(stopped ? "closed" : "stopped");
    }
    run();
    return {stop() { stopped = true; controller.abort(); }};
  }

  return {field, int, list, numbers, ApiError, call, jobId, jobFilter, listJobs, getJob, jobValues, sampledValues, metricReports, preview, watch,
          kMaxCount, kMaxValues};
})();
