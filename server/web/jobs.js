// The jobs table: one ListJobs page at a time (never every job), filtered on the server by id
// prefix and labels, paged forward by next_page_token and back by the tokens already seen.
"use strict";

const JobsPage = (() => {
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function time(ts) {
    if (!ts) return "";
    const d = new Date(ts);
    return isNaN(d) ? String(ts) : d.toLocaleString();
  }

  // "lr: step ×2 · 3 updates"
  function hyperparameterCell(job) {
    const cell = el("td");
    for (const hp of Api.list(job, "hyperparameters")) {
      const groups = Api.list(hp, "base_values").length;
      const segments = Api.list(hp, "segments").length;
      const reductions = Api.list(hp, "plateau_reductions").length;
      const extra = [groups > 1 ? groups + " groups" : "", segments ? segments + " updates" : "",
                     reductions ? reductions + " reductions" : ""].filter(Boolean).join(", ");
      cell.append(el("div", {}, el("b", {}, Api.field(hp, "name")), ": ", Marks.title(Api.field(hp, "schedule")),
                     extra ? el("span", {class: "muted"}, " · " + extra) : null));
    }
    return cell;
  }

  function render(main, params) {
    const state = {tokens: [""], page: 0, pageSize: Number(params.get("page_size") || 100)};
    main.textContent = "";
    const prefix = el("input", {id: "filter-prefix", placeholder: "exp-", value: params.get("prefix") || "",
                                size: 16});
    const label = el("input", {id: "filter-label", placeholder: "team=vision", value: params.get("label") || "",
                               size: 20});
    const size = el("select", {id: "page-size"}, ...[20, 50, 100, 500, 1000].map((n) => el("option", {value: n}, n)));
    size.value = String(state.pageSize);
    const prev = el("button", {id: "page-prev", type: "button"}, "← Previous");
    const next = el("button", {id: "page-next", type: "button"}, "Next →");
    const status = el("div", {class: "status", id: "jobs-status"});
    const body = el("tbody", {id: "jobs-body"});
    main.append(
        el("h1", {}, "Jobs"),
        el("div", {class: "toolbar"}, el("label", {}, "id prefix", prefix),
           el("label", {}, "label (key=value, several with spaces)", label), el("label", {}, "per page", size),
           prev, next),
        status,
        el("table", {id: "jobs-table"},
           el("thead", {}, el("tr", {}, el("th", {}, "id"), el("th", {}, "labels"), el("th", {}, "hyperparameters"),
                              el("th", {class: "num"}, "version"), el("th", {}, "last change"),
                              el("th", {class: "num", title: "the highest step GetValues has served"}, "progress"),
                              el("th", {class: "num", title: "open watch streams (WatchJob, dashboard pages)"}, "watchers"))),
           body));

    let controller = null;
    let sequence = 0;
    async function load() {
      if (controller) controller.abort();
      controller = new AbortController();
      const mine = ++sequence;
      let filter;
      try {
        filter = Api.jobFilter(prefix.value.trim(), label.value.trim().split(/\s+/).filter(Boolean));
      } catch (e) {
        status.textContent = "";
        status.append(el("span", {class: "error"}, e.message));
        return;
      }
      const started = performance.now();
      status.textContent = "loading…";
      try {
        const page = await Api.listJobs({filter, pageSize: state.pageSize, pageToken: state.tokens[state.page],
                                         signal: controller.signal});
        if (mine !== sequence) return;
        const jobs = Api.list(page, "jobs");
        const nextToken = Api.field(page, "next_page_token") || "";
        state.tokens.length = state.page + 1;
        if (nextToken) state.tokens.push(nextToken);
        const rows = document.createDocumentFragment();
        for (const job of jobs) {
          const id = Api.jobId(job);
          const labels = el("td");
          for (const [k, v] of Object.entries(Api.field(job, "labels") || {})) labels.append(el("span", {class: "chip"}, k + "=" + v));
          const served = Api.int(job, "served_through", undefined);
          rows.append(el("tr", {"data-job": id}, el("td", {}, el("a", {href: "#/job/" + encodeURIComponent(id)}, id)),
                         labels, hyperparameterCell(job), el("td", {class: "num"}, Api.int(job, "version", 0)),
                         el("td", {}, time(Api.field(job, "update_time"))),
                         el("td", {class: "num"}, served === undefined ? "—" : served.toLocaleString()),
                         el("td", {class: "num"}, Api.int(job, "watchers", 0))));
        }
        body.textContent = "";
        body.append(rows);
        const ms = performance.now() - started;
        window.hpschedTest.jobsLoadMs = ms;
        window.hpschedTest.jobsLoaded = (window.hpschedTest.jobsLoaded || 0) + 1;
        window.hpschedTest.jobsFilter = filter;
        status.textContent = (jobs.length ? `jobs ${state.page * state.pageSize + 1}–${state.page * state.pageSize +
                              jobs.length}` : "no jobs match") + (filter ? ` · filter: ${filter}` : "") +
                             ` · page ${state.page + 1}${nextToken ? "" : " (last)"} · ${ms.toFixed(0)} ms`;
        prev.disabled = state.page === 0;
        next.disabled = !nextToken;
      } catch (e) {
        if (e.name === "AbortError") return;
        status.textContent = "";
        status.append(el("span", {class: "error", id: "jobs-error"}, e.message));
      }
    }

    // The URL keeps the filter, so a filtered table can be linked to.
    function restart() {
      state.tokens = [""];
      state.page = 0;
      state.pageSize = Number(size.value);
      const q = new URLSearchParams();
      if (prefix.value.trim()) q.set("prefix", prefix.value.trim());
      if (label.value.trim()) q.set("label", label.value.trim());
      if (state.pageSize !== 100) q.set("page_size", state.pageSize);
      history.replaceState(null, "", "#/jobs" + (q.toString() ? "?" + q : ""));
      load();
    }
    let timer = 0;
    const debounced = () => { clearTimeout(timer); timer = setTimeout(restart, 250); };
    prefix.addEventListener("input", debounced);
    label.addEventListener("input", debounced);
    size.addEventListener("change", restart);
    prev.addEventListener("click", () => { if (state.page > 0) { state.page--; load(); } });
    next.addEventListener("click", () => { if (state.tokens[state.page + 1]) { state.page++; load(); } });
    load();
    return () => { if (controller) controller.abort(); clearTimeout(timer); };
  }

  return {render, el, time};
})();
