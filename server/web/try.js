// "Try a schedule": a Schedule as JSON, base values and a step range; the curve follows the text
// (Preview, debounced); the server's validation error is shown with its field path; the same spec
// as a grpcurl line, a CLI line and a Python snippet to copy.
"use strict";

const TryPage = (() => {
  const el = (...a) => JobsPage.el(...a);
  const kDefault = {"sequential": {"schedules": [{"linear": {"start_factor": 0.1, "total_iters": 100}},
                                                  {"cosine_annealing": {"t_max": 900}}],
                                    "milestones": [100]}};

  // A shell word in single quotes.
  const sh = (s) => "'" + s.replace(/'/g, "'\\''") + "'";

  function snippets(schedule, bases, start, count, hyperparameter) {
    const compact = JSON.stringify(schedule);
    const request = {schedule, base_values: bases, start_step: start, count};
    if (hyperparameter) request.hyperparameter = hyperparameter;
    const host = location.hostname || "localhost";
    const grpcurl = "grpcurl -plaintext -d " + sh(JSON.stringify(request)) + " " + host +
                    ":50051 hpsched.v1.SchedulerService/Preview";
    const cli = "hpsched preview --local --schedule " + sh(compact) + " --base " + bases.join(",") + " --steps " +
                start + ":" + (start + count) + (hyperparameter ? " --hyperparameter " + hyperparameter : "");
    const py = ["from hpsched import Client", "", "client = Client(\"" + host + ":50051\")",
                "values = client.preview(", "    " + JSON.stringify(schedule) + ",",
                "    base_values=" + JSON.stringify(bases) + ", start_step=" + start + ", count=" + count +
                    (hyperparameter ? ", hyperparameter=\"" + hyperparameter + "\"" : "") + ")",
                "# values[group][i] is the value for step start_step + i"].join("\n");
    return {grpcurl, cli, py};
  }

  function render(main) {
    main.textContent = "";
    const T = window.hpschedTest;
    const examples = el("select", {id: "example"}, el("option", {value: ""}, "— an example from the catalog —"));
    const groups = {};
    EXAMPLES.forEach((e, i) => {
      if (!groups[e.library]) {
        groups[e.library] = el("optgroup", {label: e.library});
        examples.append(groups[e.library]);
      }
      groups[e.library].append(el("option", {value: i}, Marks.title(e.schedule) + " — " + e.name));
    });
    const spec = el("textarea", {id: "spec", spellcheck: "false"});
    spec.value = JSON.stringify(kDefault, null, 2);
    const bases = el("input", {id: "bases", value: "0.1", size: 14, title: "one base value per parameter group"});
    const from = el("input", {id: "steps-from", type: "number", value: 0, min: 0, size: 8});
    const to = el("input", {id: "steps-to", type: "number", value: 1000, min: 1, size: 8});
    const hyper = el("input", {id: "hyperparameter", value: "", placeholder: "lr", size: 10});
    const error = el("div", {class: "error", id: "preview-error"});
    const status = el("div", {class: "status", id: "preview-status"});
    const chart = el("div", {class: "card chart", id: "preview-chart"});
    const grpcurl = el("pre", {class: "copy", id: "copy-grpcurl"});
    const cli = el("pre", {class: "copy", id: "copy-cli"});
    const py = el("pre", {class: "copy", id: "copy-python"});
    main.append(el("h1", {}, "Try a schedule"),
                el("div", {class: "try-grid"},
                   el("div", {}, el("div", {class: "toolbar"}, examples),
                      spec,
                      el("div", {class: "toolbar"}, el("label", {}, "base values", bases), el("label", {}, "from step", from),
                         el("label", {}, "to step (excluded)", to), el("label", {}, "hyperparameter", hyper)),
                      error),
                   el("div", {}, status, chart,
                      el("h2", {}, "grpcurl"), grpcurl, el("h2", {}, "CLI (hpsched, no server needed)"), cli,
                      el("h2", {}, "Python (python/hpsched)"), py)));

    let controller = null;
    let plot = null;
    let sequence = 0;
    async function update() {
      const mine = ++sequence;
      error.textContent = "";
      spec.classList.remove("invalid");
      let schedule;
      try {
        schedule = JSON.parse(spec.value);
      } catch (e) {
        spec.classList.add("invalid");
        error.textContent = "not JSON: " + e.message;
        T.previewError = error.textContent;
        return;
      }
      const baseValues = bases.value.split(/[,\s]+/).filter(Boolean).map(Number);
      const start = Math.max(0, Math.floor(Number(from.value) || 0));
      let count = Math.floor(Number(to.value) || 0) - start;
      let note = "";
      if (count > Api.kMaxCount) {
        count = Api.kMaxCount;
        note = ` (Preview answers at most ${Api.kMaxCount.toLocaleString()} steps: showing the first)`;
      }
      const s = snippets(schedule, baseValues, start, Math.max(1, count), hyper.value.trim());
      grpcurl.textContent = s.grpcurl;
      cli.textContent = s.cli;
      py.textContent = s.py;
      if (controller) controller.abort();
      controller = new AbortController();
      const t0 = performance.now();
      try {
        const request = {schedule, base_values: baseValues, start_step: start, count: Math.max(1, count)};
        if (hyper.value.trim()) request.hyperparameter = hyper.value.trim();
        const response = await Api.preview(request, controller.signal);
        if (mine !== sequence) return;
        const series = Api.list(response, "series");
        const n = series.length ? Api.list(series[0], "values").length : 0;
        const steps = new Float64Array(n);
        for (let i = 0; i < n; i++) steps[i] = start + i;
        if (plot) plot.destroy();
        plot = Chart.draw({el: chart, steps, title: Marks.title(schedule), yLabel: hyper.value.trim() || "lr",
                           series: series.map((x, g) => ({label: "group " + g, values: Api.numbers(Api.list(x, "values"))})),
                           marks: Marks.schedule(schedule, 0, start, start + n), height: 300});
        T.previewPlot = plot;
        T.previewError = "";
        T.previews = (T.previews || 0) + 1;
        status.textContent = `${n.toLocaleString()} steps × ${series.length} groups in ${(performance.now() - t0).toFixed(0)} ms${note}`;
      } catch (e) {
        if (e.name === "AbortError" || mine !== sequence) return;
        spec.classList.add("invalid");
        error.textContent = "";
        const path = e.fieldPath;
        if (path) {
          error.append("The server refused the spec at ", el("span", {class: "field-path", id: "error-field"}, path), ":");
          error.append(el("div", {id: "error-message"}, e.message));
        } else {
          error.append(el("div", {id: "error-message"}, e.message));
        }
        T.previewError = e.message;
        T.previewErrorField = path;
        T.previewErrors = (T.previewErrors || 0) + 1;
      }
    }
    let timer = 0;
    const debounced = () => { clearTimeout(timer); timer = setTimeout(update, 300); };
    for (const input of [spec, bases, from, to, hyper]) input.addEventListener("input", debounced);
    examples.addEventListener("change", () => {
      const e = EXAMPLES[Number(examples.value)];
      if (!e) return;
      spec.value = JSON.stringify(e.schedule, null, 2);
      bases.value = e.base_values.join(", ");
      from.value = 0;
      to.value = e.steps;
      hyper.value = e.hyperparameter || "";
      update();
    });
    update();
    return () => { clearTimeout(timer); if (controller) controller.abort(); };
  }

  return {render, snippets};
})();
