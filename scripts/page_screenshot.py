"""Photograph the exported page while it generates (the README's docs/img/export-page.png).

    .venv/bin/python scripts/page_screenshot.py demo docs/img/export-page.png \\
        --prime "    def " --unit layer0.c:24 --chars 300 --length 600 --seed 3

Exports RUN to a temporary page (charlstm.export.write_page), opens it in headless Chromium
(charlstm.export.browser) at --width x --height, fills in the form (prime, length, temperature,
seed), picks the unit, presses Generate and takes the screenshot once --chars characters have been
written, while the rest is still being generated (the status line says so); the hover readout shows
the value under the last character.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import charlstm
from charlstm.export.browser import Chromium
from charlstm.export.page import write_page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("out", type=Path)
    ap.add_argument("--prime", default="")
    ap.add_argument("--unit", default=None)
    ap.add_argument("--length", type=int, default=600)
    ap.add_argument("--chars", type=int, default=300, help="characters written when the picture is taken")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--height", type=int, default=600)
    args = ap.parse_args()
    m = charlstm.load(args.run)
    with tempfile.TemporaryDirectory() as tmp, Chromium(width=args.width, height=args.height) as b:
        page = write_page(Path(tmp) / "page.html", m.module, m.vocab, title=Path(args.run).name, prime=args.prime,
                          unit=args.unit).path
        b.open(page.as_uri())
        form = {"prime": args.prime, "length": args.length, "temperature": args.temperature, "seed": args.seed}
        b.evaluate(f"(() => {{ const f = {json.dumps(form)}; for (const k in f) document.getElementById(k).value = f[k]; }})()")
        b.evaluate("charlstm.generateInPage(); true")  # not awaited: the picture is taken mid-generation
        deadline = time.monotonic() + 120
        while b.evaluate("document.querySelectorAll('#text span:not(.prime)').length") < args.chars:
            if time.monotonic() > deadline:
                raise SystemExit("the page did not generate in time")
            time.sleep(0.02)
        b.evaluate("charlstm.select(charlstm.selected())")  # final colours for the characters so far
        b.evaluate("(() => { const s = document.querySelectorAll('#text span'); const t = s[s.length - 1];"
                   " const r = t.getBoundingClientRect(); t.dispatchEvent(new MouseEvent('mousemove',"
                   " {bubbles: true, clientX: r.left + 1, clientY: r.top + 1})); })()")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        b.screenshot(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
