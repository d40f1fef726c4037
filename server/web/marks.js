// Vertical marks of a schedule, from its parameters rather than its curve (a curve cannot tell a
// restart from a steep fall): the same walk as the CLI's plot (client/cli/plot_marks.h), over the
// Schedule JSON. Also the "end" of library schedules, which sets the default step range.
"use strict";

const Marks = (() => {
  const kMax = 2000;
  const kStepLimit = 9007199254740992;
  const f = (o, n) => Api.field(o, n);
  const num = (o, n, d) => {
    const v = f(o, n);
    return v === undefined || v === null ? d : Number(v);
  };

  // The schedule's kind (the oneof's one set field) and its parameters.
  function kindOf(schedule) {
    const keys = Object.keys(schedule || {});
    if (!keys.length) return {kind: "", params: {}};
    const kind = keys[0].replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
    return {kind, params: schedule[keys[0]] || {}};
  }

  // "step", "sequential(linear, cosine_annealing)", "transformers cosine".
  function title(schedule) {
    const {kind, params} = kindOf(schedule);
    if (kind === "sequential" || kind === "chained") {
      return kind + "(" + Api.list(params, "schedules").map(title).join(", ") + ")";
    }
    const name = f(params, "name");
    return name ? kind + " " + name : kind || "(none)";
  }

  // Parameters of library schedules that end a phase, by library: the last one set is where the
  // schedule stops changing shape (used for the default range; drawn as "end").
  const kEndFields = ["total_iters", "t_max", "total_steps", "num_training_steps", "decay_steps", "transition_steps",
                      "t_initial", "total_num_steps", "lr_decay_steps", "warmup_steps", "num_warmup_steps",
                      "warmup_t", "warmup_num_steps", "lr_warmup_steps", "first_decay_steps", "cycle_first_step_size"];

  function collect(schedule, offset, lo, hi, out) {
    if (lo >= hi || out.length >= kMax) return;
    const add = (step, kind, label) => {
      if (!isFinite(step)) return;
      if (Math.abs(step - Math.round(step)) < 1e-6) step = Math.round(step);
      if (step < lo || step >= hi || out.length >= kMax) return;
      out.push({step, kind, label});
    };
    const periodic = (phase, period, kind, label) => {
      if (!(period > 0) || !isFinite(period)) return;
      let k = Math.max(1, Math.ceil((lo - offset - phase) / period - 1e-9));
      for (; out.length < kMax; k++) {
        const step = offset + phase + k * period;
        if (step >= hi || step > kStepLimit) break;
        add(step, kind, label);
      }
    };
    const {kind, params: p} = kindOf(schedule);
    switch (kind) {
      case "sequential": {
        const children = Api.list(p, "schedules");
        const milestones = Api.list(p, "milestones").map(Number);
        children.forEach((child, i) => {
          const start = i === 0 ? 0 : milestones[i - 1];
          const end = i < milestones.length ? milestones[i] : kStepLimit;
          if (i > 0) add(offset + start, "milestone", "milestone");
          collect(child, offset + start, Math.max(lo, offset + start), Math.min(hi, offset + end), out);
        });
        break;
      }
      case "chained":
        Api.list(p, "schedules").forEach((child) => collect(child, offset, lo, hi, out));
        break;
      case "multi_step":
        Api.list(p, "milestones").forEach((m) => add(offset + Number(m), "milestone", "milestone"));
        break;
      case "step":
        periodic(0, num(p, "step_size", 0), "decay", "decay");
        break;
      case "cosine_annealing":
        periodic(0, num(p, "t_max", 0), "phase", "t_max");
        break;
      case "cosine_annealing_warm_restarts": {
        const t0 = num(p, "t_0", 0);
        const mult = num(p, "t_mult", 1);
        if (t0 <= 0 || mult < 1) break;
        if (mult === 1) {
          periodic(0, t0, "restart", "restart");
          break;
        }
        let boundary = t0;
        let length = t0 * mult;
        while (offset + boundary < hi && boundary <= kStepLimit && out.length < kMax) {
          add(offset + boundary, "restart", "restart");
          boundary += length;
          length *= mult;
        }
        break;
      }
      case "one_cycle": {
        let n = num(p, "total_steps", 0);
        if (!n && f(p, "epochs") !== undefined) n = num(p, "epochs", 0) * num(p, "steps_per_epoch", 0);
        if (!(n > 1)) break;
        const pct = num(p, "pct_start", 0.3);
        add(offset + pct * n - 1, "phase", "peak");
        if (f(p, "three_phase")) add(offset + 2 * pct * n - 2, "phase", "valley");
        add(offset + n - 1, "phase", "end");
        break;
      }
      case "cyclic": {
        const up = num(p, "step_size_up", 2000);
        const down = num(p, "step_size_down", up);
        if (!(up > 0) || !(down > 0)) break;
        const total = up + down;
        for (let k = Math.max(0, Math.floor((lo - offset) / total));
             out.length < kMax && offset + k * total < hi && k * total <= kStepLimit; k++) {
          add(offset + k * total + up, "phase", "peak");
          add(offset + (k + 1) * total, "phase", "trough");
        }
        break;
      }
      case "linear":
      case "polynomial":
      case "constant": {
        const total = num(p, "total_iters", 5);
        if (total > 0) add(offset + total, "phase", "end");
        break;
      }
      case "exponential":
      case "lambda":
      case "multiplicative":
      case "reduce_on_plateau":
        break;
      default: {  // A library's named schedule: where its phases end.
        let end = 0;
        for (const name of kEndFields) end = Math.max(end, num(p, name, 0));
        Api.list(p, "boundaries").forEach((b) => { end = Math.max(end, Number(b)); });
        if (end > 0) add(offset + end, "phase", "end");
        Api.list(p, "schedules").forEach((child) => collect(child, offset, lo, hi, out));
      }
    }
  }

  // The marks of one schedule started at `offset`, in [lo, hi), sorted, one per step.
  function schedule(s, offset, lo, hi) {
    const out = [];
    collect(s, offset || 0, lo, hi, out);
    out.sort((a, b) => a.step - b.step);
    return out.filter((m, i) => i === 0 || out[i - 1].step !== m.step);
  }

  // The marks of a hyperparameter over its timeline: the base schedule until the first segment
  // that replaces it, then each segment's schedule (local time starts at effective_step).
  function hyperparameter(hp, lo, hi) {
    const pieces = [{start: 0, schedule: f(hp, "schedule"), offset: 0}];
    for (const seg of Api.list(hp, "segments")) {
      const at = Api.int(seg, "effective_step", 0);
      for (const p of pieces) if (p.start >= at) p.dead = true;
      const s = f(seg, "schedule");
      if (f(seg, "scale") !== undefined) continue;  // A scale keeps the marks of what it scales.
      const global = f(seg, "time") === "SEGMENT_TIME_GLOBAL";
      pieces.push({start: at, schedule: s || null, offset: global ? 0 : at});
    }
    const live = pieces.filter((p) => !p.dead).sort((a, b) => a.start - b.start);
    const out = [];
    live.forEach((p, i) => {
      const end = i + 1 < live.length ? live[i + 1].start : hi;
      if (p.schedule) out.push(...schedule(p.schedule, p.offset, Math.max(lo, p.start), Math.min(hi, end)));
    });
    return out;
  }

  // The last step where the job's spec changes shape (a milestone, restart or end), or 0.
  function lastMilestone(job, limit) {
    let last = 0;
    for (const hp of Api.list(job, "hyperparameters")) {
      // Periodic marks (decays, cycles, restarts) count up to their third: a few periods show the shape.
      const seen = {};
      for (const m of hyperparameter(hp, 0, limit)) {
        seen[m.label] = (seen[m.label] || 0) + 1;
        if (m.label === "milestone" || m.label === "end" || seen[m.label] <= 3) last = Math.max(last, m.step);
      }
      for (const seg of Api.list(hp, "segments")) last = Math.max(last, Api.int(seg, "effective_step", 0));
      for (const r of Api.list(hp, "plateau_reductions")) last = Math.max(last, Number(r));
    }
    return last;
  }

  return {kindOf, title, schedule, hyperparameter, lastMilestone};
})();
