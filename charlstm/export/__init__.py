"""Sharing a model: a self-contained web page that runs it, and a portable ONNX step.

    from charlstm.export import write_page
    m = charlstm.load("demo")
    write_page("demo.html", m.module, m.vocab)        # charlstm export demo --html demo.html

Modules: `page` (the page's data, template page.html and program page.js), `onnx` (the single-step
ONNX model), `browser` (headless Chromium over the DevTools pipe: how the page is checked, measured
and photographed).
"""
from charlstm.export.page import MAX_PARAMS, PageInfo, check_size, page_data, page_model, render_page, write_page

__all__ = ["MAX_PARAMS", "PageInfo", "check_size", "page_data", "page_model", "render_page", "write_page"]
