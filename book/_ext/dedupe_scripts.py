"""Drop exact-duplicate <script> entries from each page.

Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, so every page logs
"Identifier 'THEBE_JS_URL' has already been declared". Keeping the first copy of identical
entries fixes that without touching what the scripts do.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    # An inline script is registered with filename None by some extensions and '' by others.
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", None) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
