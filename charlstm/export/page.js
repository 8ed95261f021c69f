"use strict";
/* The exported page's program (charlstm.export.page inlines it). It reads the JSON block
 * #model-data (docs/formats.md, "The exported page") and implements:
 *  - the model: embedding, LSTM / GRU / RNN / peephole layers with charlstm.cells' equations and gate
 *    orders (LSTM i, f, g, o; GRU r, z, n), the head; float64 arithmetic on the float16/float32 weights;
 *  - the model's rules: the vocabulary (characters, or bytes decoded as UTF-8), a literal <eot> in a
 *    text is the end-of-record symbol, <unk> is never generated, a model of records (reset_id) reads
 *    a text as the start of a record (<eot> first) and reads every <eot> from the zero state, an
 *    empty prime starts from start_id, a sample ends at <eot> unless told otherwise;
 *  - generation (greedy = the first maximum, as charlstm's argmax; else temperature, top-k and the
 *    Gumbel-max draw with a seeded generator of its own: same seed, same text in this page, not the
 *    text torch's generator would give), time-sliced so the page stays responsive;
 *  - the UI (prime, options, streaming text coloured by one unit) and window.charlstm, the script API.
 * Corpus text only ever reaches the page through textContent, never as HTML.
 */
(function () {
  var D = JSON.parse(document.getElementById("model-data").textContent);
  var root = document.documentElement;
  var CELL = D.cell, L = D.num_layers, H = D.hidden_size, V = D.vocab_size, E = D.embed_dim;
  var G = { lstm: 4, peephole: 4, gru: 3, rnn: 1 }[CELL], GH = G * H;
  var LSTM = CELL === "lstm" || CELL === "peephole", PEEP = CELL === "peephole";
  var KINDS = D.kinds, K = KINDS.length, KIDX = {};
  KINDS.forEach(function (k, j) { KIDX[k] = j; });
  var GATE = {};
  D.gates.forEach(function (g) { GATE[g] = true; });
  var RESET = D.reset_id, EOT = D.eot_id, UNK = D.unk_id;

  // ------------------------------------------------------------------ weights
  function bytes(s) {
    var bin = atob(s), u = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    return u;
  }
  var F16 = null;
  function f16Table() {
    var t = new Float64Array(65536);
    for (var u = 0; u < 65536; u++) {
      var s = u & 0x8000 ? -1 : 1, e = (u >> 10) & 31, m = u & 1023;
      t[u] = e === 0 ? s * m * Math.pow(2, -24) : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * Math.pow(2, e - 15);
    }
    return t;
  }
  /* A weight as a Float32Array: float16 and float32 values are exactly float32 numbers, and every
   * product and sum below is a float64 one (a JavaScript number), so nothing is rounded by keeping
   * the weights in half the memory a step has to read. */
  function tensor(name) {
    var t = D.weights[name];
    if (!t) throw new Error("the page lacks the weight " + name);
    var n = t.shape.reduce(function (a, x) { return a * x; }, 1), b = bytes(t.data);
    if (D.dtype === "float32") return new Float32Array(b.buffer, 0, n);
    if (!F16) F16 = f16Table();
    var u = new Uint16Array(b.buffer, 0, n), out = new Float32Array(n);
    for (var i = 0; i < n; i++) out[i] = F16[u[i]];
    return out;
  }
  var emb = tensor("embed.weight"), layers = [];
  for (var l0 = 0; l0 < L; l0++) {
    var sfx = "_l" + l0;
    layers.push({ n: l0 ? H : E, wih: tensor("rnn.weight_ih" + sfx), whh: tensor("rnn.weight_hh" + sfx),
                  bih: tensor("rnn.bias_ih" + sfx), bhh: tensor("rnn.bias_hh" + sfx),
                  peep: PEEP ? tensor("rnn.peephole" + sfx) : null });
  }
  var headW = tensor("head.weight"), headB = tensor("head.bias");
  // Layer 0's input projection of every symbol, W_ih0 . embed[v] + b_ih0: one row per id.
  var table = new Float64Array(V * GH);
  (function () {
    var w = layers[0].wih, b = layers[0].bih;
    for (var v = 0; v < V; v++) {
      for (var r = 0; r < GH; r++) {
        var s = b[r], o = r * E, e0 = v * E;
        for (var k = 0; k < E; k++) s += w[o + k] * emb[e0 + k];
        table[v * GH + r] = s;
      }
    }
  })();

  // ------------------------------------------------------------------ the model, one step at a time
  function sigmoid(x) { return 1 / (1 + Math.exp(-x)); }

  /* One running copy of the model: its own state, the values of every kind at the last step
   * (vals[layer][kind], Float64Array(H)) and the logits. */
  function Net() {
    this.h = []; this.c = []; this.vals = [];
    for (var l = 0; l < L; l++) {
      this.h.push(new Float64Array(H));
      this.c.push(LSTM ? new Float64Array(H) : null);
      var kv = {};
      KINDS.forEach(function (k) { kv[k] = new Float64Array(H); });
      this.vals.push(kv);
    }
    this.pre = new Float64Array(GH);
    this.gh = new Float64Array(GH);
    this.logits = new Float64Array(V);
  }
  Net.prototype.zero = function () {
    for (var l = 0; l < L; l++) { this.h[l].fill(0); if (LSTM) this.c[l].fill(0); }
  };
  /* Read one id: a model of records reads its reset id (<eot>) from the zero state. With head,
   * the logits predicting the next id are computed too. */
  Net.prototype.step = function (id, head) {
    if (id === RESET) this.zero();
    var pre = this.pre, gh = this.gh, x = null, r, k, s, o;
    for (var l = 0; l < L; l++) {
      var P = layers[l], hl = this.h[l], n = P.n, w, b, out = this.vals[l];
      if (l === 0) {
        o = id * GH;
        for (r = 0; r < GH; r++) pre[r] = table[o + r];
      } else {
        w = P.wih; b = P.bih;
        for (r = 0; r < GH; r++) {
          s = b[r]; o = r * n;
          for (k = 0; k < n; k++) s += w[o + k] * x[k];
          pre[r] = s;
        }
      }
      w = P.whh; b = P.bhh;
      var dst = CELL === "gru" ? gh : null;
      for (r = 0; r < GH; r++) {
        s = b[r]; o = r * H;
        for (k = 0; k < H; k++) s += w[o + k] * hl[k];
        if (dst) dst[r] = s; else pre[r] += s;
      }
      if (LSTM) {
        var cl = this.c[l], pp = P.peep, I = out.i, F = out.f, Gv = out.g, O = out.o, C = out.c, Hv = out.h;
        for (k = 0; k < H; k++) {
          var pi = pre[k], pf = pre[H + k], pg = pre[2 * H + k], po = pre[3 * H + k], cp = cl[k];
          if (pp) { pi += pp[k] * cp; pf += pp[H + k] * cp; }
          var ig = sigmoid(pi), fg = sigmoid(pf), gg = Math.tanh(pg), cn = fg * cp + ig * gg;
          if (pp) po += pp[2 * H + k] * cn;
          var og = sigmoid(po);
          I[k] = ig; F[k] = fg; Gv[k] = gg; O[k] = og; C[k] = cn; Hv[k] = og * Math.tanh(cn);
        }
        cl.set(C); hl.set(Hv);
      } else if (CELL === "gru") {
        var R = out.r, Z = out.z, N = out.n, Hg = out.h;
        for (k = 0; k < H; k++) {
          var rg = sigmoid(pre[k] + gh[k]), zg = sigmoid(pre[H + k] + gh[H + k]);
          var ng = Math.tanh(pre[2 * H + k] + rg * gh[2 * H + k]);
          R[k] = rg; Z[k] = zg; N[k] = ng; Hg[k] = (1 - zg) * ng + zg * hl[k];
        }
        hl.set(Hg);
      } else {
        var Hr = out.h;
        for (k = 0; k < H; k++) Hr[k] = Math.tanh(pre[k]);
        hl.set(Hr);
      }
      x = hl;
    }
    if (head) {
      var lg = this.logits;
      for (var v = 0; v < V; v++) {
        s = headB[v]; o = v * H;
        for (k = 0; k < H; k++) s += headW[o + k] * x[k];
        lg[v] = s;
      }
    }
  };
  /* Every value of the last step, [layer][kind][unit] flattened, as float32. */
  Net.prototype.snapshot = function () {
    var a = new Float32Array(L * K * H);
    for (var l = 0; l < L; l++) for (var j = 0; j < K; j++) a.set(this.vals[l][KINDS[j]], (l * K + j) * H);
    return a;
  };

  // ------------------------------------------------------------------ text <-> ids
  var charId = new Map();
  if (D.units === "char") {
    D.symbols.forEach(function (s, i) { if (i !== UNK && i !== EOT) charId.set(s, i); });
  }
  function quote(ch) { return "'" + ch + "'"; }
  /* Text -> ids by charlstm.inputs' rule: a literal <eot> is the end-of-record id when the vocabulary
   * has one; unknown characters: "error" (names them), "skip", or "replace" with <unk>. */
  function encode(text, unknown) {
    unknown = unknown || "error";
    if (["error", "skip", "replace"].indexOf(unknown) < 0) throw new Error("unknown must be error, skip or replace, got '" + unknown + "'");
    text = String(text);
    var pieces = EOT !== null ? text.split("<eot>") : [text], ids = [], bad = [], total = 0, pos = 0;
    pieces.forEach(function (piece, j) {
      if (j) ids.push(EOT);
      if (D.units === "byte") {
        var b = new TextEncoder().encode(piece);
        for (var i = 0; i < b.length; i++) ids.push(b[i]);
        return;
      }
      var p = pos;
      for (var ch of piece) {
        var id = charId.get(ch);
        if (id !== undefined) ids.push(id);
        else if (unknown === "replace") ids.push(UNK);
        else if (unknown === "error") { total += 1; if (bad.length < 5) bad.push(quote(ch) + " at " + p); }
        p += 1;
      }
      pos = p + 5;
    });
    if (total) {
      throw new Error(total + " character(s) not in the model's vocabulary: " + bad.join(", ") +
        (total > bad.length ? " and " + (total - bad.length) + " more" : "") + "; use unknown: 'skip' or 'replace'");
    }
    return ids;
  }
  /* Turns one sample's ids into text as they come (charlstm.sample.loop.RowText): bytes decode
   * incrementally, a character appearing whole when its last byte arrives; <eot> ends the sample
   * unless stopAtEot is false. */
  function Row(stopAtEot) {
    this.dec = D.units === "byte" ? new TextDecoder("utf-8") : null;
    this.eot = stopAtEot ? EOT : null;
    this.text = ""; this.ids = []; this.reason = null;
  }
  Row.prototype.feed = function (i) {
    var p;
    if (i === this.eot) {
      this.reason = "eot";
      p = this.dec ? this.dec.decode() : "";
    } else {
      this.ids.push(i);
      if (!this.dec) p = D.symbols[i];
      else if (i < 256) p = this.dec.decode(new Uint8Array([i]), { stream: true });
      else p = this.dec.decode() + "<eot>";
    }
    this.text += p;
    return p;
  };
  Row.prototype.finish = function () {
    if (this.reason) return "";
    this.reason = "length";
    var t = this.dec ? this.dec.decode() : "";
    this.text += t;
    return t;
  };

  // ------------------------------------------------------------------ choosing the next id
  function mulberry32(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      var t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  var scratch = new Float64Array(V);
  function choose(logits, o, rand) {
    var best = -1, bv = -Infinity, v, x;
    if (o.greedy) {  // the first maximum, <unk> excluded (charlstm's argmax)
      for (v = 0; v < V; v++) { if (v !== UNK && logits[v] > bv) { bv = logits[v]; best = v; } }
      return best;
    }
    var z = scratch;
    for (v = 0; v < V; v++) z[v] = v === UNK ? -Infinity : logits[v] / o.temperature;
    if (o.topK && o.topK < V) {  // keep the logits >= the k-th largest (ties kept, as charlstm's filter)
      var kth = Array.prototype.slice.call(z).sort(function (a, b) { return b - a; })[o.topK - 1];
      for (v = 0; v < V; v++) if (z[v] < kth) z[v] = -Infinity;
    }
    for (v = 0; v < V; v++) {  // Gumbel-max: argmax(z + G) is a draw from softmax(z)
      if (z[v] === -Infinity) continue;
      var u = rand();
      x = z[v] - Math.log(-Math.log(u > 0 ? u : 1e-300));
      if (x > bv) { bv = x; best = v; }
    }
    return best;
  }
  function options(o) {
    o = o || {};
    var out = { length: o.length === undefined ? 200 : Number(o.length), greedy: !!o.greedy,
                temperature: o.temperature === undefined ? 1 : Number(o.temperature),
                topK: o.topK ? Number(o.topK) : null, stopAtEot: o.stopAtEot !== false, unknown: o.unknown || "error",
                seed: o.seed === undefined || o.seed === null || o.seed === "" ? Math.floor(Math.random() * 0x7fffffff) : Number(o.seed) };
    if (!Number.isInteger(out.length) || out.length < 0 || out.length > D.max_length) throw new Error("length must be a whole number in 0.." + D.max_length + ", got " + o.length);
    if (!(out.temperature > 0) || !isFinite(out.temperature)) throw new Error("temperature must be a positive number, got " + o.temperature + "; use greedy for argmax");
    if (out.topK !== null && !(Number.isInteger(out.topK) && out.topK >= 1)) throw new Error("top-k must be a whole number of at least 1, got " + o.topK);
    if (!Number.isInteger(out.seed) || out.seed < 0) throw new Error("seed must be a whole number of at least 0, got " + o.seed);
    return out;
  }

  // ------------------------------------------------------------------ generation
  var channel = new MessageChannel(), waiting = [];
  channel.port1.onmessage = function () { var f = waiting.shift(); if (f) f(); };
  function pause() { return new Promise(function (res) { waiting.push(res); channel.port2.postMessage(0); }); }
  var SLICE_MS = 30;  // work between two looks at the event loop (streaming, the Stop button)

  /* Generate like `charlstm sample`: read the context (the prime; <eot> first for a model of records;
   * start_id for an empty prime), then choose, read, choose... hooks: onPrime(piece, net) after each
   * prime character is read, onStep(piece, net) after each generated one is read (its values colour
   * it), onSlice() between slices, stop() -> true to stop early. */
  async function run(prime, o, hooks) {
    hooks = hooks || {};
    o = options(o);
    var ids = encode(prime === undefined || prime === null ? "" : prime, o.unknown);
    var ctx = (RESET !== null ? [RESET] : []).concat(ids);
    if (!ctx.length) ctx = [D.start_id];
    var first = ctx.length - ids.length, net = new Net(), shown = new Row(false);
    var t0 = performance.now(), slice = t0, rand = mulberry32(o.seed), row = new Row(o.stopAtEot);
    for (var j = 0; j < ctx.length; j++) {
      net.step(ctx[j], j === ctx.length - 1);
      if (j >= first && hooks.onPrime) hooks.onPrime(shown.feed(ctx[j]), net);
    }
    for (var t = 0; t < o.length; t++) {
      var i = choose(net.logits, o, rand), piece = row.feed(i);
      if (row.reason) break;  // <eot>: the sample ends, nothing more is read
      net.step(i, t < o.length - 1);
      if (hooks.onStep) hooks.onStep(piece, net);
      if (hooks.stop && hooks.stop()) { row.reason = "stopped"; break; }
      if (performance.now() - slice > SLICE_MS) {
        if (hooks.onSlice) hooks.onSlice();
        await pause();
        slice = performance.now();
      }
    }
    var tail = row.finish();
    if (tail && hooks.onStep) hooks.onStep(tail, net);
    if (hooks.onSlice) hooks.onSlice();
    return { text: row.text, ids: row.ids, stopReason: row.reason, seed: o.seed, length: row.ids.length,
             seconds: (performance.now() - t0) / 1000 };
  }

  function parseUnit(s) {
    var m = /^#?layer(\d+)\.([a-z]):(\d+)$/.exec(String(s || "").trim());
    if (!m) return null;
    var u = { layer: +m[1], kind: m[2], unit: +m[3] };
    if (u.layer >= L || KIDX[u.kind] === undefined || u.unit >= H) return null;
    return u;
  }
  function unitName(u) { return "layer" + u.layer + "." + u.kind + ":" + u.unit; }

  /* One unit's values over a text read as `charlstm trace` reads it (a model of records from the
   * start of a record): row t = the value after reading unit t of the text (characters; bytes for
   * byte models). */
  function trace(text, o) {
    o = o || {};
    var u = o.unit === undefined ? cur : parseUnit(o.unit);
    if (!u) throw new Error("cannot read unit '" + o.unit + "'; write layer, kind and unit like layer0.c:3 (layers 0.." + (L - 1) + ", kinds " + KINDS.join(",") + ", units 0.." + (H - 1) + ")");
    var ids = encode(text, o.unknown);
    if (!ids.length) throw new Error("nothing to trace: the text is empty");
    var net = new Net(), out = new Array(ids.length);
    if (RESET !== null) net.step(RESET, false);
    for (var j = 0; j < ids.length; j++) {
      net.step(ids[j], false);
      out[j] = net.vals[u.layer][u.kind][u.unit];
    }
    return out;
  }

  /* Every value over a text: {"layer0.h": [[H values] per character], ...}, as `charlstm trace` stores them. */
  function traceAll(text, o) {
    o = o || {};
    var ids = encode(text, o.unknown);
    if (!ids.length) throw new Error("nothing to trace: the text is empty");
    var net = new Net(), out = {};
    for (var l = 0; l < L; l++) KINDS.forEach(function (k) { out["layer" + l + "." + k] = []; });
    if (RESET !== null) net.step(RESET, false);
    for (var j = 0; j < ids.length; j++) {
      net.step(ids[j], false);
      for (var l2 = 0; l2 < L; l2++) {
        for (var q = 0; q < K; q++) out["layer" + l2 + "." + KINDS[q]].push(Array.from(net.vals[l2][KINDS[q]]));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ the page
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var NEG = D.colors.neg, POS = D.colors.pos;
  var KIND_NAMES = { h: "hidden h", c: "cell c", i: "input gate i", f: "forget gate f", g: "candidate g",
                     o: "output gate o", r: "reset gate r", z: "update gate z", n: "candidate n" };
  function colour(x) {  // charlstm.viz.colors: red -1, white 0, blue +1
    if (!(x === x)) return "rgb(238,238,238)";
    x = Math.max(-1, Math.min(1, x));
    var b = x > 0 ? POS : NEG, t = Math.abs(x);
    return "rgb(" + Math.round(255 + (b[0] - 255) * t) + "," + Math.round(255 + (b[1] - 255) * t) + "," +
      Math.round(255 + (b[2] - 255) * t) + ")";
  }

  var cur = parseUnit(location.hash) || parseUnit(D.select) || { layer: L - 1, kind: KINDS[0], unit: 0 };
  var spans = [], hist = [], cmax = 0, dirty = false;
  var textBox = $("text");
  function valueOf(i) { return hist[i][(cur.layer * K + KIDX[cur.kind]) * H + cur.unit]; }
  function norm(v) { return GATE[cur.kind] ? 2 * v - 1 : cur.kind === "c" ? (cmax > 0 ? v / cmax : 0) : v; }
  function paint(i) {
    var x = norm(valueOf(i)), s = spans[i];
    s.style.backgroundColor = colour(x);
    s.style.color = Math.abs(x) > 0.6 ? "#fff" : "";
  }
  function recolour() {
    cmax = 0;
    if (cur.kind === "c") for (var i = 0; i < hist.length; i++) cmax = Math.max(cmax, Math.abs(valueOf(i)));
    for (var j = 0; j < spans.length; j++) paint(j);
    dirty = false;
    drawLegend();
  }
  function drawLegend() {
    var c = $("bar"), g = c.getContext("2d");
    for (var x = 0; x < c.width; x++) { g.fillStyle = colour(2 * x / (c.width - 1) - 1); g.fillRect(x, 0, 1, c.height); }
    if (GATE[cur.kind]) { $("lo").textContent = "0 (closed)"; $("hi").textContent = "1 (open)"; $("scale").textContent = "white = 0.5"; }
    else if (cur.kind === "c") {
      $("lo").textContent = (-cmax).toFixed(2); $("hi").textContent = "+" + cmax.toFixed(2);
      $("scale").textContent = "scaled by this unit's largest |c| in the text";
    } else { $("lo").textContent = "-1"; $("hi").textContent = "+1"; $("scale").textContent = ""; }
  }
  function addPiece(piece, net, isPrime) {
    if (!piece) return;
    var i = spans.length, s;
    if (piece === "\n") s = el("span", "nl", "↵");
    else if (piece === "<eot>" || piece.slice(-5) === "<eot>") s = el("span", "sp", piece);
    else s = el("span", "", piece);
    if (isPrime) s.classList.add("prime");
    s._i = i;
    spans.push(s);
    hist.push(net.snapshot());
    textBox.appendChild(s);
    if (piece === "\n" || piece.slice(-5) === "<eot>") textBox.appendChild(document.createElement("br"));
    if (cur.kind === "c" && Math.abs(valueOf(i)) > cmax) dirty = true;
    paint(i);
  }
  function select(u) {
    cur = u;
    $("layer").value = String(u.layer); $("kind").value = u.kind; $("unit").value = String(u.unit);
    try { history.replaceState(null, "", "#" + unitName(u)); } catch (e) { /* some file:// settings refuse; harmless */ }
    recolour();
    root.setAttribute("data-selected", unitName(u));
  }
  function fromControls() {
    select({ layer: +$("layer").value, kind: $("kind").value, unit: Math.max(0, Math.min(H - 1, +$("unit").value || 0)) });
  }
  function status(text, error) { $("status").textContent = text; $("status").className = error ? "error" : ""; }

  var running = false, stopping = false;
  async function generateInPage() {
    if (running) return null;
    var o = { length: $("length").value, temperature: $("temperature").value, topK: +$("topk").value || null,
              seed: $("seed").value, greedy: $("greedy").checked, unknown: "error" };
    spans = []; hist = []; cmax = 0; textBox.textContent = "";
    running = true; stopping = false;
    $("go").disabled = true; $("stop").disabled = false;
    root.setAttribute("data-running", "1");
    status("generating…");
    try {
      var r = await run($("prime").value, o, {
        onPrime: function (p, net) { addPiece(p, net, true); },
        onStep: function (p, net) { addPiece(p, net, false); },
        onSlice: function () { if (dirty) recolour(); },
        stop: function () { return stopping; } });
      var unit = D.units === "byte" ? "bytes" : "characters";
      status((o.greedy ? "greedy" : "seed " + r.seed) + " · " + r.length.toLocaleString() + " " + unit + " in " +
        r.seconds.toFixed(2) + " s (" + Math.round(r.length / Math.max(r.seconds, 1e-9)).toLocaleString() +
        "/s) · ended by " + r.stopReason);
      return r;
    } catch (e) {
      status("Error: " + e.message, true);
      return null;
    } finally {
      running = false;
      $("go").disabled = false; $("stop").disabled = true;
      root.setAttribute("data-running", "0");
    }
  }

  // controls
  $("title").textContent = D.title;
  $("about").textContent = CELL + " " + L + " x " + H + " · " + V + " " + (D.units === "byte" ? "byte" : "character") +
    " symbols · " + D.params.toLocaleString() + " parameters (" + D.dtype + ")" + (RESET !== null ? " · records" : "");
  $("prime").value = D.prime;
  for (var l = 0; l < L; l++) { var op = el("option", "", String(l)); op.value = l; $("layer").appendChild(op); }
  KINDS.forEach(function (k) { var op = el("option", "", KIND_NAMES[k] || k); op.value = k; $("kind").appendChild(op); });
  $("unit").max = H - 1;
  $("of").textContent = "of 0.." + (H - 1);
  ["layer", "kind", "unit"].forEach(function (id) { $(id).addEventListener("change", fromControls); });
  $("prev").addEventListener("click", function () { select({ layer: cur.layer, kind: cur.kind, unit: (cur.unit + H - 1) % H }); });
  $("next").addEventListener("click", function () { select({ layer: cur.layer, kind: cur.kind, unit: (cur.unit + 1) % H }); });
  $("form").addEventListener("submit", function (e) { e.preventDefault(); generateInPage(); });
  $("stop").addEventListener("click", function () { stopping = true; });
  textBox.addEventListener("mousemove", function (e) {
    var s = e.target;
    if (!s || s._i === undefined) return;
    var v = valueOf(s._i);
    $("readout").textContent = "#" + s._i + "  " + JSON.stringify(s.textContent) + "  " + unitName(cur) + " = " + v.toFixed(4);
  });
  window.addEventListener("hashchange", function () { var u = parseUnit(location.hash); if (u) select(u); });

  // ------------------------------------------------------------------ the script API
  window.charlstm = {
    info: { cell: CELL, num_layers: L, hidden_size: H, vocab_size: V, units: D.units, kinds: KINDS.slice(),
            params: D.params, dtype: D.dtype, reset_id: RESET, eot_id: EOT, unk_id: UNK },
    /* generate(prime, {length, greedy, temperature, topK, seed, stopAtEot, unknown, onText}) -> Promise of the text */
    generate: function (prime, o) { return window.charlstm.generateFull(prime, o).then(function (r) { return r.text; }); },
    /* the same -> Promise of {text, ids, stopReason, seed, length, seconds} */
    generateFull: function (prime, o) {
      var cb = o && o.onText;
      return run(prime, o, cb ? { onStep: function (p) { if (p) cb(p); } } : {});
    },
    /* trace(text, {unit: "layer0.c:3", unknown}) -> the unit's values, one per character (byte) */
    trace: trace,
    /* traceAll(text, {unknown}) -> {"layer0.h": [[H values] per character], ...}: every unit */
    traceAll: traceAll,
    encode: function (text, unknown) { return encode(text, unknown); },
    select: function (spec) { var u = parseUnit(spec); if (!u) throw new Error("no unit '" + spec + "' in this model"); select(u); },
    selected: function () { return unitName(cur); },
    /* the page's own Generate button, with the form as it is -> Promise of the result */
    generateInPage: generateInPage
  };
  select(cur);
  root.setAttribute("data-ready", "1");
})();
